"""The existing sweep (tests/functions/test_profiles_no_card_data.py) over the dunning flows: declines, card-update
emails, the Card Update page, receipts, expiry notices and the Account Updater import leave no card number or nonce in
any table (emails and notes included) or log."""
from __future__ import annotations

import datetime as dt
import json
import logging
import re

from core import footprint
from handlers.dunning import account_updater, daily
from tests.functions.charging_world import card_on_file
from tests.functions.dunning_world import automatic_charge, configure, emails, set_card_zip
from tests.functions.test_profiles_no_card_data import card_numbers_in
from tests.functions.test_profiles_request_page import FORM, _call


def test_no_card_number_or_nonce_after_the_dunning_flows(world, caplog):
    caplog.set_level(logging.DEBUG)
    configure(world, w365_autopayenabled=True, w365_sendreceipts=True, w365_dunningfinalaction=footprint.choice(
        "w365_configuration", "w365_dunningfinalaction", "Credit Hold"))
    world.standin.update("w365_billingcontract", world.ids["billingcontract"], {"w365_autopay": True})
    failed_id = card_on_file(world, zip_code="46282-0027")
    customer = world.row("w365_paymentprofile", failed_id)["w365_customerprofileid"]
    world.standin.update("account", world.ids["account"], {"w365_gatewaycustomerprofileid": customer})
    automatic_charge(world)                                   # hard decline: card-update email
    world.queue.drain()
    token = re.search(r"profile-requests/([A-Za-z0-9_-]{43})", emails(world)[0]["description"]).group(1)
    opaque = world.simulator.issue_nonce("5424000000000015", 12, 2030, "123")
    status, _, _ = _call("POST", token, {**FORM, "dataDescriptor": opaque.descriptor, "dataValue": opaque.value})
    assert status == 200
    assert automatic_charge(world).approved                   # recovered, with a receipt
    world.queue.drain()
    new = next(p for p in world.rows("w365_paymentprofile") if p["w365_paymentprofileid"] != failed_id)
    world.simulator.account_updater(customer, new["w365_paymentprofileidgateway"], "NAN",
                                    new_number="2223000010309703", new_expiration="2031-01")
    account_updater.import_reports(world.services)
    set_card_zip(world, failed_id, "98052")
    world.clock.advance(dt.datetime(2031, 1, 5, tzinfo=dt.timezone.utc) - world.clock.now())
    assert daily.run_daily(world.services).notices == 1       # the renewed card expires 2031-01
    assert len(emails(world)) >= 3

    tables = json.dumps({t.logical_name: world.standin.rows(t.logical_name) for t in footprint.TABLES}, default=str)
    logs = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert card_numbers_in(tables) == [] and card_numbers_in(logs) == []
    assert opaque.value not in tables and opaque.value not in logs
