"""What the broker dead-lettered of a billing run, shown on the run (CONTRACT §6 "Runs": dead-lettered messages show
on the run).

A charge message counts its own tries and records itself on the run after MAX_TRIES (charge.py), but a worker that
crashes, times out or loses the message's lock never gets to count: after MaxDeliveryCount deliveries (10,
infra/main.bicep) Service Bus moves the message to the queue's dead-letter sub-queue, where nobody looks, and the run
would close as stale with its invoice "never settled". So each run check first reads a few dead letters, in
peek-lock:
- a charge: the run's skip record for the invoice, as the counted path writes it and under the same request id, so
  a second read of the letter (a lost lock, a concurrent check) or the counted path's own record makes no second row;
  unless the run made an attempt for the invoice before the worker died: that attempt is the invoice's outcome on the
  run (the reconciler settles it), and "charged nothing" would be false;
- a selection page: a record regarding the run, and the run's number of due invoices becomes what the pages before
  it selected, so the run closes Completed With Errors as soon as those are settled, and says why;
both then completed. Anything else (other work, Dataverse's own messages on the same queue) stays dead-lettered for
operators: logged by kind, message id and reason only (a payload may carry what must never be logged).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping

from core.errors import DataverseError, PlatformUnavailable
from core.ports import DeadLetter
from core.services import Services
from handlers.autopay import runs
from handlers.autopay.charge import CHARGE_WORK, DEAD_LETTERED, record_skip
from handlers.charging import attempts

log = logging.getLogger(__name__)
GUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")

LETTERS_PER_CHECK = 50      # shown on their runs per check; the next check takes the rest
SCAN_PER_CHECK = 200        # looked at per check: letters that are not ours are held (locked) until the end, so the
                            # receives move past them instead of getting them again


@dataclass
class Swept:
    shown: int = 0          # letters of runs, recorded (or found recorded) and completed
    left: int = 0           # not ours: abandoned, still dead-lettered


def show_dead_letters(services: Services) -> Swept:
    swept, others, seen = Swept(), [], set()
    with services.queue.dead_letter_inbox() as inbox:
        while swept.shown < LETTERS_PER_CHECK and swept.shown + len(others) < SCAN_PER_CHECK:
            letters = inbox.receive(min(LETTERS_PER_CHECK - swept.shown,
                                        SCAN_PER_CHECK - swept.shown - len(others)))
            if not letters:
                break
            for letter in letters:
                if letter.message_id in seen:   # back after a lost lock: recorded already, the next check completes it
                    others.append(letter)
                    continue
                seen.add(letter.message_id)
                try:
                    shown = show_on_run(services, letter)
                except PlatformUnavailable:
                    raise                       # Dataverse busy: the inbox gives back what it holds
                except DataverseError as exc:   # this letter only (a run deleted meanwhile...): left for operators
                    log.warning("dead letters: message %s could not be shown on its run (%s)", letter.message_id,
                                type(exc).__name__)
                    shown = False
                if shown:
                    inbox.complete(letter)
                    swept.shown += 1
                else:
                    others.append(letter)
        for letter in others:
            log.info("dead letters: left %s message %s in the dead-letter queue (reason %s, %d deliveries)",
                     letter.kind or "a non-work", letter.message_id, letter.reason or "unknown", letter.delivery_count)
            inbox.abandon(letter)
    swept.left = len(others)
    return swept


def show_on_run(services: Services, letter: DeadLetter) -> bool:
    """Records the letter on its run; False when it is not a billing run's charge or selection."""
    run_id = _guid(letter.payload, "run_id")
    if run_id is None:
        return False
    if letter.kind == CHARGE_WORK:
        invoice_id = _guid(letter.payload, "invoice_id")
        if invoice_id is None:
            return False
        charge_dead_lettered(services, run_id, invoice_id, letter)
        return True
    if letter.kind == runs.SELECT_WORK:
        selection_dead_lettered(services, run_id, letter)
        return True
    return False


def charge_dead_lettered(services: Services, run_id: str, invoice_id: str, letter: DeadLetter) -> None:
    attempted = services.dataverse.query(attempts.TRANSACTIONS, select=("w365_paymenttransactionid",), filter=(
        f"_w365_billingrunid_value eq {run_id} and _w365_invoiceid_value eq {invoice_id}"), top=1)
    if attempted:
        log.warning("autopay: the broker dead-lettered the charge of invoice %s (run %s) after the run's attempt; "
                    "the attempt stands", invoice_id, run_id)
        return
    log.warning("autopay: the broker dead-lettered the charge of invoice %s (run %s, %d deliveries, %s); recorded "
                "on the run", invoice_id, run_id, letter.delivery_count, letter.reason or "no reason")
    record_skip(services, run_id, "invoice", invoice_id,
                f"{DEAD_LETTERED} the broker gave up after {letter.delivery_count} deliveries (reason: "
                f"{letter.reason or 'unknown'}); this run charged nothing for it and it stays due for the next run.")


def selection_dead_lettered(services: Services, run_id: str, letter: DeadLetter) -> None:
    page, selected = letter.payload.get("page") or 1, int(letter.payload.get("selected") or 0)
    log.warning("autopay: the broker dead-lettered page %s of run %s's selection (%d deliveries, %s)", page, run_id,
                letter.delivery_count, letter.reason or "no reason")
    record_skip(services, run_id, runs.RUN_TABLE, run_id,
                f"{DEAD_LETTERED} the broker gave up on the selection of page {page} after {letter.delivery_count} "
                f"deliveries (reason: {letter.reason or 'unknown'}); the pages before it selected {selected} "
                f"invoice{'' if selected == 1 else 's'}, and the invoices after it stay due for the next run.",
                request_id=f"run:{run_id}:selection")
    run = services.dataverse.retrieve(runs.RUNS, run_id, select=("w365_status", "w365_invoicesdue"))
    if run.get("w365_status") == runs.RUNNING and run.get("w365_invoicesdue") is None:
        # No page will follow: the run is done once what was selected is settled (its check closes it then).
        services.dataverse.update(runs.RUNS, run_id, {"w365_invoicesdue": selected})


def _guid(payload: Mapping[str, Any], key: str) -> str | None:
    """The id as our own messages carry it; anything else is not a letter to act on (it goes into a filter)."""
    value = str(payload.get(key) or "")
    return value if GUID.fullmatch(value) else None
