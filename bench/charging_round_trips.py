"""Charging round trips per action: Dataverse requests (the stand-in's counter) and gateway calls (`responses`).

Target: an approved charge costs at most 3 Dataverse requests (read with $expand, the attempt, one
$batch) and 1 gateway call, permission checks included; the platform's w365_operation lookup and row are shown apart."""
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


def _split(requests: list[tuple[str, str]]) -> tuple[list[str], int]:
    """(the capability's own requests, the platform's operation-row requests)."""
    own = [f"{method} {path.split('(')[0]}" for method, path in requests if not path.startswith("w365_operations")]
    return own, len(requests) - len(own)


def main() -> bool:
    from core.composition import set_services
    from dataverse.standin import store
    from handlers.charging import reconciler
    from tests.conftest import build_world
    from tests.functions.charging_world import assert_books_agree, card_on_file, charge

    rows, ok = [], True
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        world = build_world(rsps)
        set_services(world.services)
        wall_clock = store.now_iso             # rows stamped with the world's clock: createdon drives the back-off
        store.now_iso = lambda: world.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
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
                own, platform = _split(requests)
                met = not is_charge or (len(own) <= CHARGE_TARGET[0] and gateway <= CHARGE_TARGET[1]
                                        and reply.body.get("status") == "succeeded")
                ok &= met
                rows.append((name, len(own), ", ".join(own) or "-", platform, gateway,
                             "<= 3 / 1" if is_charge else "", "ok" if met else "MISSED"))
            world.simulator.fail_next("lost_after_commit")
            charge(world, "10.00", invoice="invoice2")
            world.clock.advance(dt.timedelta(minutes=6))
            requests, gateway, _ = _measure(world, rsps, lambda: reconciler.reconcile_due(world.services))
            own, _ = _split(requests)
            rows.append(("reconcile 1 unknown charge (timer sweep)", len(own), ", ".join(own), 0, gateway, "", ""))
            assert_books_agree(world)
            assert_books_agree(world, "invoice2", "INV-1002")
        finally:
            store.now_iso = wall_clock
            set_services(None)
    header = ("action", "Dataverse", "requests", "operation row", "gateway", "target", "")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return ok


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
