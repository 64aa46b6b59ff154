"""Payment profile messages end to end: POST /api/dataverse -> handlers -> real clients -> stand-in + simulator."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from core.ports import BillTo

VISA = "4111111111111111"
BILL_TO = {"firstName": "Nancy", "lastName": "Davolio", "company": "Fabrikam", "address": "1 Main St",
           "city": "Springfield", "state": "IL", "zip": "62701", "country": "US", "phoneNumber": "555-0100"}


def _nonce(world, number=VISA):
    return world.simulator.issue_nonce(number, 12, 2030, "123")


def _direct_entry(world, *, number=VISA, bill_to=None, set_default=False, contact=None, account=None, user=None):
    opaque = _nonce(world, number)
    return world.send("w365_AddPaymentProfile", "account", account or world.ids["account"], user=user,
                      ContactId=contact or world.ids["contact"], Method="DirectEntry",
                      OpaqueDataDescriptor=opaque.descriptor, OpaqueDataValue=opaque.value,
                      BillTo=json.dumps(bill_to or BILL_TO), SetAsDefault=set_default)


def _profiles(world):
    # The stand-in keeps a lookup as {"id", "table"}; the Web API shows it as _x_value.
    return [r for r in world.rows("w365_paymentprofile") if (r.get("w365_accountid") or {}).get("id") ==
            world.ids["account"]]


def _synced_profile(world, number=VISA, set_default=False):
    reply = _direct_entry(world, number=number, set_default=set_default)
    assert reply.body["status"] == "succeeded", reply.body
    profile_id = reply.body["paymentProfileId"]
    assert world.send("w365_SyncPaymentProfile", "w365_paymentprofile", profile_id).body["status"] == "succeeded"
    return profile_id


def test_direct_entry_writes_an_inactive_pending_row_and_one_customer_profile(world):
    reply = _direct_entry(world)
    assert reply.status == 200 and reply.body["status"] == "succeeded", reply.body
    row = world.row("w365_paymentprofile", reply.body["paymentProfileId"])
    assert (row["statecode"], row["w365_syncstatus"]) == (1, world.choice("w365_paymentprofile", "w365_syncstatus",
                                                                          "Pending Sync"))
    assert row["w365_source"] == world.choice("w365_paymentprofile", "w365_source", "Direct Entry")
    assert row["w365_billto_city"] == "Springfield"
    customer_profile = world.row("account", world.ids["account"])["w365_gatewaycustomerprofileid"]
    assert customer_profile and row["w365_customerprofileid"] == customer_profile
    # A second card reuses the account's customer profile.
    second = _direct_entry(world, number="5424000000000015")
    assert world.row("w365_paymentprofile", second.body["paymentProfileId"])["w365_customerprofileid"] == \
        customer_profile
    assert world.operation(reply.body["requestId"])["w365_message"] == reply.message


def test_a_lost_customer_profile_id_is_recovered_from_the_duplicate(world):
    _direct_entry(world)
    first = world.row("account", world.ids["account"])["w365_gatewaycustomerprofileid"]
    world.standin.update("account", world.ids["account"], {"w365_gatewaycustomerprofileid": None})
    assert _direct_entry(world, number="5424000000000015").body["status"] == "succeeded"
    assert world.row("account", world.ids["account"])["w365_gatewaycustomerprofileid"] == first


def test_no_contact_means_a_failed_outcome_and_no_gateway_call(world):
    lonely = world.standin.seed("account", {"name": "No Contacts Ltd"})
    reply = _direct_entry(world, account=lonely)
    assert reply.body["status"] == "failed" and "contact" in reply.message.lower()
    assert not [c for c in world.rsps.calls if "authorize.net" in c.request.url]
    assert world.rows("w365_paymentprofile") == []
    assert not world.row("account", lonely).get("w365_gatewaycustomerprofileid")


def test_a_declined_validation_leaves_no_row(world):
    reply = _direct_entry(world, bill_to={**BILL_TO, "zip": "46282"})
    assert reply.body["status"] == "failed" and "refused" in reply.message
    assert world.rows("w365_paymentprofile") == []


def test_a_user_without_rights_on_the_account_is_refused(world):
    reader = world.standin.add_user("Rita Reader", roles=("Read Only",))
    reply = _direct_entry(world, user=reader)
    assert reply.body["status"] == "failed" and "permission" in reply.message
    assert world.rows("w365_paymentprofile") == []


def test_sync_activates_with_the_gateways_card_and_default(world):
    reply = _direct_entry(world, set_default=True)
    profile_id = reply.body["paymentProfileId"]
    sync = world.send("w365_SyncPaymentProfile", "w365_paymentprofile", profile_id)
    assert sync.body["status"] == "succeeded", sync.body
    row = world.row("w365_paymentprofile", profile_id)
    assert row["statecode"] == 0 and row["w365_syncstatus"] == world.choice("w365_paymentprofile",
                                                                             "w365_syncstatus", "Synced")
    assert (row["w365_name"], row["w365_cardlast4"], row["w365_cardtype"]) == ("Visa XXXX1111", "XXXX1111", "Visa")
    assert row["w365_expiration"] and row["w365_isdefault"] is True and row["w365_lastsyncedon"]


def test_sync_of_a_card_deleted_at_the_gateway_marks_it_sync_failed(world):
    profile_id = _synced_profile(world)
    row = world.row("w365_paymentprofile", profile_id)
    world.services.gateway.delete_payment_profile(row["w365_customerprofileid"], row["w365_paymentprofileidgateway"])
    reply = world.send("w365_SyncPaymentProfile", "w365_paymentprofile", profile_id)
    assert reply.body["status"] == "failed" and "Sync Failed" in reply.message
    assert world.row("w365_paymentprofile", profile_id)["w365_syncstatus"] == world.choice(
        "w365_paymentprofile", "w365_syncstatus", "Sync Failed")


def test_sync_all_imports_what_dataverse_lacks_and_refreshes_the_rest(world):
    kept = _direct_entry(world).body["paymentProfileId"]
    customer_profile = world.row("account", world.ids["account"])["w365_gatewaycustomerprofileid"]
    # A card added at the gateway itself (hosted form, Merchant Interface), as the default.
    world.services.gateway.create_payment_profile(customer_profile, _nonce(world, "6011000000000012"),
                                                  BillTo(first_name="Ann", last_name="Other", zip="10001"),
                                                  default=True)
    reply = world.send("w365_SyncPaymentProfiles", "account", world.ids["account"])
    assert reply.body["status"] == "succeeded" and "1 imported, 1 refreshed" in reply.message, reply.body
    rows = {r["w365_cardlast4"]: r for r in _profiles(world)}
    assert set(rows) == {"XXXX1111", "XXXX0012"}
    assert rows["XXXX0012"]["w365_isdefault"] is True and rows["XXXX0012"]["statecode"] == 0
    assert rows["XXXX1111"]["w365_paymentprofileid"] == kept and rows["XXXX1111"]["statecode"] == 0
    # Running it again imports nothing more.
    again = world.send("w365_SyncPaymentProfiles", "account", world.ids["account"])
    assert "0 imported, 2 refreshed" in again.message and len(_profiles(world)) == 2


def test_set_default_keeps_exactly_one_default_in_step_with_the_gateway(world):
    first = _synced_profile(world, set_default=True)
    second = _synced_profile(world, number="5424000000000015")
    reply = world.send("w365_SetDefaultPaymentProfile", "w365_paymentprofile", second)
    assert reply.body["status"] == "succeeded", reply.body
    defaults = [r["w365_paymentprofileid"] for r in _profiles(world) if r["w365_isdefault"]]
    assert defaults == [second]
    assert world.row("w365_paymentprofile", first)["w365_isdefault"] is False
    row = world.row("w365_paymentprofile", second)
    cards = world.services.gateway.get_customer_profile(row["w365_customerprofileid"])
    assert [c.payment_profile_id for c in cards if c.is_default] == [row["w365_paymentprofileidgateway"]]


def test_set_default_needs_write_on_the_default_it_clears(world, monkeypatch):
    first = _synced_profile(world, set_default=True)
    second = _synced_profile(world, number="5424000000000015")
    # Record-level security the stand-in's organization-wide roles cannot express: Sam may write the profile he asks
    # about (as its owner could) but Dataverse refuses him the change to the account's current default.
    from standins.dataverse import actions
    checked = actions.retrieve_principal_access

    def owner_of_second(ctx, user, segment):
        if user["systemuserid"] == world.ids["salesperson"] and any(second in v for v in ctx.query.values()):
            return actions._ok(ctx, "Microsoft.Dynamics.CRM.RetrievePrincipalAccessResponse",
                               {"AccessRights": "ReadAccess, WriteAccess"})
        return checked(ctx, user, segment)

    monkeypatch.setattr(actions, "retrieve_principal_access", owner_of_second)
    reply = world.send("w365_SetDefaultPaymentProfile", "w365_paymentprofile", second, user=world.ids["salesperson"])
    assert reply.body["status"] == "failed" and "permission" in reply.message, reply.body
    assert world.row("w365_paymentprofile", first)["w365_isdefault"] is True
    assert world.row("w365_paymentprofile", second)["w365_isdefault"] is False
    first_row = world.row("w365_paymentprofile", first)
    cards = world.services.gateway.get_customer_profile(first_row["w365_customerprofileid"])
    assert [c.payment_profile_id for c in cards if c.is_default] == [first_row["w365_paymentprofileidgateway"]]


def test_set_default_refuses_a_profile_that_is_not_synced(world):
    pending = _direct_entry(world).body["paymentProfileId"]
    reply = world.send("w365_SetDefaultPaymentProfile", "w365_paymentprofile", pending)
    assert reply.body["status"] == "failed" and "inactive" in reply.message.lower()


def test_update_changes_the_bill_to_and_can_replace_the_card(world):
    profile_id = _synced_profile(world)
    reply = world.send("w365_UpdatePaymentProfile", "w365_paymentprofile", profile_id,
                       BillTo=json.dumps({**BILL_TO, "city": "Shelbyville"}))
    assert reply.body["status"] == "succeeded", reply.body
    assert world.row("w365_paymentprofile", profile_id)["w365_billto_city"] == "Shelbyville"
    opaque = _nonce(world, "5424000000000015")
    reply = world.send("w365_UpdatePaymentProfile", "w365_paymentprofile", profile_id, BillTo=json.dumps(BILL_TO),
                       OpaqueDataDescriptor=opaque.descriptor, OpaqueDataValue=opaque.value)
    assert reply.body["status"] == "succeeded", reply.body
    row = world.row("w365_paymentprofile", profile_id)
    assert row["w365_cardlast4"] == "XXXX0015" and row["w365_billto_city"] == "Springfield"


def test_deactivate_drops_the_default_and_names_the_contracts_that_use_it(world):
    profile_id = _synced_profile(world, set_default=True)
    world.standin.update("w365_billingcontract", world.ids["billingcontract"],
                         {"w365_paymentprofileid@odata.bind": f"/w365_paymentprofiles({profile_id})"})
    reply = world.send("w365_DeactivatePaymentProfile", "w365_paymentprofile", profile_id)
    assert reply.body["status"] == "succeeded"
    assert "Fabrikam billing" in reply.message and "Warning" in reply.message
    row = world.row("w365_paymentprofile", profile_id)
    assert row["statecode"] == 1 and row["w365_isdefault"] is False
    # Sync all refreshes it but does not bring a deactivated profile back.
    world.send("w365_SyncPaymentProfiles", "account", world.ids["account"])
    assert world.row("w365_paymentprofile", profile_id)["statecode"] == 1


# --- Profile Request ---------------------------------------------------------------------------------------------

def _request(world, body="Hello Nancy, please add your card here: {Secure Link} Thanks!"):
    return world.send("w365_AddPaymentProfile", "account", world.ids["account"], ContactId=world.ids["contact"],
                      Method="ProfileRequest", EmailSubject="Your card on file", EmailBody=body)


def test_profile_request_refuses_a_template_without_the_link(world):
    reply = _request(world, body="Please add your card.")
    assert reply.body["status"] == "failed" and "{Secure Link}" in reply.message
    assert world.rows("w365_securelink") == [] and world.rows("email") == []


def test_profile_request_stores_only_the_token_hash_and_emails_the_link(world):
    reply = _request(world)
    assert reply.body["status"] == "succeeded", reply.body
    link = world.row("w365_securelink", reply.body["secureLinkId"])
    email = world.row("email", reply.body["emailId"])
    match = re.search(r"https://w365\.example\.test/api/profile-requests/([A-Za-z0-9_-]{43})", email["description"])
    assert match, email["description"]
    token = match.group(1)
    import hashlib
    assert link["w365_tokenhash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps([link], default=str)
    assert "{Secure Link}" not in email["description"] and email["description"].startswith("Hello Nancy")
    assert email["statecode"] == 1                                 # sent through SendEmail
    expires = dt.datetime.fromisoformat(str(link["w365_expireson"]).replace("Z", "+00:00"))
    assert expires == world.clock.now() + dt.timedelta(hours=72)
    assert link["w365_status"] == world.choice("w365_securelink", "w365_status", "Sent")
    assert link["w365_emailid"]["id"] == reply.body["emailId"]
    parties = [p for p in world.rows("activityparty") if (p.get("activityid") or {}).get("id") == reply.body["emailId"]]
    assert {p["participationtypemask"] for p in parties} == {1, 2}


def test_profile_request_uses_the_configured_expiry(world):
    world.standin.update("w365_configuration", world.ids["configuration"], {"w365_linkexpiryhours": 24})
    link = world.row("w365_securelink", _request(world).body["secureLinkId"])
    expires = dt.datetime.fromisoformat(str(link["w365_expireson"]).replace("Z", "+00:00"))
    assert expires == world.clock.now() + dt.timedelta(hours=24)


@pytest.mark.parametrize("method", ["Bogus", ""])
def test_an_unknown_method_is_a_bad_request(world, method):
    reply = world.send("w365_AddPaymentProfile", "account", world.ids["account"], ContactId=world.ids["contact"],
                       Method=method)
    assert reply.status == 400
