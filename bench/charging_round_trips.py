"""Charging round trips per action: Dataverse requests (the stand-in's counter) and gateway calls (`responses`).

Target: an approved charge costs at most 3 Dataverse requests (read with $expand, the attempt, one $batch that also
carries the button's w365_operation row) and 1 gateway call, permission checks included. Every request is counted."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Callable

import responses

CHARGE_TARGET = (3, 1)
GATEWAY_URL = "https://apitest.authorize.net/xml/v1/request.api"


def _measure(world, rsps, action: Callable[[], object]) -> tuple[list[tuple[str, str]], int, object]:
    world.standin.reset_counters()
    before = len(rsps.calls)
    result = action()
    gateway = sum(1 for call in list(rsps.calls)[before:] if call.request.url.startswith(GATEWAY_URL))
    return list(world.standin.requests), gateway, result


def _names(requests: list[tuple[str, str]]) -> list[str]:
    return [f"{method} {path.split('(')[0].split('?')[0]}" for method, path in requests]


def main() -> bool:
    from app.composition import set_services
    from handlers.charging import reconciler
    from tests.conftest import build_world
    from tests.functions.charging_world import assert_books_agree, card_on_file, charge

    rows, ok = [], True
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        world = build_world(rsps)
        set_services(world.services)
        try:
            card_on_file(world)
            actions = [
                ("charge part (Active -> Paid Partial)", True, lambda: charge(world, "40.00")),
                ("charge the rest (reactivate -> Complete)", True, lambda: charge(world)),
                ("void the first charge", False, lambda: world.send(
                    "w365_RefundTransaction", "w365_paymenttransaction", world.rows(
                        "w365_paymenttransaction", w365_amount=Decimal("40.00"))[0]["w365_paymenttransactionid"])),
                ("refused: amount over the balance", False, lambda: charge(world, "500.00")),
                ("replayed RequestId", False, lambda: charge(world, "1.00", request_id=replayed)),
            ]
            replayed = str(uuid.uuid4())
            charge(world, "1.00", request_id=replayed)
            for name, is_charge, action in actions:
                requests, gateway, reply = _measure(world, rsps, action)
                names = _names(requests)
                met = not is_charge or (len(names) <= CHARGE_TARGET[0] and gateway <= CHARGE_TARGET[1]
                                        and reply.body.get("status") == "succeeded")
                ok &= met
                rows.append((name, len(names), ", ".join(names) or "-", gateway,
                             "<= 3 / 1" if is_charge else "", "ok" if met else "MISSED"))
            world.simulator.fail_next("lost_after_commit")
            charge(world, "10.00", invoice="invoice2")
            world.clock.advance(dt.timedelta(minutes=6))
            requests, gateway, _ = _measure(world, rsps, lambda: reconciler.reconcile_due(world.services))
            names = _names(requests)
            rows.append(("reconcile 1 unknown charge (timer sweep)", len(names), ", ".join(names), gateway, "", ""))
            assert_books_agree(world)
            assert_books_agree(world, "invoice2", "INV-1002")
        finally:
            set_services(None)
    header = ("action", "Dataverse", "requests", "gateway", "target", "")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return ok


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
