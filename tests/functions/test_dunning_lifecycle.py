"""Before cards fail: the daily sweep (Awaiting Card re-sends, expiry notices) and the Account Updater import
(CONTRACT §6 "Expiry notices", "Account Updater")."""
from __future__ import annotations

import datetime as dt

from core import footprint
from handlers.dunning import account_updater, daily
from tests.functions.charging_world import card_on_file
from tests.functions.dunning_world import automatic_charge, card_update_links, configure, dunning, emails

DAY = dt.timedelta(days=1)
SYNCED = footprint.choice("w365_paymentprofile", "w365_syncstatus", "Synced")
SYNC_FAILED = footprint.choice("w365_paymentprofile", "w365_syncstatus", "Sync Failed")


def _autopay_on(world):
    configure(world, w365_autopayenabled=True)
    world.standin.update("w365_billingcontract", world.ids["billingcontract"], {"w365_autopay": True})


def _sync(world, profile_id):
    reply = world.send("w365_SyncPaymentProfile", "w365_paymentprofile", profile_id)
    assert reply.body["status"] == "succeeded", reply.body
    return world.row("w365_paymentprofile", profile_id)


def test_awaiting_card_is_asked_again_on_schedule_days_then_exhausted(world):
    _autopay_on(world)
    configure(world, w365_dunningfinalaction=footprint.choice("w365_configuration", "w365_dunningfinalaction",
                                                              "Credit Hold"))
    card_on_file(world, zip_code="46282-0008")
    automatic_charge(world)
    world.queue.drain()
    assert len(emails(world)) == 1
    sent_by_day = []
    for day in range(1, 23):
        world.clock.advance(DAY)
        daily.run_daily(world.services)
        sent_by_day.append(len(emails(world)))
    # the first failure was on 11-21: asked again on days 3, 7 and 14; day 21 has no later day: Exhausted
    assert [sent_by_day[d - 1] for d in (2, 3, 6, 7, 13, 14, 21, 22)] == [1, 2, 2, 3, 3, 4, 4, 4]
    assert dunning(world).status == "Exhausted"
    assert world.row("account", world.ids["account"])["creditonhold"] is True
    assert len([link for link in card_update_links(world)
                if link["w365_status"] == footprint.choice("w365_securelink", "w365_status", "Sent")]) == 1


def test_autopay_off_freezes_the_sweep(world):
    card_on_file(world, zip_code="46282-0008")
    automatic_charge(world)
    world.queue.drain()
    world.clock.advance(30 * DAY)
    assert daily.run_daily(world.services) == daily.DailyResult()
    assert dunning(world).status == "Awaiting Card" and len(emails(world)) == 1


def test_an_expiry_notice_goes_out_once_per_expiry(world):
    _autopay_on(world)
    profile_id = card_on_file(world)
    assert _sync(world, profile_id)["w365_expiration"] == "2030-12"     # read unmasked during Sync
    world.clock.advance(dt.datetime(2030, 11, 20, 7, tzinfo=dt.timezone.utc) - world.clock.now())
    assert daily.run_daily(world.services).notices == 0                  # 41 days before the end of December
    world.clock.advance(12 * DAY)                                         # Dec 2: 29 days left
    assert daily.run_daily(world.services).notices == 1
    world.clock.advance(DAY)
    assert daily.run_daily(world.services).notices == 0                  # once across two daily runs
    (mail,) = emails(world)
    assert "/api/profile-requests/" in mail["description"]
    (link,) = card_update_links(world)
    assert link["w365_failedprofileid"]["id"] == profile_id
    assert world.row("w365_paymentprofile", profile_id)["w365_expirynoticeon"]


def test_no_notice_for_a_card_autopay_does_not_use_or_when_off(world):
    profile_id = card_on_file(world)
    _sync(world, profile_id)
    world.clock.advance(dt.datetime(2030, 12, 10, tzinfo=dt.timezone.utc) - world.clock.now())
    configure(world, w365_autopayenabled=True)                            # but the contract is not on autopay
    assert daily.run_daily(world.services).notices == 0
    _autopay_on(world)
    configure(world, w365_expirynoticedays=0)
    assert daily.run_daily(world.services).notices == 0
    assert not emails(world)


def _au_world(world):
    profile_id = card_on_file(world)
    row = _sync(world, profile_id)
    world.standin.update("account", world.ids["account"], {"w365_gatewaycustomerprofileid": row["w365_customerprofileid"]})
    return profile_id, row


def test_account_updater_updates_a_card_a_new_expiry_and_closes_an_account(world):
    first_id, first = _au_world(world)
    gateway = world.services.gateway
    customer = first["w365_customerprofileid"]
    from core.ports import BillTo
    others = []
    for number in ("5424000000000015", "4007000000027"):
        payment = gateway.create_payment_profile(customer, world.simulator.issue_nonce(number, 12, 2027),
                                                 BillTo(first_name="Nancy", last_name="Davolio", zip="98052"))
        others.append(payment)
    world.send("w365_SyncPaymentProfiles", "account", world.ids["account"])
    rows = {r["w365_paymentprofileidgateway"]: r for r in world.rows("w365_paymentprofile")}
    world.simulator.account_updater(customer, first["w365_paymentprofileidgateway"], "NAN",
                                    new_number="4012888818888", new_expiration="2032-06")
    world.simulator.account_updater(customer, others[0], "NED", new_expiration="2031-01")
    world.simulator.account_updater(customer, others[1], "ACL")
    result = account_updater.import_reports(world.services)
    assert (result.updated, result.closed, result.unmatched) == (2, 1, 0), result
    renewed = world.row("w365_paymentprofile", first_id)
    assert (renewed["w365_cardlast4"], renewed["w365_expiration"], renewed["w365_name"]) == (
        "XXXX8888", "2032-06", "Visa XXXX8888")
    ned = world.row("w365_paymentprofile", rows[others[0]]["w365_paymentprofileid"])
    assert (ned["w365_cardlast4"], ned["w365_expiration"]) == ("XXXX0015", "2031-01")
    closed = world.row("w365_paymentprofile", rows[others[1]]["w365_paymentprofileid"])
    assert (closed["statecode"], closed["w365_syncstatus"]) == (1, SYNC_FAILED)
    notes = [n for n in world.rows("annotation") if (n.get("subject") or "").startswith("Account Updater")]
    assert len(notes) == 3
    text = " ".join(n["notetext"] for n in notes)
    for number in ("4012888818888", "5424000000000015", "4007000000027"):
        assert number not in text
    assert account_updater.import_reports(world.services).updated == 0          # the same report again: nothing
    assert len([n for n in world.rows("annotation") if (n.get("subject") or "").startswith("Account Updater")]) == 3
    # no later Sync reactivates the closed card, one by one or all at once
    reply = world.send("w365_SyncPaymentProfile", "w365_paymentprofile", closed["w365_paymentprofileid"])
    assert reply.body["status"] == "failed" and "closed" in reply.message
    world.send("w365_SyncPaymentProfiles", "account", world.ids["account"])
    closed = world.row("w365_paymentprofile", closed["w365_paymentprofileid"])
    assert (closed["statecode"], closed["w365_syncstatus"]) == (1, SYNC_FAILED)


def test_a_renewal_by_account_updater_retries_waiting_invoices(world):
    profile_id, row = _au_world(world)
    world.standin.update("invoice", world.ids["invoice1"], {
        "w365_dunningstatus": footprint.choice("invoice", "w365_dunningstatus", "Awaiting Card")})
    world.simulator.account_updater(row["w365_customerprofileid"], row["w365_paymentprofileidgateway"], "NED",
                                    new_expiration="2033-01")
    account_updater.import_reports(world.services)
    assert dunning(world).status == "Retrying" and dunning(world).next_retry_on == world.clock.now()
