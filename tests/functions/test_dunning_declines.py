"""Every declined transaction keeps its reason code and class, and its result says what to do (CONTRACT §6
"Declines"), through the Charge button and the simulator's 46282-NNNN triggers on a stored profile."""
from __future__ import annotations

import pytest

from core import footprint
from tests.functions.charging_world import assert_books_agree, card_on_file, charge, outcome, transactions


def _decline_type(label: str) -> int:
    return footprint.choice("w365_paymenttransaction", "w365_declinetype", label)


@pytest.mark.parametrize("reason,kind,says", [
    ("2", "Soft", "trying again later"),
    ("8", "Hard", "the card has expired"),
    ("27", "Hard", "billing address does not match"),
    ("65", "Hard", "card code"),
    ("251", "Merchant", "fraud filters"),
])
def test_a_declined_charge_keeps_reason_code_and_class(world, reason, kind, says):
    card_on_file(world, zip_code=f"46282-{int(reason):04d}")
    reply = charge(world)
    assert reply.status == 200 and reply.body["status"] == "failed", reply.body
    (row,) = transactions(world)
    assert row["w365_outcome"] == outcome("Declined") and row["statecode"] == 1
    assert row["w365_reasoncode"] == reason
    assert row["w365_declinetype"] == _decline_type(kind)
    assert says in row["w365_transactionresult"] and says in reply.message
    assert bool(row.get("w365_needsattention")) == (kind == "Merchant")
    assert "4111" not in row["w365_transactionresult"]
    assert assert_books_agree(world) == 0


def test_a_gateway_error_is_not_a_decline(world):
    card_on_file(world, zip_code="46282-0019")
    reply = charge(world)
    assert reply.body["status"] == "failed"
    (row,) = transactions(world)
    assert row["w365_outcome"] == outcome("Error")
    assert not row.get("w365_reasoncode") and row.get("w365_declinetype") is None


def test_the_reconciler_keeps_the_class_of_a_decline_it_confirms(world):
    """A lost answer settled later from getTransactionDetails carries the same reason code and class."""
    from handlers.charging import reconciler
    card_on_file(world, zip_code="46282-0004")
    world.simulator.fail_next("lost_after_commit")
    reply = charge(world)
    (row,) = transactions(world)
    assert row["w365_outcome"] == outcome("Unknown"), reply.body
    assert reconciler.reconcile_attempt(world.services, row["w365_paymenttransactionid"])
    (row,) = transactions(world)
    assert row["w365_outcome"] == outcome("Declined")
    assert (row["w365_reasoncode"], row["w365_declinetype"]) == ("4", _decline_type("Hard"))


def test_a_new_card_an_order_s_validation_declines_keeps_reason_code_and_class(world):
    """The order path records a refused new card as a Declined attempt: from the validation's direct response."""
    from tests.functions.test_orders_payment import submit_new_card
    reply = submit_new_card(world, zip="46282-0027")
    assert reply.body["status"] == "failed"
    (row,) = world.rows("w365_paymenttransaction")
    assert row["w365_outcome"] == outcome("Declined")
    assert (row["w365_reasoncode"], row["w365_declinetype"]) == ("27", _decline_type("Hard"))
