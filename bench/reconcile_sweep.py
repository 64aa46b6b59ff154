"""Reconciler sweep at scale: N same-amount charges whose answers were lost, settled by one timer sweep.

Target (issue 12 item 6): every one settled Approved in one sweep, with at most a small constant (5) plus one gateway
call per attempt. The gateway calls are the simulator's own request counter; the queue's follow-up checks are not
run, so the sweep alone does the work."""
from __future__ import annotations

import datetime as dt
import sys
import time

import responses

SIZES = (40, 100, 250)
CONSTANT = 5


def main(argv: list[str] | None = None) -> bool:
    from app.composition import set_services
    from handlers.charging import reconciler
    from tests.conftest import build_world
    from tests.functions.charging_world import card_on_file, lost_answer, outcome, same_amount_invoices

    sizes = [int(a) for a in (argv or []) if a.isdigit()] or SIZES
    rows, ok = [], True
    for size in sizes:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            world = build_world(rsps)
            set_services(world.services)
            try:
                card_on_file(world)
                ids = [lost_answer(world, key) for key in same_amount_invoices(world, size)]
                world.clock.advance(dt.timedelta(minutes=6))
                world.simulator.calls.clear()
                world.standin.reset_counters()
                started = time.perf_counter()
                settled = reconciler.reconcile_due(world.services)
                seconds = time.perf_counter() - started
                approved = sum(1 for i in ids if world.row("w365_paymenttransaction", i)["w365_outcome"]
                               == outcome("Approved"))
                calls = sum(world.simulator.calls.values())
                met = settled == approved == size and calls <= CONSTANT + size
                ok &= met
                rows.append((size, settled, approved, calls, world.simulator.calls["getTransactionDetails"],
                             len(world.standin.requests), f"{seconds:.2f}", "ok" if met else "MISSED"))
            finally:
                set_services(None)
    header = ("lost answers", "settled", "approved", "gateway calls", "of them details", "dataverse requests",
              "seconds", f"<= {CONSTANT} + N")
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(v) for v in row))
    return ok


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1:]) else 1)
