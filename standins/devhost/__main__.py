"""Local mode from a terminal.

    python -m standins.devhost serve [--port N]             the app + stand-ins on http://127.0.0.1:7071 (what `make run` does)
    python -m standins.devhost send MESSAGE TABLE ID [Name=Value ...]   a ribbon button's Custom API call, as Dataverse sends it
    python -m standins.devhost update TABLE ID col=value ...    change a row, then fire its registered webhook step
    python -m standins.devhost create TABLE col=value ...       create a row, then fire its registered webhook step
    python -m standins.devhost show TABLE [--filter ODATA] [--select a,b]   rows of the local Dataverse
    python -m standins.devhost demo                         the ids of the demo data
    python -m standins.devhost add-card ACCOUNT [--card N] [--via direct|request]   a sandbox test card, local mode only
    python -m standins.devhost run TIMER                    run a timer now (dunning_daily, account_updater_import, ...)
    python -m standins.devhost recovery                     the monthly recovery numbers of dunning

Every command takes --port N (default 7071, or the port of W365_PUBLIC_BASE_URL when it is set): `serve --port N`
makes the app's public base URL (links in emails, the stand-ins it calls) and the demo provider follow that port.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from core import footprint, jsonutil
from standins import (LOCAL_DATAVERSE_PATH, LOCAL_GATEWAY_KEY, LOCAL_GATEWAY_LOGIN, LOCAL_GATEWAY_PATH,
                      LOCAL_PROVIDER_PATH, LOCAL_SIGNATURE_KEY, LOCAL_WEBHOOK_KEY)
from standins import payloads as messages

ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = Path(os.environ.get("W365_LOCAL_DIR") or ROOT / "local")    # tests run a host on a directory of their own
DEFAULT_PORT = 7071
BASE = os.environ.get("W365_PUBLIC_BASE_URL", f"http://127.0.0.1:{DEFAULT_PORT}").rstrip("/")
WEB_API = f"{BASE}{LOCAL_DATAVERSE_PATH}/api/data/v9.2"


def _use_port(port: int | None) -> None:
    """The commands talk to the host on `port`; an explicit W365_PUBLIC_BASE_URL wins only without --port."""
    global BASE, WEB_API
    if port is not None:
        BASE = f"http://127.0.0.1:{port}"
    WEB_API = f"{BASE}{LOCAL_DATAVERSE_PATH}/api/data/v9.2"


def serve(args: argparse.Namespace) -> None:
    os.environ.setdefault("W365_MODE", "local")
    port = args.port if args.port is not None else DEFAULT_PORT
    # The app's links and its own calls to the stand-ins on this server follow the port, unless a public URL (a
    # tunnel in front of this host) was set on purpose.
    if args.port is not None or not os.environ.get("W365_PUBLIC_BASE_URL"):
        os.environ["W365_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from app.composition import get_services
    from standins.dataverse import DataverseStandIn
    from standins.dataverse.demo import point_demo_provider_at, seed_demo
    from standins.devhost.host import FunctionsDevHost, serve as make_server
    from standins.authorizenet import AuthorizeNetSimulator
    from standins.demo_provider import DemoProvider
    import function_app

    LOCAL_DIR.mkdir(exist_ok=True)
    standin = DataverseStandIn(storage_path=LOCAL_DIR / "dataverse.json")
    if not standin.rows("account"):
        seed_demo(standin)
    point_demo_provider_at(standin, f"http://127.0.0.1:{port}")      # also when local/ was made on another port
    simulator = AuthorizeNetSimulator(storage_path=LOCAL_DIR / "authorizenet.json")
    # As Authorize.Net would: signed webhooks for what happens at the gateway, to the app's webhook route.
    simulator.emit_webhooks_to(f"http://127.0.0.1:{port}/api/authorizenet/webhook", LOCAL_SIGNATURE_KEY)
    host = FunctionsDevHost(function_app.app, mounts={LOCAL_DATAVERSE_PATH: standin.wsgi_app(),
                                                      LOCAL_GATEWAY_PATH: simulator.wsgi_app(),
                                                      LOCAL_PROVIDER_PATH: DemoProvider()})
    services = get_services()
    queue = services.queue
    if hasattr(queue, "drain"):
        host.every(0.5, queue.drain, "devhost-queue")
    host.start_timers()
    server = make_server(host, "127.0.0.1", port)
    print(_banner(port, standin), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        host.stop()


def _banner(port: int, standin: Any) -> str:
    ids = _demo_ids(standin)
    account, invoice = ids.get("account", "<account id>"), ids.get("invoice", "<invoice id>")
    contact, order = ids.get("contact", "<contact id>"), ids.get("salesorder", "<order id>")
    return f"""
W365 payments, local mode: http://127.0.0.1:{port}/api/health
  Dataverse stand-in  http://127.0.0.1:{port}{LOCAL_DATAVERSE_PATH}/api/data/v9.2/   (saved in local/dataverse.json)
  Authorize.Net sim.  http://127.0.0.1:{port}{LOCAL_GATEWAY_PATH}/xml/v1/request.api
  Demo provider       http://127.0.0.1:{port}{LOCAL_PROVIDER_PATH}   (what the Webhook provider received)
Try, in another terminal (`python -m standins.devhost demo` lists every demo id):
  .venv/bin/python -m standins.devhost send w365_AddPaymentProfile account {account} ContactId={contact} Method=ProfileRequest EmailSubject="Your card" EmailBody="Please add a card: {{Secure Link}}"
  .venv/bin/python -m standins.devhost send w365_ChargeInvoice invoice {invoice} Amount=40.00
  .venv/bin/python -m standins.devhost send w365_SubmitOrderPayment salesorder {order} PaymentProfileId=<profile id>
  .venv/bin/python -m standins.devhost show invoice --select name,totalamount,w365_amountpaid,w365_balance,statuscode
Customer links (Profile Request, Order Approval) are in the emails: `.venv/bin/python -m standins.devhost show email`.
Ctrl+C stops.
"""


def _demo_ids(standin: Any) -> dict[str, str]:
    ids = {}
    for table in ("account", "contact", "invoice", "salesorder", "w365_billingcontract", "w365_provider"):
        rows = standin.rows(table)
        if rows:
            ids[table] = rows[0][footprint.table(table).primary_id]
    return ids


def _typed(kind: str, text: str) -> Any:
    """A Name=Value from the command line as the footprint types it (a Custom API parameter type or a column type):
    exact decimals for money, never floats; text, GUIDs and JSON (BillTo) stay strings."""
    kind = kind.lower()
    if kind in ("decimal", "money"):
        return Decimal(text)
    if kind in ("integer", "choice", "state", "status"):
        return int(text)
    if kind == "boolean":
        if text not in ("true", "false"):
            raise SystemExit(f"expected true or false, got {text!r}")
        return text == "true"
    return text


def _pairs(items: list[str], types: dict[str, str]) -> dict[str, Any]:
    result = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected Name=Value, got {item!r}")
        try:
            result[name] = _typed(types.get(name, "string"), value)
        except (ValueError, ArithmeticError):
            raise SystemExit(f"{name}={value!r} is not a valid {types.get(name)}") from None
    return result


def _parameter_types(message: str) -> dict[str, str]:
    api = next((a for a in footprint.CUSTOM_APIS if a.unique_name.lower() == message.lower()), None)
    return {p.name: p.type for p in api.parameters} if api else {}


def _column_types(table: Any) -> dict[str, str]:
    return {c.name: c.type for c in table.columns}


def _post(body: dict) -> requests.Response:
    key = os.environ.get("W365_WEBHOOK_KEY", LOCAL_WEBHOOK_KEY)
    return requests.post(f"{BASE}/api/dataverse", data=messages.dumps(body), timeout=120,
                         headers={"Content-Type": "application/json", "x-w365-webhook-key": key,
                                  "x-ms-dynamics-request-name": body["MessageName"],
                                  "x-ms-dynamics-entity-name": body["PrimaryEntityName"]})


def send(args: argparse.Namespace) -> int:
    request_id = str(uuid.uuid4())
    parameters = _pairs(args.params, _parameter_types(args.message))
    body = messages.custom_api(args.message, args.table, args.id, parameters, request_id=request_id,
                               user_id=args.user or _admin_user())
    response = _post(body)
    print(f"HTTP {response.status_code}: {response.text}")
    # What the button's script does: read the w365_operation row written for this RequestId.
    rows = _query("w365_operations", f"w365_requestid eq '{request_id}'", "w365_status,w365_message")
    if rows:
        status = footprint.label("w365_operation", "w365_status", rows[0]["w365_status"])
        print(f"w365_operation: {status}: {rows[0]['w365_message']}")
    else:
        print("no w365_operation row was written")
    return 0 if response.status_code == 200 else 1


def write(args: argparse.Namespace) -> int:
    """Change a row as a person would in Dataverse, then fire the webhook step registered for it (footprint
    WEBHOOK_STEPS, filtering attributes and pre-image included), as Dataverse does after the change."""
    table = footprint.table(args.table)
    user = args.user or _admin_user()
    values = _pairs(args.attributes, _column_types(table))
    body = _bind_lookups(table, values)
    headers = {"Accept": "application/json", "Content-Type": "application/json", "Authorization": "Bearer local",
               "MSCRMCallerID": user}
    if args.command == "create":
        response = requests.post(f"{WEB_API}/{table.entity_set}", data=jsonutil.dumps(body), headers=headers,
                                 timeout=30)
        message, record_id, pre = "Create", _id_from(response), None
    else:
        record_id = args.id
        step = _registered_step("Update", table.logical_name)
        pre = None
        if step and step.pre_image:
            current = requests.get(f"{WEB_API}/{table.entity_set}({record_id})", headers=headers, timeout=30,
                                   params={"$select": ",".join(step.pre_image)})
            pre = {k: v for k, v in jsonutil.loads(current.content).items() if k in step.pre_image}
        response = requests.patch(f"{WEB_API}/{table.entity_set}({record_id})", data=jsonutil.dumps(body),
                                  headers={**headers, "If-Match": "*"}, timeout=30)
        message = "Update"
    if response.status_code >= 400:
        print(f"Dataverse refused the change: HTTP {response.status_code}: {response.text[:500]}")
        return 1
    print(f"{message} of {table.logical_name} {record_id}: done")
    step = _registered_step(message, table.logical_name)
    if step is None or (step.filtering_attributes and not set(step.filtering_attributes) & set(values)):
        print("no webhook step is registered for this change")
        return 0
    event_body = messages.table_event(message, table.logical_name, record_id, {**values, table.primary_id: record_id},
                                      pre_image=pre, user_id=user)
    response = _post(event_body)
    print(f"webhook step {message} of {table.logical_name}: HTTP {response.status_code}: {response.text}")
    return 0 if response.status_code == 200 else 1


def _registered_step(message: str, table: str) -> Any:
    return next((s for s in footprint.WEBHOOK_STEPS if s.message == message and s.table == table), None)


def _bind_lookups(table: Any, values: dict[str, Any]) -> dict[str, Any]:
    body = {}
    for name, value in values.items():
        column = table.column(name)
        if column is not None and column.type == "lookup":
            navigation, target = next(iter(column.navigations.items()))
            body[f"{navigation}@odata.bind"] = f"/{footprint.entity_set(target)}({value})"
        else:
            body[name] = value
    return body


def _id_from(response: requests.Response) -> str:
    entity_id = response.headers.get("OData-EntityId", "")
    return entity_id[entity_id.rfind("(") + 1:-1] if "(" in entity_id else ""


def show(args: argparse.Namespace) -> int:
    table = footprint.table(args.table)
    rows = _query(table.entity_set, args.filter, args.select)
    for row in rows:
        print(jsonutil.dumps({k: v for k, v in row.items() if not k.startswith("@")}, ensure_ascii=False))
    print(f"({len(rows)} rows)")
    return 0


def demo(args: argparse.Namespace) -> int:
    for table in ("account", "contact", "invoice", "salesorder", "w365_billingcontract", "w365_paymentprofile",
                  "w365_provider", "systemuser"):
        t = footprint.table(table)
        for row in _query(t.entity_set, None, f"{t.primary_id},{t.primary_name}"):
            print(f"{table:22} {row[t.primary_id]}  {row.get(t.primary_name) or ''}")
    return 0


def _query(entity_set: str, filter_: str | None, select: str | None) -> list[dict]:
    params = {}
    if filter_:
        params["$filter"] = filter_
    if select:
        params["$select"] = select
    response = requests.get(f"{WEB_API}/{entity_set}", params=params, timeout=30,
                            headers={"Accept": "application/json", "Authorization": "Bearer local"})
    if response.status_code != 200:
        raise SystemExit(f"the local Dataverse answered {response.status_code}: {response.text[:300]}")
    return jsonutil.loads(response.content)["value"]


# Authorize.Net's published sandbox test cards (developer.authorize.net/hello_world/testing_guide): the only numbers
# add-card takes, so no real card is ever typed into a terminal, a shell history or this host.
SANDBOX_TEST_CARDS = frozenset({
    "4111111111111111", "4007000000027", "4012888818888", "5424000000000015", "2223000010309703", "2223000010309711",
    "370000000000002", "6011000000000012", "3088000000000017", "38000000000006"})
DEMO_BILL_TO = {"firstName": "Nancy", "lastName": "Davolio", "company": "Fabrikam", "address": "1 Main St",
                "city": "Redmond", "state": "WA", "zip": "98052", "country": "US", "phoneNumber": "555-0100"}


def add_card(args: argparse.Namespace) -> int:
    """A card for an account from the terminal, local mode only: the simulator's Accept.js endpoint turns the test
    card into a nonce (as the browser would), then the same path a person takes: the Direct Entry dialog's
    w365_AddPaymentProfile, or (--via request) a Profile Request email whose page gets the card posted to it."""
    number = args.card.replace(" ", "")
    if number not in SANDBOX_TEST_CARDS:
        raise SystemExit(f"add-card takes only the sandbox test cards: {', '.join(sorted(SANDBOX_TEST_CARDS))}.")
    host = requests.utils.urlparse(BASE).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"add-card works only against a local dev host, not {BASE}.")
    contact = args.contact or _contact_of(args.account)
    bill_to = {**DEMO_BILL_TO, "zip": args.zip}
    if args.via == "direct":
        opaque = _nonce(number, args.expiry, args.cvv, bill_to)
        reply = _send("w365_AddPaymentProfile", "account", args.account, {
            "ContactId": contact, "Method": "DirectEntry", "OpaqueDataDescriptor": opaque["dataDescriptor"],
            "OpaqueDataValue": opaque["dataValue"], "BillTo": jsonutil.dumps(bill_to)})
        profile_id = reply.get("paymentProfileId")
    else:
        reply = _send("w365_AddPaymentProfile", "account", args.account, {
            "ContactId": contact, "Method": "ProfileRequest", "EmailSubject": "Your card",
            "EmailBody": "Please add your card: {Secure Link}"})
        email = _query("emails", f"activityid eq {reply['emailId']}", "description")[0]["description"]
        link = re.search(r'href="([^"]+/api/profile-requests/[A-Za-z0-9_-]+)"', email).group(1)
        opaque = _nonce(number, args.expiry, args.cvv, bill_to)
        page = requests.post(link, timeout=120, data={**bill_to, "email": "nancy@fabrikam.example",
                                                      "dataDescriptor": opaque["dataDescriptor"],
                                                      "dataValue": opaque["dataValue"]})
        if page.status_code != 200:
            raise SystemExit(f"the Profile Request page answered {page.status_code}")
        print("Profile Request page: the card is saved")
        rows = _query("w365_securelinks", f"w365_securelinkid eq {reply['secureLinkId']}", "_w365_paymentprofileid_value")
        profile_id = rows[0].get("_w365_paymentprofileid_value") if rows else None
    if not profile_id:
        raise SystemExit("no payment profile was added")
    print(f"payment profile {profile_id} (Pending Sync until Sync: "
          f"python -m standins.devhost send w365_SyncPaymentProfile w365_paymentprofile {profile_id})")
    return 0


def _contact_of(account_id: str) -> str:
    contacts = _query("contacts", f"_parentcustomerid_value eq {account_id}", "contactid")
    if not contacts:
        raise SystemExit("the account has no contact; create one first")
    return contacts[0]["contactid"]


def _nonce(number: str, expiry: str, cvv: str, bill_to: dict) -> dict:
    """What Accept.js does in the browser, against the simulator's nonce endpoint, with the public client key the
    merchant's API gives (as the app's pages get it)."""
    api = f"{BASE}{LOCAL_GATEWAY_PATH}/xml/v1/request.api"
    auth = {"name": LOCAL_GATEWAY_LOGIN, "transactionKey": LOCAL_GATEWAY_KEY}
    details = jsonutil.loads(requests.post(api, data=jsonutil.dumps(
        {"getMerchantDetailsRequest": {"merchantAuthentication": auth}}), timeout=30).content)
    month, _, year = expiry.partition("/")
    answer = requests.post(f"{BASE}{LOCAL_GATEWAY_PATH}/accept/nonce", timeout=30, json={
        "authData": {"apiLoginID": LOCAL_GATEWAY_LOGIN, "clientKey": details.get("publicClientKey")},
        "cardData": {"cardNumber": number, "month": month, "year": year, "cardCode": cvv, "zip": bill_to["zip"],
                     "fullName": f"{bill_to['firstName']} {bill_to['lastName']}"}}).json()
    if "opaqueData" not in answer:
        raise SystemExit("Accept.js refused the card: " + "; ".join(m.get("text", "") for m in
                                                                     answer.get("messages", {}).get("message", [])))
    return answer["opaqueData"]


def _send(message: str, table: str, record_id: str, parameters: dict) -> dict:
    """A Custom API message as Dataverse sends it; prints the operation's message; the reply's data."""
    request_id = str(uuid.uuid4())
    response = _post(messages.custom_api(message, table, record_id, parameters, request_id=request_id,
                                         user_id=_admin_user()))
    body = jsonutil.loads(response.content) if response.content else {}
    print(f"{message}: {body.get('status')}: {body.get('message')}")
    if response.status_code != 200 or body.get("status") != "succeeded":
        raise SystemExit(1)
    return body


def run_timer(args: argparse.Namespace) -> int:
    """What the Functions host's admin endpoint does: run a timer-triggered function now."""
    response = requests.post(f"{BASE}/admin/functions/{args.name}", timeout=300)
    print(f"HTTP {response.status_code}: {response.text}")
    return 0 if response.status_code == 202 else 1


def recovery(args: argparse.Namespace) -> int:
    """The monthly recovery numbers (handlers/dunning/recovery_numbers.py), read from the local Dataverse."""
    from dataverse.auth import StaticTokenProvider
    from dataverse.client import DataverseClient
    from handlers.dunning.recovery_numbers import monthly_recovery

    client = DataverseClient(f"{BASE}{LOCAL_DATAVERSE_PATH}", StaticTokenProvider("local"))
    months = monthly_recovery(client)
    print(f"{'month':8} {'failed':>6} {'recovered':>9} {'rate':>6} {'amount failed':>14} {'recovered':>10} "
          f"{'by amount':>9} {'median days':>11}")
    for m in months:
        median = "-" if m.median_days_to_recover is None else str(m.median_days_to_recover)
        print(f"{m.month:8} {m.invoices_failed:>6} {m.invoices_recovered:>9} {m.recovery_rate:>5}% "
              f"{m.amount_failed:>14} {m.amount_recovered:>10} {m.amount_rate:>8}% {median:>11}")
    if not months:
        print("no invoice has entered dunning yet")
    return 0


def _admin_user() -> str:
    rows = _query("systemusers", None, "systemuserid,fullname")
    admins = [r for r in rows if "admin" in (r.get("fullname") or "").lower()]
    return (admins or rows)[0]["systemuserid"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m standins.devhost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--port", type=int, help=f"the dev host's port (default {DEFAULT_PORT})")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", parents=[common], help="start the app in local mode")
    p.set_defaults(run=serve)
    p = sub.add_parser("send", parents=[common], help="send a Custom API message as Dataverse would")
    p.add_argument("message"), p.add_argument("table"), p.add_argument("id")
    p.add_argument("params", nargs="*", help="Name=Value parameters")
    p.add_argument("--user", help="InitiatingUserId (default: the demo administrator)")
    p.set_defaults(run=send)
    p = sub.add_parser("create", parents=[common], help="create a row as a person would, then fire its webhook step")
    p.add_argument("table"), p.add_argument("attributes", nargs="*", help="col=value (lookups take the id)")
    p.add_argument("--user", help="the person (default: the demo administrator)")
    p.set_defaults(run=write, id=None)
    p = sub.add_parser("update", parents=[common], help="change a row as a person would, then fire its webhook step")
    p.add_argument("table"), p.add_argument("id"), p.add_argument("attributes", nargs="*", help="col=value")
    p.add_argument("--user", help="the person (default: the demo administrator)")
    p.set_defaults(run=write)
    p = sub.add_parser("show", parents=[common], help="list rows of the local Dataverse")
    p.add_argument("table"), p.add_argument("--filter"), p.add_argument("--select")
    p.set_defaults(run=show)
    p = sub.add_parser("demo", parents=[common], help="list the demo data's ids")
    p.set_defaults(run=demo)
    p = sub.add_parser("add-card", parents=[common], help="add a sandbox test card to an account (local mode only)")
    p.add_argument("account", help="the account id")
    p.add_argument("--card", default="4111111111111111", help="a sandbox test card number (default a Visa)")
    p.add_argument("--expiry", default="12/2030", help="MM/YYYY"), p.add_argument("--cvv", default="123")
    p.add_argument("--zip", default="98052", help="billing ZIP (46282 declines, 46299 is held for review)")
    p.add_argument("--via", choices=("direct", "request"), default="direct",
                   help="direct: the Direct Entry dialog's path; request: a Profile Request link and its page")
    p.add_argument("--contact", help="the contact (default: the account's first contact)")
    p.set_defaults(run=add_card)
    p = sub.add_parser("run", parents=[common], help="run a timer-triggered function now (the host's admin endpoint)")
    p.add_argument("name")
    p.set_defaults(run=run_timer)
    p = sub.add_parser("recovery", parents=[common], help="the monthly recovery numbers of dunning")
    p.set_defaults(run=recovery)
    args = parser.parse_args(argv)
    _use_port(args.port)
    return args.run(args) or 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)      # `... | head` ends quietly
    sys.exit(main())
