"""The card-update loop: a hard decline sends a Card Update link; the customer adds a card on the Profile Request
page; the invoice is Retrying at once and the next automatic charge recovers it (CONTRACT §6)."""
from __future__ import annotations

import re
from decimal import Decimal

from core import footprint
from handlers.dunning import recovery_numbers
from tests.functions.charging_world import assert_books_agree, card_on_file, transactions
from tests.functions.dunning_world import (automatic_charge, card_update_links, configure, dunning, emails,
                                          set_card_zip)
from tests.functions.test_profiles_request_page import _call, _posted

SYNCED = footprint.choice("w365_paymentprofile", "w365_syncstatus", "Synced")


def _hard_decline(world):
    profile_id = card_on_file(world, zip_code="46282-0008")
    world.standin.update("account", world.ids["account"], {   # the account's customer profile holds the failed card
        "w365_gatewaycustomerprofileid": world.row("w365_paymentprofile", profile_id)["w365_customerprofileid"]})
    automatic_charge(world)
    world.queue.drain()
    assert dunning(world).status == "Awaiting Card"
    (mail,) = emails(world)
    token = re.search(r"/api/profile-requests/([A-Za-z0-9_-]{43})", mail["description"]).group(1)
    return profile_id, token


def test_a_new_card_on_the_page_recovers_the_invoice_at_the_next_run(world):
    failed_id, token = _hard_decline(world)
    status, body, _ = _call("GET", token)
    assert status == 200 and "Nancy Davolio" in body and "could not charge the card we have on file" in body
    status, body, _ = _call("POST", token, _posted(world, "5424000000000015"))
    assert status == 200 and "saved" in body, body
    new = [p for p in world.rows("w365_paymentprofile") if p["w365_paymentprofileid"] != failed_id]
    (card,) = new
    assert (card["statecode"], card["w365_syncstatus"], card["w365_isdefault"]) == (0, SYNCED, True)
    assert card["w365_cardlast4"] == "XXXX0015" and card["w365_expiration"] == "2030-12"
    assert world.row("w365_paymentprofile", failed_id)["w365_isdefault"] is False
    contract = world.row("w365_billingcontract", world.ids["billingcontract"])
    assert contract["w365_paymentprofileid"]["id"] == card["w365_paymentprofileid"]
    state = dunning(world)
    assert state.status == "Retrying" and state.next_retry_on == world.clock.now()
    attempt = automatic_charge(world)
    assert attempt.approved
    assert dunning(world).status == "Recovered" and dunning(world).next_retry_on is None
    assert assert_books_agree(world) == world.row("invoice", world.ids["invoice1"])["totalamount"]
    notes = " ".join(n.get("notetext") or "" for n in world.rows("annotation"))
    assert "5424000000000015" not in notes and "XXXX0015" in notes
    (month,) = recovery_numbers.monthly_recovery(world.services.dataverse)
    assert (month.month, month.invoices_failed, month.invoices_recovered, month.recovery_rate) == (
        "2026-11", 1, 1, 100)
    assert month.amount_recovered == month.amount_failed == Decimal("120.00")
    assert month.median_days_to_recover == 0


def test_re_entering_the_failed_card_is_not_a_new_card(world):
    failed_id, token = _hard_decline(world)
    status, body, _ = _call("POST", token, _posted(world, "4111111111111111"))
    assert status == 422 and "different card" in body
    assert len(world.rows("w365_paymentprofile")) == 1
    assert dunning(world).status == "Awaiting Card"
    (link,) = card_update_links(world)
    assert link["w365_status"] == footprint.choice("w365_securelink", "w365_status", "Sent")   # still usable


def test_one_open_link_per_account(world):
    profile_id, _ = _hard_decline(world)
    set_card_zip(world, profile_id, "98052")
    set_card_zip(world, profile_id, "46282-0004")
    automatic_charge(world, "invoice2")
    world.queue.drain()
    rows = card_update_links(world)
    assert len(rows) == 2
    statuses = sorted(footprint.label("w365_securelink", "w365_status", r["w365_status"]) for r in rows)
    assert statuses == ["Cancelled", "Sent"]


def test_no_contact_anywhere_flags_the_attempt_and_notes_the_account(world):
    world.standin.update("account", world.ids["account"], {"primarycontactid@odata.bind": None})
    card_on_file(world, zip_code="46282-0008")
    automatic_charge(world)
    world.queue.drain()
    assert not emails(world)
    (row,) = transactions(world)
    assert row["w365_needsattention"] is True
    assert any("A new card is needed" == n.get("subject") for n in world.rows("annotation"))


def test_a_template_without_the_link_is_never_sent_as_is(world):
    configure(world, w365_cardupdatesubject="Update your card", w365_cardupdatebody="Please call us.")
    card_on_file(world, zip_code="46282-0008")
    automatic_charge(world)
    world.queue.drain()
    (mail,) = emails(world)
    assert mail["subject"] == "Update your card" and "/api/profile-requests/" in mail["description"]
    assert any("Card-update email template" == n.get("subject") for n in world.rows("annotation"))


def test_a_sync_that_makes_a_card_usable_retries_waiting_invoices(world):
    profile_id, _ = _hard_decline(world)
    world.standin.update("w365_paymentprofile", profile_id, {"statecode": 1, "statuscode": 2})
    reply = world.send("w365_SyncPaymentProfile", "w365_paymentprofile", profile_id)
    assert reply.body["status"] == "succeeded", reply.body
    assert dunning(world).status == "Retrying"
