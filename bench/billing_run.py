"""A billing run of many due invoices against the stand-ins enforcing Dataverse service protection, time-compressed.

`python -m bench billing_run` runs 10,000 due invoices (about a minute); `--invoices N` changes the count;
`--no-latency` drops the simulated latencies (the run is then CPU-bound) to show how cost grows with N.

What it models: the Dataverse stand-in enforces service protection per user (a sliding 5-minute window of 6,000
requests, 20 minutes of combined execution time and 52 concurrent requests, 429 + Retry-After past them) with 20-80 ms
per request (a request's execution time); the Authorize.Net simulator answers in 0.5-1.5 s; two Functions instances
of 8 concurrent calls each (host.json maxConcurrentCalls) share one application user; time runs `--speed` times
faster than the wall clock (30 by default) for every party: clocks, latencies, Retry-After waits, queue delays and the
5-minute window. 93% of the invoices have a card that is approved, 5% one that is declined and 2% belong to an
account without a usable card (Awaiting Card and a card-update email). The app's own code (the charge core, the
Dataverse client and the gateway client) runs as in production, over HTTP-shaped requests (method, URL, headers,
body); only the transport is in-process.

Targets (at the default 85% share): the run spends at least 95% of its budget on average (80% of the ceiling) and its
busiest 5-minute window stays within the ceiling, and within the execution-time limit; 3 Dataverse requests and one
gateway call per charge; every invoice ends charged, declined or skipped with a reason; no invoice charged twice;
nothing left open; no failure (gateway errors, dead letters). It also prints the run's CPU time per invoice (every
party: app, stand-ins, harness), which is what decides how far time can be compressed.
"""
from __future__ import annotations

import argparse
import bisect
import collections
import datetime as dt
import gc
import random
import threading
import time
from decimal import Decimal
from typing import Any, Callable

import requests
from requests import compat
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

DATAVERSE_URL = "https://contoso.crm.dynamics.com"
GATEWAY_URL = "https://apitest.authorize.net/"
WORKERS = 16                       # 2 instances x maxConcurrentCalls 8 (host.json)
DV_LATENCY = (0.020, 0.080)
GATEWAY_LATENCY = (0.5, 1.5)
RATE_TARGET = 0.95                 # of the budget, on average over the run
# Simulated seconds per wall-clock second. The run's Python work is real time, so the compression must leave the
# machine room to do 17 requests per simulated second: at 30 that is about 500 Dataverse requests and 160 gateway
# calls per wall second, all in one process (4-5 ms of CPU per invoice: two thirds of one core), which two shared
# cores keep up with (10,000 invoices: 33 simulated minutes in a little over a minute, 97% of the budget).
DEFAULT_SPEED = 30.0
# Without latency the run is CPU-bound, and simulated time still passes: at this compression the budget's pace (17
# requests per simulated second, about 1,000 per wall second) is about what the machine does, so a run takes about as
# many simulated hours as a real one and counts itself (every 10 minutes, a read of all its rows) about as often. A
# faster clock would make a 100,000-invoice run count itself hundreds of times instead of about 35.
NO_LATENCY_SPEED = 60.0
MASTERCARD = "5424000000000015"


class CompressedTime:
    """Simulated time running `factor` times faster than the wall clock, shared by every party of the benchmark."""

    def __init__(self, factor: float, start: dt.datetime):
        self.factor, self.start, self._t0 = factor, start, time.monotonic()

    def seconds(self) -> float:
        return (time.monotonic() - self._t0) * self.factor

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.seconds())

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.factor)


class InProcess(BaseAdapter):
    """A requests transport into a stand-in's `handle(method, url, headers, body)`, with optional latency."""

    def __init__(self, handle: Callable, latency: tuple[float, float] | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__()
        self._handle, self._latency, self._sleep = handle, latency, sleep
        self._random = random.Random(11)
        self.calls = 0

    def send(self, request, **kwargs):  # noqa: ANN001 - requests' adapter signature
        self.calls += 1
        if self._latency:
            self._sleep(self._random.uniform(*self._latency))
        status, headers, body = self._handle(request.method, request.url, dict(request.headers), request.body)
        response = requests.Response()
        response.status_code, response.headers, response._content = status, CaseInsensitiveDict(headers), body
        response.url, response.request, response.encoding = request.url, request, "utf-8"
        return response

    def close(self) -> None:
        pass


class InProcessSession(requests.Session):
    """A requests.Session for one in-process service: the app's adapters call it exactly as a real session
    (`request`/`post` with method, URL, headers and a body), but a request skips the preparation an in-process
    transport has no use for (proxies from the environment, cookies, auth, redirects, hooks). That preparation is the
    app's own CPU on a Functions instance, not the service's; at the benchmark's rates (hundreds of requests per
    wall second on the same cores as the stand-ins) it would otherwise be a third of the run's time. Anything outside
    that plain shape (params, files, form data...) goes through requests as usual."""

    def __init__(self, base_url: str, transport: InProcess):
        super().__init__()
        self.trust_env = False
        self.mount(base_url, transport)
        self._base, self._transport = base_url, transport

    def request(self, method, url, params=None, data=None, headers=None, cookies=None, files=None,  # noqa: ANN001
                auth=None, timeout=None, allow_redirects=True, proxies=None, hooks=None, stream=None, verify=None,
                cert=None, json=None):
        plain = (isinstance(url, str) and url.startswith(self._base) and not (params or files or cookies or auth
                 or proxies or hooks) and isinstance(data, (bytes, str, type(None))) and (json is None or data is None))
        if not plain:
            return super().request(method, url, params=params, data=data, headers=headers, cookies=cookies,
                                   files=files, auth=auth, timeout=timeout, allow_redirects=allow_redirects,
                                   proxies=proxies, hooks=hooks, stream=stream, verify=verify, cert=cert, json=json)
        prepared = requests.PreparedRequest()
        prepared.method, prepared.url, prepared.hooks = method.upper(), url, {"response": []}
        prepared.headers = CaseInsensitiveDict(self.headers)
        prepared.headers.update(headers or {})
        if json is not None:
            data = compat.json.dumps(json, allow_nan=False).encode("utf-8")
            prepared.headers.setdefault("Content-Type", "application/json")
        prepared.body = data
        if data is not None:
            prepared.headers["Content-Length"] = str(len(data))
        return self._transport.send(prepared, timeout=timeout)


def build(invoices: int, *, latency: bool, factor: float) -> dict[str, Any]:
    from app.capabilities import run_work
    from app.composition import provisioning_providers
    from core import footprint
    from core.services import Services
    from core.settings import Settings
    from core.throttle import RequestBudget
    from dataverse.auth import StaticTokenProvider
    from dataverse.client import DataverseClient
    from gateway.client import AuthorizeNetGateway
    from standins.authorizenet import AuthorizeNetSimulator
    from standins.dataverse import DataverseStandIn
    from standins.dataverse.demo import seed_demo
    from standins.dataverse.protection import ServiceProtection
    from standins.queue import InProcessQueue
    from tests.conftest import SIGNATURE_KEY, TEST_SETTINGS
    from tests.functions.charging_world import card_on_file

    clock = CompressedTime(factor, dt.datetime(2026, 11, 21, 6, 0, tzinfo=dt.timezone.utc))
    standin = DataverseStandIn(clock=clock)
    ids = seed_demo(standin)
    simulator = AuthorizeNetSimulator(clock=clock, login_id=TEST_SETTINGS["AUTHORIZENET_LOGIN_ID"],
                                      transaction_key=TEST_SETTINGS["AUTHORIZENET_TRANSACTION_KEY"],
                                      public_client_key=TEST_SETTINGS["AUTHORIZENET_CLIENT_KEY"],
                                      signature_key=SIGNATURE_KEY)
    gateway_transport = InProcess(simulator.handle, GATEWAY_LATENCY if latency else None, clock.sleep)
    email_batches = collections.Counter()

    def dataverse(method: str, url: str, headers: dict, body: bytes | None):
        answer = standin.handle(method, url, headers, body)
        if answer[0] != 429 and body and b"\nPOST /api/data/v9.2/emails " in body:
            email_batches["served"] += 1          # a card-update email's $batch: a skip's cost, not a charge's
        return answer
    dataverse_session = InProcessSession(DATAVERSE_URL, InProcess(dataverse))
    gateway_session = InProcessSession(GATEWAY_URL, gateway_transport)
    budget = RequestBudget(now=clock.seconds, sleep=clock.sleep)
    settings = Settings(TEST_SETTINGS)
    services: Services
    queue = InProcessQueue(lambda kind, payload: run_work(kind, payload, services), clock=clock)
    services = Services(
        dataverse=DataverseClient(DATAVERSE_URL, StaticTokenProvider("bench"), session=dataverse_session,
                                  sleep=clock.sleep, observer=budget.observe, max_retries=3, max_backoff=10),
        gateway=AuthorizeNetGateway(TEST_SETTINGS["AUTHORIZENET_LOGIN_ID"],
                                    TEST_SETTINGS["AUTHORIZENET_TRANSACTION_KEY"], environment="sandbox",
                                    session=gateway_session),
        queue=queue, settings=settings, clock=clock, providers=provisioning_providers(settings), budget=budget)

    class World:                                  # what charging_world.card_on_file reads
        pass
    world = World()
    world.services, world.simulator, world.standin, world.ids = services, simulator, standin, ids
    approving = card_on_file(world)                                         # the demo contract's card
    declining = card_on_file(world, zip_code="46282", on_contract=False, number=MASTERCARD)
    account = f"/accounts({ids['account']})"
    standin.update("w365_billingcontract", ids["billingcontract"], {"w365_autopay": True})
    declining_contract = standin.seed("w365_billingcontract", {
        "w365_name": "Fabrikam (declining card)", "w365_accountid@odata.bind": account, "w365_autopay": True,
        "w365_paymentprofileid@odata.bind": f"/w365_paymentprofiles({declining})"})
    cardless = standin.seed("account", {"name": "Northwind", "accountnumber": "NW-001", "creditonhold": False})
    contact = standin.seed("contact", {"firstname": "Ana", "lastname": "Trujillo", "emailaddress1": "ana@nw.example",
                                       "parentcustomerid_account@odata.bind": f"/accounts({cardless})"})
    standin.update("account", cardless, {"primarycontactid@odata.bind": f"/contacts({contact})"})
    cardless_contract = standin.seed("w365_billingcontract", {
        "w365_name": "Northwind", "w365_accountid@odata.bind": f"/accounts({cardless})", "w365_autopay": True})
    standin.update("w365_configuration", ids["configuration"], {"w365_autopayenabled": True,
                                                                "w365_autopaysince": "2026-11-01T00:00:00Z"})
    expected = collections.Counter()
    for n in range(invoices):
        if n % 50 == 7:
            customer, contract, kind = cardless, cardless_contract, "skipped"
        elif n % 20 == 3:
            customer, contract, kind = ids["account"], declining_contract, "declined"
        else:
            customer, contract, kind = ids["account"], ids["billingcontract"], "charged"
        expected[kind] += 1
        total = Decimal(40 + n % 160) + Decimal("0.50")
        standin.seed("invoice", {
            "name": f"Invoice {n}", "invoicenumber": f"INV-{100000 + n}", "totalamount": total,
            "customerid_account@odata.bind": f"/accounts({customer})", "duedate": "2026-11-20T00:00:00Z",
            "w365_billingcontractid@odata.bind": f"/w365_billingcontracts({contract})"})
    # The demo's two invoices stay out of it (no due date).
    # A request's execution time is its simulated latency; without latency it takes no simulated time (the stand-in's
    # own CPU, multiplied by the compression, is not the server's execution time).
    protection = ServiceProtection(latency=DV_LATENCY if latency else (0.0, 0.0), now=clock.seconds, sleep=clock.sleep)
    standin.protect(protection)
    standin.reset_counters()
    gateway_transport.calls = 0                   # the cards' set-up is not the run's
    del approving
    return {"services": services, "standin": standin, "simulator": simulator, "protection": protection,
            "budget": budget, "clock": clock, "queue": queue, "gateway": gateway_transport, "expected": expected,
            "ids": ids, "footprint": footprint, "email_batches": email_batches}


def _kind(method: str, path: str) -> str:
    name = path.split("?")[0]
    if method == "GET" and name == "invoices":
        return "selection pages"
    if method == "GET" and name.startswith("invoices("):
        return "charge: read"
    if method == "POST" and name == "w365_paymenttransactions":
        return "charge: attempt"
    if method == "POST" and name == "$batch":
        return "charge: $batch"
    if name.startswith(("w365_billingruns", "w365_paymenttransactions")) or (
            method == "GET" and name == "w365_operations"):
        return "run start and checks"
    return "skips and card-update emails"


def peak_window(starts: list[float], window: float = 300.0) -> int:
    starts = sorted(starts)
    return max((bisect.bisect_right(starts, t + window) - i for i, t in enumerate(starts)), default=0)


def peak_execution(executions: list[tuple[float, float]], window: float = 300.0) -> float:
    """The most execution time any sliding window held: the sum over the requests that ended within it."""
    executions = sorted(executions)
    best = total = 0.0
    first = 0
    for ended, seconds in executions:
        total += seconds
        while executions[first][0] <= ended - window:
            total -= executions[first][1]
            first += 1
        best = max(best, total)
    return best


def execution_by_window(executions: list[tuple[float, float]], start: float, window: float = 300.0) -> str:
    """Seconds of execution time in each consecutive 5-minute window of the run (a summary when there are many)."""
    if not executions:
        return "-"
    sums = collections.Counter()
    for ended, seconds in executions:
        sums[int((ended - start) // window)] += seconds
    values = [sums[i] for i in range(max(sums) + 1)]
    if len(values) <= 12:
        return " / ".join(f"{v:,.0f}" for v in values) + " s"
    return f"{min(values):,.0f}-{max(values):,.0f} s, {sum(values) / len(values):,.0f} s on average ({len(values)} windows)"


CODES = {"0x80072322": "number of requests", "0x80072321": "execution time", "0x80072326": "concurrency"}


def main(argv: list[str] | None = None) -> bool:
    parser = argparse.ArgumentParser(prog="python -m bench billing_run")
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--no-latency", action="store_true", help="no simulated latency (CPU-bound)")
    parser.add_argument("--speed", type=float, default=None, help=f"time compression (default {DEFAULT_SPEED:g}; "
                                                                   f"{NO_LATENCY_SPEED:g} without latency)")
    args = parser.parse_args(argv or [])
    latency = not args.no_latency
    factor = args.speed or (DEFAULT_SPEED if latency else NO_LATENCY_SPEED)

    from app.composition import set_services
    from core.throttle import LIMIT, WINDOW
    from handlers.autopay import runs

    started = time.monotonic()
    world = build(args.invoices, latency=latency, factor=factor)
    # The stand-ins' rows live in this process, unlike Dataverse's and Authorize.Net's: the cycle collector would walk
    # them again and again, and each full collection stops every thread of the run for a (compressed) while. Reference
    # counting still frees what the run drops; the collector is back on when the run is over.
    gc.collect()
    gc.freeze()
    gc.disable()
    setup = time.monotonic() - started
    services, standin, protection, budget, clock = (world[k] for k in ("services", "standin", "protection",
                                                                       "budget", "clock"))
    set_services(services)
    try:
        real0, sim0, cpu0 = time.monotonic(), clock.seconds(), time.process_time()
        run_id = runs.start_run(services, as_of=None, trigger="Timer").data["runId"]
        stop = threading.Event()
        world["queue"].run_workers(WORKERS, sleep=clock.sleep, poll=1.0, until=stop.is_set)
        real, sim, cpu = time.monotonic() - real0, clock.seconds() - sim0, time.process_time() - cpu0
    finally:
        set_services(None)
        gc.enable()

    fp = world["footprint"]
    run = standin.get("w365_billingrun", run_id)
    status = fp.label("w365_billingrun", "w365_status", run["w365_status"])
    kinds = collections.Counter(_kind(m, p) for m, p in standin.requests)
    moved = world["email_batches"]["served"]
    kinds["charge: $batch"] -= moved
    kinds["skips and card-update emails"] += moved
    total_requests = protection.served
    charges = (run["w365_charged"] or 0) + (run["w365_declined"] or 0)
    own = kinds["charge: read"] + kinds["charge: attempt"] + kinds["charge: $batch"] - 2 * (run["w365_skipped"] or 0)
    approved_by_invoice = collections.Counter(
        c["invoice_number"].rsplit("-", 1)[0] for c in world["simulator"].charges()
        if c.get("response_code") == "1")
    doubles = sum(1 for count in approved_by_invoice.values() if count > 1)
    open_attempts = sum(1 for t in standin.rows("w365_paymenttransaction")
                        if fp.label("w365_paymenttransaction", "w365_outcome", t["w365_outcome"])
                        in ("Pending", "Unknown"))
    settled = charges + (run["w365_skipped"] or 0) + (run["w365_pending"] or 0)
    left_open = max(0, (run["w365_invoicesdue"] or 0) - settled) + open_attempts
    errors = sum(1 for t in standin.rows("w365_paymenttransaction")
                 if fp.label("w365_paymenttransaction", "w365_outcome", t["w365_outcome"]) == "Error")
    log = sorted(protection.log)
    # The run's busy time: from its first request to its last charge (the closing check's wait is not throughput).
    charging = [i for i, (m, p) in enumerate(standin.requests) if _kind(m, p).startswith("charge:")]
    last = log[min(charging[-1], len(log) - 1)] if charging else (log[-1] if log else 0.0)
    busy = (last - log[0]) if len(log) > 1 else sim
    ceiling_rate = LIMIT / WINDOW
    rate = total_requests / busy if busy else 0.0
    peak = peak_window(log)
    busiest_execution = peak_execution(protection.executions, WINDOW)
    execution_ok = busiest_execution <= protection.execution_limit
    long_enough = busy > 2 * WINDOW
    expected = world["expected"]
    counts_ok = (run["w365_charged"], run["w365_declined"], run["w365_skipped"]) == (
        expected["charged"], expected["declined"], expected["skipped"])
    rate_ok = not latency or not long_enough or rate >= RATE_TARGET * budget.share * ceiling_rate
    peak_ok = peak <= LIMIT
    per_charge_ok = charges > 0 and own / charges <= 3.0001
    ok = (status == "Completed" and counts_ok and doubles == 0 and left_open == 0 and errors == 0
          and rate_ok and peak_ok and execution_ok and per_charge_ok)

    rows = [
        ("invoices due (selected)", run["w365_invoicesdue"], f"{args.invoices}", ""),
        ("charged / declined / skipped", f"{run['w365_charged']} / {run['w365_declined']} / {run['w365_skipped']}",
         f"{expected['charged']} / {expected['declined']} / {expected['skipped']}", "ok" if counts_ok else "MISSED"),
        ("collected", f"${run['w365_amountcollected']:,.2f}", "", ""),
        ("run status", status, "Completed", "ok" if status == "Completed" else "MISSED"),
        ("Dataverse requests, all", total_requests, "", ""),
        *[(f"  {name}", count, "", "") for name, count in sorted(kinds.items())],
        ("Dataverse requests per charge (own)", f"{own / charges:.2f}" if charges else "-", "<= 3",
         "ok" if per_charge_ok else "MISSED"),
        ("Dataverse requests per due invoice, all", f"{total_requests / max(1, run['w365_invoicesdue']):.2f}", "", ""),
        ("selection: invoices per page request", f"{args.invoices / max(1, kinds['selection pages']):.0f}",
         f"{runs.PAGE_SIZE}", ""),
        ("gateway calls", world["gateway"].calls, f"{charges}", "ok" if world["gateway"].calls == charges else "MISSED"),
        ("429s received / time lost to them", f"{protection.refused} / {budget.throttled_seconds:.0f} s", "", ""),
        *[(f"  {CODES.get(code, code)}", count, "", "") for code, count in sorted(protection.refused_by_code.items())],
        ("time waiting for the budget", f"{budget.waited_seconds:.0f} s", "", ""),
        ("run time (simulated)", f"{sim / 60:.1f} min", "", ""),
        ("achieved rate", f"{rate:.1f} req/s", "", ""),
        ("  of the ceiling (6,000 / 5 min)", f"{rate / ceiling_rate:.0%}",
         f">= {RATE_TARGET * budget.share:.0%}" if latency and long_enough else "n/a", ""),
        ("  of the budget", f"{rate / (ceiling_rate * budget.share):.0%}",
         f">= {RATE_TARGET:.0%}" if latency and long_enough else "n/a (run shorter than 2 windows or no latency)",
         "ok" if rate_ok else "MISSED"),
        ("busiest 5-minute window", f"{peak} requests ({peak / LIMIT:.0%} of the ceiling)", f"<= {LIMIT}",
         "ok" if peak_ok else "MISSED"),
        ("execution time per 5-minute window", execution_by_window(protection.executions, log[0] if log else 0.0,
                                                                   WINDOW), "", ""),
        ("execution time, busiest 5-minute window",
         f"{busiest_execution:,.0f} s ({busiest_execution / protection.execution_limit:.0%} of the limit)",
         f"<= {protection.execution_limit:,.0f} s", "ok" if execution_ok else "MISSED"),
        ("double charges", doubles, "0", "ok" if doubles == 0 else "MISSED"),
        ("invoices left open", left_open, "0", "ok" if left_open == 0 else "MISSED"),
        ("failures (gateway errors)", errors, "0", "ok" if errors == 0 else "MISSED"),
        ("wall clock", f"{real:.0f} s (+{setup:.0f} s set-up), time x{factor:g}", "", ""),
        ("CPU time of the run (every party)", f"{cpu:.0f} s, {1000 * cpu / max(1, args.invoices):.1f} ms per invoice",
         "", ""),
    ]
    header = ("measure", "value", "target", "")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return ok


if __name__ == "__main__":
    import sys
    raise SystemExit(0 if main(sys.argv[1:]) else 1)
