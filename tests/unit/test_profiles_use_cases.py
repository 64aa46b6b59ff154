"""Payment profile and secure link use cases against in-memory fakes of the ports (tests/fakes.py; state exposed, no
mocks)."""
from __future__ import annotations

import datetime as dt
import itertools
import uuid

import pytest

from core.errors import (BadRequest, BusinessRuleViolation, DataverseError, GatewayAuthError, GatewayError,
                         GatewayNotFound, GatewayRefused, GatewayUnavailable)
from core.ports import BillTo, GatewayPaymentProfile, OpaqueData
from core.services import Services
from core.settings import Settings
from handlers.customer_pages import links
from handlers.payment_profiles import profiles
from tests.fakes import InMemoryDataverse

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.timezone.utc)


class FakeClock:
    def __init__(self):
        self.moment = NOW

    def now(self):
        return self.moment


class FakeGateway:
    def __init__(self):
        self.customers: dict[str, dict[str, GatewayPaymentProfile]] = {}
        self.by_merchant_id: dict[str, str] = {}
        self.calls: list[str] = []
        self._ids = itertools.count(600000001)

    def create_customer_profile(self, merchant_customer_id, *, description="", email=""):
        self.calls.append("create_customer_profile")
        if merchant_customer_id not in self.by_merchant_id:
            self.by_merchant_id[merchant_customer_id] = str(500000000 + len(self.by_merchant_id) + 1)
            self.customers[self.by_merchant_id[merchant_customer_id]] = {}
        return self.by_merchant_id[merchant_customer_id]

    def create_customer_with_card(self, merchant_customer_id, opaque, bill_to, *, description="", email="",
                                  default=False):
        self.calls.append("create_customer_with_card")
        if bill_to.zip == "46282":               # refused: nothing is made, not even the customer
            raise GatewayRefused("declined", code="E00027", text="This transaction has been declined.")
        customer = self.create_customer_profile(merchant_customer_id, description=description, email=email)
        self.calls.pop()
        payment = self.create_payment_profile(customer, opaque, bill_to, default=default)
        self.calls.pop()
        return customer, payment

    def create_payment_profile(self, customer_profile_id, opaque, bill_to, *, default=False):
        self.calls.append("create_payment_profile")
        if bill_to.zip == "46282":
            raise GatewayRefused("declined", code="E00027", text="This transaction has been declined.")
        profile_id = str(next(self._ids))
        self.customers[customer_profile_id][profile_id] = GatewayPaymentProfile(
            customer_profile_id, profile_id, "Visa", "XXXX" + opaque.value[-4:], "XXXX", bill_to, False)
        if default:
            self._make_default(customer_profile_id, profile_id)
        return profile_id

    def _make_default(self, customer_profile_id, profile_id):
        cards = self.customers[customer_profile_id]
        for key, card in cards.items():
            cards[key] = GatewayPaymentProfile(**{**card.__dict__, "is_default": key == profile_id})

    def get_customer_profile(self, customer_profile_id):
        return list(self.customers[customer_profile_id].values())

    def get_payment_profile(self, customer_profile_id, payment_profile_id):
        try:
            return self.customers[customer_profile_id][payment_profile_id]
        except KeyError:
            raise GatewayNotFound("not found", code="E00040") from None

    def update_payment_profile(self, customer_profile_id, payment_profile_id, bill_to, *, default=False, opaque=None,
                               card_number_masked=None):
        card = self.get_payment_profile(customer_profile_id, payment_profile_id)
        self.customers[customer_profile_id][payment_profile_id] = GatewayPaymentProfile(
            **{**card.__dict__, "bill_to": bill_to})
        if default:
            self._make_default(customer_profile_id, payment_profile_id)

    def delete_payment_profile(self, customer_profile_id, payment_profile_id):
        self.calls.append("delete_payment_profile")
        del self.customers[customer_profile_id][payment_profile_id]


@pytest.fixture
def services():
    dataverse = InMemoryDataverse()
    built = Services(dataverse=dataverse, gateway=FakeGateway(), queue=None,
                     settings=Settings({"W365_PUBLIC_BASE_URL": "https://pay.example.test"}), clock=FakeClock())
    built.ids = {"account": dataverse.add("accounts", {"name": "Fabrikam", "emailaddress1": "ap@fabrikam.example"})}
    built.ids["contact"] = dataverse.add("contacts", {"fullname": "Nancy Davolio", "emailaddress1": "n@f.example",
                                                     "_parentcustomerid_value": built.ids["account"]})
    built.ids["queue"] = dataverse.add("queues", {"name": "Billing"})
    dataverse.add("w365_configurations", {"statecode": 0, "_w365_emailfromqueueid_value": built.ids["queue"],
                                          "w365_linkexpiryhours": None})
    return built


def _add(services, *, last4="1111", zip_="62701", synced=False, set_default=False):
    return profiles.add_card_from_nonce(
        services, account_id=services.ids["account"], contact_id=services.ids["contact"],
        opaque=OpaqueData("COMMON.ACCEPT.INAPP.PAYMENT", "nonce" + last4), bill_to=BillTo(zip=zip_),
        source="Order", synced=synced, set_default=set_default)


def _rows(services):
    return list(services.dataverse.tables.get("w365_paymentprofiles", {}).values())


# --- adding cards ------------------------------------------------------------------------------------------------

def test_the_customer_profile_is_made_once_per_account(services):
    _add(services)
    _add(services, last4="0015")
    account = services.dataverse.tables["accounts"][services.ids["account"]]
    assert account["w365_gatewaycustomerprofileid"] == "500000001"
    assert services.gateway.calls == ["create_customer_with_card", "create_payment_profile"]   # first card: one call


def test_a_card_from_an_order_is_synced_at_once_and_can_become_the_only_default(services):
    first = _add(services, synced=True, set_default=True)
    second = _add(services, last4="0015", synced=True, set_default=True)
    rows = {r["w365_paymentprofileid"]: r for r in _rows(services)}
    assert rows[second.profile_id]["statecode"] == 0 and rows[second.profile_id]["w365_isdefault"] is True
    assert rows[second.profile_id]["w365_name"] == "Visa XXXX0015"
    assert rows[first.profile_id]["w365_isdefault"] is False
    assert rows[second.profile_id]["w365_source"] == profiles.source_value("Order")


def test_a_declined_card_leaves_no_row(services):
    with pytest.raises(GatewayError):
        _add(services, zip_="46282")
    assert _rows(services) == []


def test_a_failed_row_write_removes_the_gateway_card(services):
    services.dataverse.fail_creates_in.add("w365_paymentprofiles")
    with pytest.raises(DataverseError):
        _add(services)
    assert "delete_payment_profile" in services.gateway.calls
    assert services.gateway.get_customer_profile("500000001") == []


def test_direct_entry_needs_a_contact_of_the_account_before_any_gateway_call(services):
    stranger = services.dataverse.add("contacts", {"fullname": "X", "_parentcustomerid_value": str(uuid.uuid4())})
    for contact in (None, str(uuid.uuid4()), stranger):
        with pytest.raises(BusinessRuleViolation):
            profiles.add_direct_entry(services, account_id=services.ids["account"], contact_id=contact,
                                      opaque=OpaqueData("d", "v"), bill_to=BillTo(), set_default=False)
    assert services.gateway.calls == []


def test_bill_to_json_is_parsed_and_cut_to_the_gateway_limits():
    bill_to = profiles.bill_to_from_json('{"firstName": "%s", "zip": 12345}' % ("A" * 80))
    assert bill_to.first_name == "A" * 50 and bill_to.zip == "12345"
    with pytest.raises(BadRequest):
        profiles.bill_to_from_json("{not json")
    with pytest.raises(BadRequest):
        profiles.opaque_from("COMMON.ACCEPT.INAPP.PAYMENT", None)
    assert len(profiles.merchant_customer_id(str(uuid.uuid4()))) == 20


# --- sync, default, deactivate ---------------------------------------------------------------------------------------

def test_sync_follows_the_gateways_default_and_clears_the_others(services):
    first = _add(services, synced=True, set_default=True)
    pending = _add(services, last4="0015", set_default=True)          # the gateway now has this one as default
    ok, _ = profiles.sync_profile(services, pending.profile_id)
    assert ok
    defaults = [r["w365_paymentprofileid"] for r in _rows(services) if r["w365_isdefault"]]
    assert defaults == [pending.profile_id]
    assert first.profile_id != pending.profile_id


def test_sync_of_a_missing_card_marks_sync_failed(services):
    added = _add(services)
    services.gateway.delete_payment_profile(added.customer_profile_id, added.payment_profile_id)
    ok, message = profiles.sync_profile(services, added.profile_id)
    row = services.dataverse.tables["w365_paymentprofiles"][added.profile_id]
    assert not ok and "Sync Failed" in message
    assert row["w365_syncstatus"] == profiles.sync_status("Sync Failed")


@pytest.mark.parametrize("failure", [GatewayAuthError("bad key", code="E00007"), GatewayUnavailable("no answer")])
def test_only_a_refusal_becomes_an_answer_our_own_failures_pass_through(services, failure, monkeypatch):
    """A refused update is the customer's to fix ("Nothing was changed"); wrong credentials or an outage are ours and
    reach the entry's error mapping (configuration / 503) instead of reading as a refused card."""
    added = _add(services)

    def refuse(*args, **kwargs):
        raise GatewayRefused("refused", code="E00027", text="This transaction has been declined.")

    monkeypatch.setattr(services.gateway, "update_payment_profile", refuse)
    ok, message = profiles.update_profile(services, added.profile_id, BillTo(zip="62701"), None)
    assert not ok and message.endswith("This transaction has been declined. Nothing was changed.")

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(services.gateway, "update_payment_profile", fail)
    with pytest.raises(type(failure)):
        profiles.update_profile(services, added.profile_id, BillTo(zip="62701"), None)


def test_set_default_is_one_changeset_that_a_concurrent_change_aborts(services):
    first = _add(services, synced=True, set_default=True)
    second = _add(services, last4="0015", synced=True)
    original_batch = services.dataverse.batch

    def racing_batch(changeset):
        # Someone edits the first profile between our read and our write: the whole changeset must fail.
        services.dataverse.update("w365_paymentprofiles", first.profile_id, {"w365_billto_city": "Elsewhere"})
        return original_batch(changeset)

    services.dataverse.batch = racing_batch
    from core.errors import ConflictInProgress
    with pytest.raises(ConflictInProgress):
        profiles.set_default(services, second.profile_id)
    rows = {r["w365_paymentprofileid"]: r for r in _rows(services)}
    assert rows[first.profile_id]["w365_isdefault"] is True and rows[second.profile_id]["w365_isdefault"] is False


def test_deactivating_a_profile_in_use_warns_with_the_contract_names(services):
    added = _add(services, synced=True, set_default=True)
    services.dataverse.add("w365_billingcontracts", {"w365_name": "Fabrikam annual", "statecode": 0,
                                                     "_w365_paymentprofileid_value": added.profile_id})
    message = profiles.deactivate(services, added.profile_id)
    row = services.dataverse.tables["w365_paymentprofiles"][added.profile_id]
    assert row["statecode"] == 1 and row["w365_isdefault"] is False
    assert "Fabrikam annual" in message and "no longer the default" in message


# --- secure links ------------------------------------------------------------------------------------------------

def _send(services, template="Hi {Secure Link}"):
    return links.send_secure_link(services, purpose_label="Profile Request", route="profile-requests",
                                  account_id=services.ids["account"], contact_id=services.ids["contact"],
                                  subject="s", body_template=template, placeholder="{Secure Link}",
                                  regarding=("account", services.ids["account"]))


def test_a_link_is_a_256_bit_token_stored_only_as_its_hash(services):
    sent = _send(services)
    token = sent.url.rsplit("/", 1)[1]
    (row,) = services.dataverse.tables["w365_securelinks"].values()
    assert links.TOKEN_PATTERN.match(token) and row["w365_tokenhash"] == links.hash_token(token)
    assert token not in str(row)
    assert sent.expires_on == NOW + dt.timedelta(hours=72)
    assert ("SendEmail", ("emails", sent.email_id)) in services.dataverse.executed
    assert sent.url.startswith("https://pay.example.test/api/profile-requests/")


def test_no_queue_configured_refuses_before_writing_anything(services):
    (config,) = services.dataverse.tables["w365_configurations"].values()
    config["_w365_emailfromqueueid_value"] = None
    with pytest.raises(BusinessRuleViolation, match="queue"):
        _send(services)
    assert "w365_securelinks" not in services.dataverse.tables


def test_two_submits_with_the_same_link_cannot_both_succeed(services):
    token = _send(services).url.rsplit("/", 1)[1]
    # Both read the link before either claims it (the race the If-Match claim is there for).
    first, second = (links.check_link(services, token, "Profile Request") for _ in range(2))
    assert first.usable and second.usable
    done = []
    links.complete_once(services, first.row, lambda: done.append("first"))
    with pytest.raises(links.LinkTaken):
        links.complete_once(services, second.row, lambda: done.append("second"))
    assert done == ["first"]
    assert links.check_link(services, token, "Profile Request").state == "used"


def test_a_failed_submit_releases_the_claim(services):
    token = _send(services).url.rsplit("/", 1)[1]
    check = links.check_link(services, token, "Profile Request")

    def refused():
        raise GatewayError("declined")

    with pytest.raises(GatewayError):
        links.complete_once(services, check.row, refused)
    assert links.check_link(services, token, "Profile Request").usable


def test_link_states(services):
    token = _send(services).url.rsplit("/", 1)[1]
    assert links.check_link(services, "nope", "Profile Request").state == "unknown"
    assert links.check_link(services, token, "Order Approval").state == "unknown"
    services.clock.moment = NOW + dt.timedelta(hours=72)
    assert links.check_link(services, token, "Profile Request").state == "expired"
    (row,) = services.dataverse.tables["w365_securelinks"].values()
    assert row["w365_status"] == links.status("Expired")


# --- the first usable profile becomes the default (CONTRACT §4) ------------------------------------------------------

def _defaults(services):
    return [r["w365_paymentprofileid"] for r in _rows(services) if r["w365_isdefault"] and r["statecode"] == 0]


def _gateway_default(services, added):
    return services.gateway.get_payment_profile(added.customer_profile_id, added.payment_profile_id).is_default


def test_the_first_profile_synced_becomes_the_default_here_and_at_the_gateway(services):
    first = _add(services)
    second = _add(services, last4="0015")
    assert profiles.sync_profile(services, first.profile_id)[0]
    assert _defaults(services) == [first.profile_id] and _gateway_default(services, first)
    assert profiles.sync_profile(services, second.profile_id)[0]            # the account has a default now
    assert _defaults(services) == [first.profile_id] and not _gateway_default(services, second)


def test_a_profile_synced_when_the_only_default_was_deactivated_becomes_the_default(services):
    first = _add(services, synced=True, set_default=True)
    profiles.deactivate(services, first.profile_id)
    second = _add(services, last4="0015")
    profiles.sync_profile(services, second.profile_id)
    assert _defaults(services) == [second.profile_id]


def test_a_card_synced_at_once_becomes_the_default_only_when_the_account_has_none(services):
    first = _add(services, synced=True)
    second = _add(services, last4="0015", synced=True)
    assert _defaults(services) == [first.profile_id]
    assert _gateway_default(services, first) and not _gateway_default(services, second)


@pytest.mark.parametrize("import_only", [False, True])         # Sync all, and the gateway webhook's import
def test_a_card_imported_from_the_gateway_becomes_the_default_when_the_account_has_none(services, import_only):
    added = _add(services)                                      # makes the customer profile; the row is pending
    services.dataverse.delete("w365_paymentprofiles", added.profile_id)
    assert profiles.sync_account(services, services.ids["account"], import_only=import_only)[0]
    (row,) = _rows(services)
    assert row["w365_isdefault"] is True and row["statecode"] == 0
    assert _gateway_default(services, added)


def test_an_import_leaves_the_existing_active_default_alone(services):
    first = _add(services, synced=True, set_default=True)
    services.gateway.create_payment_profile(first.customer_profile_id, OpaqueData("d", "nonce0015"), BillTo())
    assert profiles.sync_account(services, services.ids["account"], import_only=True)[0]
    assert _defaults(services) == [first.profile_id] and len(_rows(services)) == 2


def test_sync_all_with_an_active_plain_card_and_no_default_makes_the_new_card_the_default(services):
    plain = _add(services, synced=True)
    services.dataverse.update("w365_paymentprofiles", plain.profile_id, {"w365_isdefault": False})
    services.gateway.update_payment_profile(plain.customer_profile_id, plain.payment_profile_id, BillTo())
    services.gateway.customers[plain.customer_profile_id][plain.payment_profile_id] = GatewayPaymentProfile(
        **{**_card(services, plain).__dict__, "is_default": False})
    fresh = services.gateway.create_payment_profile(plain.customer_profile_id, OpaqueData("d", "nonce0015"), BillTo())
    assert profiles.sync_account(services, services.ids["account"], import_only=True)[0]
    (new_row,) = [r for r in _rows(services) if r["w365_paymentprofileidgateway"] == fresh]
    assert _defaults(services) == [new_row["w365_paymentprofileid"]]


def _card(services, added):
    return services.gateway.get_payment_profile(added.customer_profile_id, added.payment_profile_id)
