"""Billing runs (CONTRACT §6 "Runs"): start (the Run Billing button or the timer), the queued selection that fans out
one message per due invoice, and the queued check that closes the run once every message is settled.

- A webhook has 60 seconds, so starting a run only writes its row and queues the selection; the selection reads one
  page of candidate invoices per message (keyset-paged, only the columns the due rule needs) and queues the next page.
- The run row is not written per charge (one hot row for thousands of writers). The check, every minute, counts the
  run's transactions (`w365_billingrunid`) and skip records (w365_operation rows whose correlation id is the run), writes
  the counts when they moved (so a person watches them grow, and the row's modifiedon is the run's last progress), and
  closes the run when everything selected is settled. Before counting, the check shows on their runs the messages
  the broker dead-lettered (dead_letters.py), so a charge or a page lost that way ends the run, not its staleness.
- One open run per AsOf date: the run's id is derived from (date, number of runs that day), so two simultaneous
  starts make the same id and the second create fails. A run with no progress for 30 minutes is closed Completed With
  Errors, by its own check or by the next start.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping

from core import dates, footprint, odata
from core.configuration import configuration
from core.errors import BusinessRuleViolation, DuplicateRecord, RecordNotFound
from core.money import Currency, format_money
from core.operations import OPERATIONS, status_value
from core.ports import Record
from core.services import Services
from core.steps import Outcome
from handlers.autopay import due
from handlers.autopay.charge import AUTOPAY_COLUMNS, CHARGE_WORK, DEAD_LETTERED, MESSAGE_NAME
from handlers.charging import attempts, ledger
from handlers.dunning import recovery_numbers

log = logging.getLogger(__name__)

RUNS = "w365_billingruns"
RUN_TABLE = "w365_billingrun"
SELECT_WORK = "autopay.select"
CHECK_WORK = "autopay.check"
PAGE_SIZE = 1000
CHECK_EVERY = dt.timedelta(minutes=1)
STALE_AFTER = dt.timedelta(minutes=30)
RUN_NAMESPACE = uuid.UUID("6d1f3c2e-8a4b-4f0e-9c7d-2b5a1e0f9d33")
RUN_COLUMNS = ("w365_billingrunid", "w365_name", "w365_asof", "w365_status", "w365_startedon", "w365_invoicesdue",
               "w365_charged", "w365_declined", "w365_skipped", "w365_pending", "modifiedon")


def run_status(label: str) -> int:
    return footprint.choice("w365_billingrun", "w365_status", label)


RUNNING, COMPLETED, WITH_ERRORS = run_status("Running"), run_status("Completed"), run_status("Completed With Errors")


# --- start ------------------------------------------------------------------------------------------------------

def start_run(services: Services, *, as_of: dt.datetime | None, trigger: str,
              started_by: str | None = None) -> Outcome:
    now = services.clock.now()
    as_of = (as_of or now).astimezone(dt.timezone.utc)
    day = as_of.date()
    if day > now.date():
        raise BusinessRuleViolation(f"As Of ({day}) is in the future; a billing run collects what is due up to today "
                                    "at the latest.")
    settings = configuration(services, columns=AUTOPAY_COLUMNS)
    switch = due.AutopaySwitch.of(settings)
    if not switch.enabled:
        raise BusinessRuleViolation("Autopay is switched off in the W365 configuration; switch it on first.")
    runs = services.dataverse.query(RUNS, select=RUN_COLUMNS, filter=(
        f"w365_asof ge {day.isoformat()} and w365_asof lt {(day + dt.timedelta(days=1)).isoformat()}"))
    for run in runs:
        if run.get("w365_status") != RUNNING:
            continue
        last = dates.parse(run.get("modifiedon")) or now
        if now - last < STALE_AFTER:
            raise BusinessRuleViolation(f"{run.get('w365_name')} for {day} is still running (last progress "
                                        f"{last:%Y-%m-%d %H:%M} UTC); wait for it to finish.")
        close_run(services, run, stale=True)
    number = len(runs) + 1
    run_id = str(uuid.uuid5(RUN_NAMESPACE, f"{day.isoformat()}:{number}"))
    name = f"Billing run {day.isoformat()} #{number}"
    row: dict[str, Any] = {
        "w365_billingrunid": run_id, "w365_name": name, "w365_asof": dates.iso(as_of),
        "w365_trigger": footprint.choice("w365_billingrun", "w365_trigger", trigger), "w365_status": RUNNING,
        "w365_startedon": dates.iso(now)}
    if started_by:
        row["w365_startedby@odata.bind"] = f"/systemusers({started_by})"
    try:
        services.dataverse.create(RUNS, row)
    except DuplicateRecord:
        raise BusinessRuleViolation(f"{name} was started a moment ago by another request; wait for it to "
                                    "finish.") from None
    services.queue.send(SELECT_WORK, {"run_id": run_id, "as_of": dates.iso(as_of),
                                      "since": dates.iso(switch.since) if switch.since else None,
                                      "after": None, "selected": 0, "page": 1},
                        message_id=f"{SELECT_WORK}:{run_id}:1")
    schedule_check(services, run_id, 1)
    return Outcome.succeeded(f"{name} started (as of {day}); its progress and counts are on the billing run.",
                             runId=run_id)


# --- selection ----------------------------------------------------------------------------------------------------

def select_page(services: Services, payload: Mapping[str, Any]) -> int:
    """One page of candidates: one Dataverse request, one queued message per due invoice, then the next page (or,
    after the last, the run's number of due invoices). Returns how many invoices of the page were due."""
    run_id, as_of = str(payload["run_id"]), dates.parse(payload["as_of"])
    switch = due.AutopaySwitch(True, dates.parse(payload.get("since")))
    options = due.selection_query(switch, as_of, payload.get("after"))
    rows = services.dataverse.query(ledger.INVOICES, **options, top=PAGE_SIZE)
    chosen = due.due_only(rows, switch, as_of)
    for invoice in chosen:
        invoice_id = invoice["invoiceid"]
        services.queue.send(CHARGE_WORK, {"run_id": run_id, "invoice_id": invoice_id, "as_of": payload["as_of"]},
                            message_id=f"{CHARGE_WORK}:{run_id}:{invoice_id}")
    selected = int(payload.get("selected") or 0) + len(chosen)
    page = int(payload.get("page") or 1)
    if len(rows) == PAGE_SIZE:
        services.queue.send(SELECT_WORK, {**payload, "after": rows[-1]["invoiceid"], "selected": selected,
                                          "page": page + 1}, message_id=f"{SELECT_WORK}:{run_id}:{page + 1}")
    else:
        services.dataverse.update(RUNS, run_id, {"w365_invoicesdue": selected})
    return len(chosen)


# --- counting and closing -----------------------------------------------------------------------------------------

@dataclass
class Tally:
    charged: int = 0
    declined: int = 0
    errors: int = 0
    pending: int = 0            # held for review or unknown: settled messages whose money is not decided yet
    in_flight: int = 0          # Pending: a charge between its attempt row and the gateway's answer
    skipped: int = 0
    dead_lettered: int = 0
    dead_lettered_invoices: list = field(default_factory=list)
    selection_dead_lettered: str = ""         # the record of a selection page the broker gave up on (dead_letters.py)
    collected: Decimal = Decimal("0.00")
    failed: Decimal = Decimal("0.00")         # declined automatic charges (gateway errors are not declines)
    recovered: Decimal = Decimal("0.00")      # approved retries
    invoices: set = field(default_factory=set)

    @property
    def settled(self) -> int:
        return len(self.invoices)

    def columns(self) -> dict[str, Any]:
        return {"w365_charged": self.charged, "w365_declined": self.declined, "w365_skipped": self.skipped,
                "w365_pending": self.pending, "w365_amountcollected": self.collected,
                "w365_amountfailed": self.failed, "w365_amountrecovered": self.recovered}


def tally(services: Services, run_id: str) -> Tally:
    """The run's counts from its transactions and skip records (two paged queries, a few columns)."""
    counts = Tally()
    rows = services.dataverse.query(attempts.TRANSACTIONS, select=(
        "w365_type", "w365_outcome", "w365_amount", "w365_source", "_w365_invoiceid_value"),
        filter=f"_w365_billingrunid_value eq {run_id}")
    counts.failed, counts.recovered = recovery_numbers.run_amounts(rows)
    for row in rows:
        outcome = attempts.outcome_label(row.get("w365_outcome"))
        amount = ledger.money(row.get("w365_amount"))
        if outcome == attempts.PENDING:
            counts.in_flight += 1
            continue
        counts.invoices.add(row.get("_w365_invoiceid_value"))
        if outcome == attempts.APPROVED:
            counts.charged += 1
            counts.collected += amount
        elif outcome == attempts.DECLINED:
            counts.declined += 1
        elif outcome == attempts.ERROR:
            counts.errors += 1
        else:
            counts.pending += 1
    # The run's own records too (regarding the run: a dead-lettered selection, the closing summary), in the same read.
    records = services.dataverse.query(OPERATIONS, select=("w365_regardingtable", "w365_regardingid", "w365_message"),
                                       filter=" and ".join((odata.eq("w365_correlationid", run_id),
                                                            odata.eq("w365_messagename", MESSAGE_NAME))))
    for row in records:
        message = str(row.get("w365_message") or "")
        if row.get("w365_regardingtable") == RUN_TABLE:
            if message.startswith(DEAD_LETTERED):
                counts.selection_dead_lettered = message
            continue
        if row.get("w365_regardingtable") != "invoice":
            continue
        counts.invoices.add(row.get("w365_regardingid"))
        counts.skipped += 1
        if message.startswith(DEAD_LETTERED):
            counts.dead_lettered += 1
            counts.dead_lettered_invoices.append(row.get("w365_regardingid"))
    return counts


def check_run(services: Services, run_id: str, try_number: int) -> str:
    """The run's periodic check. Returns what it did (for logs and tests)."""
    try:
        run = services.dataverse.retrieve(RUNS, run_id, select=RUN_COLUMNS)
    except RecordNotFound:                     # deleted: nothing left to check
        run = None
    if run is None or run.get("w365_status") != RUNNING:
        return "closed"
    counts = tally(services, run_id)
    due_count = run.get("w365_invoicesdue")
    if due_count is not None and counts.settled >= due_count and counts.in_flight == 0:
        close_run(services, run, counts=counts)
        return "completed"
    now = services.clock.now()
    if _moved(run, counts):
        services.dataverse.update(RUNS, run_id, counts.columns())
    elif now - (dates.parse(run.get("modifiedon")) or now) >= STALE_AFTER:
        close_run(services, run, counts=counts, stale=True)
        return "stale"
    schedule_check(services, run_id, try_number + 1, delay=check_interval(due_count))
    return "running"


def check_interval(due_count: int | None) -> dt.timedelta:
    """A minute, and a minute more per 10,000 invoices: counting is a paged read of the run's rows (5,000 a
    request), so a big run is not counted more often than it can change much (100,000 invoices: every 10 minutes,
    about 2% of the run's requests)."""
    return CHECK_EVERY * max(1, (due_count or 0) // 10_000)


def close_run(services: Services, run: Record, *, counts: Tally | None = None, stale: bool = False) -> None:
    run_id = run["w365_billingrunid"]
    counts = counts or tally(services, run_id)
    due_count = run.get("w365_invoicesdue")
    unsettled = max(0, (due_count or 0) - counts.settled)
    troubled = (stale or counts.errors or counts.dead_lettered or counts.selection_dead_lettered or unsettled
                or due_count is None)
    now = services.clock.now()
    services.dataverse.update(RUNS, run_id, {
        **counts.columns(), "w365_status": WITH_ERRORS if troubled else COMPLETED,
        "w365_completedon": dates.iso(now), "w365_invoicesdue": due_count if due_count is not None else counts.settled})
    # Every charge is in the merchant's currency (CONTRACT §5), so the run's totals are in it too.
    merchant = Currency(code=(services.settings.get("AUTHORIZENET_CURRENCY") or "USD").upper())
    summary = (f"{run.get('w365_name')}: {due_count if due_count is not None else 'unknown number of'} invoices due, "
               f"{counts.charged} charged ({format_money(counts.collected, merchant)}), {counts.declined} declined, "
               f"{counts.skipped} skipped, {counts.pending} pending, {counts.errors} gateway errors")
    if counts.dead_lettered:
        named = sorted(counts.dead_lettered_invoices)
        summary += (f", {counts.dead_lettered} failed repeatedly (dead-lettered: invoice {', '.join(named[:5])}"
                    + (f" and {len(named) - 5} more" if len(named) > 5 else "") + ")")
    if counts.selection_dead_lettered:
        summary += f". {counts.selection_dead_lettered.rstrip('.')}"
    if stale:
        summary += (f". Closed after {int(STALE_AFTER.total_seconds() // 60)} minutes without progress"
                    + (f"; {unsettled} selected invoices were never settled and stay due for the next run"
                       if unsettled else ""))
    try:
        services.dataverse.create(OPERATIONS, {
            "w365_name": f"{run.get('w365_name')} closed"[:100], "w365_requestid": f"run:{run_id}",
            "w365_message": (summary + ".")[:4000], "w365_status": status_value(not troubled),
            "w365_messagename": MESSAGE_NAME, "w365_regardingtable": RUN_TABLE, "w365_regardingid": run_id,
            "w365_correlationid": run_id})
    except DuplicateRecord:
        pass
    log.info("autopay: %s", summary)


def schedule_check(services: Services, run_id: str, try_number: int, delay: dt.timedelta = CHECK_EVERY) -> None:
    services.queue.send(CHECK_WORK, {"run_id": run_id, "try": try_number},
                        message_id=f"{CHECK_WORK}:{run_id}:{try_number}", delay=delay)


def _moved(run: Record, counts: Tally) -> bool:
    return any(run.get(column) != value for column, value in counts.columns().items()
               if not column.startswith("w365_amount"))

