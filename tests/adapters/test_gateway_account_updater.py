"""Account Updater reports: the client against the vendor's published example (fixture naming its source), the flat
shape merchants report the live gateway sends, and the simulator."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import requests
import responses

from core.errors import BadRequest
from core.ports import BillTo
from gateway.client import AuthorizeNetGateway, parse_au_details
from standins.authorizenet import AuthorizeNetSimulator, LOGIN_ID, TRANSACTION_KEY

FIXTURE = Path(__file__).with_name("fixtures") / "au_job_details_reference.json"
URL = "https://apitest.authorize.net/xml/v1/request.api"


def _gateway() -> AuthorizeNetGateway:
    gateway = AuthorizeNetGateway(LOGIN_ID, TRANSACTION_KEY, session=requests.Session())
    gateway.read_retry_delay = 0
    return gateway


def test_the_reference_example_parses_into_one_closed_and_one_new_expiry():
    example = json.loads(FIXTURE.read_text())
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, URL, body=b"\xef\xbb\xbf" + json.dumps(example).encode())
        changes = _gateway().account_updater_details("2017-06")
        sent = json.loads(rsps.calls[0].request.body)["getAUJobDetailsRequest"]
    assert list(sent)[1:] == ["month", "modifiedTypeFilter", "paging"]          # the XSD's sequence
    assert sent["month"] == "2017-06" and sent["modifiedTypeFilter"] == "all"
    closed = [c for c in changes if c.kind == "delete"]
    updated = [c for c in changes if c.kind == "update"]
    assert [(c.customer_profile_id, c.payment_profile_id, c.reason_code, c.card_number_masked) for c in closed] == [
        ("2", "2", "ACL", "XXXX1111")]
    (nan,) = updated
    assert (nan.customer_profile_id, nan.payment_profile_id, nan.reason_code) == ("88", "117", "NED")
    assert (nan.card_number_masked, nan.old_card_number_masked, nan.expiration) == ("XXXX2222", "XXXX1111", "XXXX")
    assert nan.updated_at == dt.datetime(2017, 6, 27, 9, 24, 47, tzinfo=dt.timezone.utc)


def test_the_flat_list_shape_is_read_too():
    """Thread 61484: the live answer lists deletes and updates directly under auDetails."""
    example = json.loads(FIXTURE.read_text())["auDetails"]
    flat = [example["auDelete"], *example["auUpdate"]]
    assert [c.kind for c in parse_au_details(flat)] == ["delete", "update"]
    assert [c.kind for c in parse_au_details({"auDetail": flat})] == ["delete", "update"]


def test_a_month_must_be_yyyy_mm():
    with pytest.raises(BadRequest):
        _gateway().account_updater_details("June 2017")


class _Nov5:
    def now(self):
        return dt.datetime(2026, 11, 5, 8, tzinfo=dt.timezone.utc)


def _cards_at_the_simulator(*numbers):
    """(simulator, customer profile id, payment profile ids): one customer with a card per number."""
    sim = AuthorizeNetSimulator(_Nov5())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        sim.register_with_responses(rsps)
        gw = _gateway()
        customer = gw.create_customer_profile("ACC-AU")
        cards = [gw.create_payment_profile(customer, sim.issue_nonce(n, 12, 2027), BillTo(first_name="A", zip="1"))
                 for n in numbers]
    return sim, customer, cards


def test_the_simulator_serves_its_reports_through_the_client():
    sim, customer, cards = _cards_at_the_simulator("4111111111111111", "5424000000000015", "4007000000027")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        sim.register_with_responses(rsps)
        gw = _gateway()
        assert gw.account_updater_summary("2026-11") == {}
        sim.account_updater(customer, cards[0], "NAN", new_number="4012888818888")
        sim.account_updater(customer, cards[1], "NED", new_expiration="2031-01")
        sim.account_updater(customer, cards[2], "ACL")
        assert gw.account_updater_summary("2026-11") == {"ACL": 1, "NAN": 1, "NED": 1}
        assert gw.account_updater_summary("2026-10") == {}
        changes = {c.payment_profile_id: c for c in gw.account_updater_details("2026-11")}
        assert changes[cards[0]].card_number_masked == "XXXX8888" and changes[cards[0]].kind == "update"
        assert changes[cards[2]].kind == "delete" and changes[cards[2]].reason_code == "ACL"
        assert gw.get_payment_profile(customer, cards[1]).expiration == "2031-01"
        assert all("X" in c.expiration for c in changes.values())          # the report masks expiries


def test_local_mode_posts_a_bank_report_to_the_simulator():
    sim, customer, (card,) = _cards_at_the_simulator("4111111111111111")
    url = "http://127.0.0.1:7071/_local/authorizenet/_simulator/account-updater"
    body = json.dumps({"customerProfileId": customer, "paymentProfileId": card, "reasonCode": "NED",
                       "newExpiration": "2030-01"})
    assert sim.handle("POST", url, {}, body)[0] == 202
    assert sim.handle("POST", url, {}, json.dumps({"customerProfileId": customer}))[0] == 400
    assert sim.handle("POST", url, {}, body.replace("NED", "XYZ"))[0] == 400
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        sim.register_with_responses(rsps)
        assert _gateway().account_updater_summary("2026-11") == {"NED": 1}
