"""The footprint matches CONTRACT §3-§4: every table and column, choice values in CONTRACT order from 100000000."""
import re
from pathlib import Path

import pytest

from core import footprint as fp

CONTRACT_COLUMNS = {
    "account": ["creditonhold", "w365_gatewaycustomerprofileid"],
    "contact": ["parentcustomerid", "emailaddress1"],
    "w365_configuration": ["w365_enablecredithold", "w365_emailfromqueueid", "w365_linkexpiryhours",
                           "w365_salescansendforapproval", "w365_approvalcanacceptpayment"],
    "w365_paymentprofile": [
        "w365_name", "w365_accountid", "w365_contactid", "w365_customerprofileid", "w365_paymentprofileidgateway",
        "w365_cardtype", "w365_cardlast4", "w365_expiration", "w365_billto_firstname", "w365_billto_lastname",
        "w365_billto_company", "w365_billto_address", "w365_billto_city", "w365_billto_state", "w365_billto_zip",
        "w365_billto_country", "w365_billto_phone", "w365_isdefault", "w365_source", "w365_syncstatus",
        "w365_lastsyncedon", "statecode"],
    "w365_securelink": ["w365_purpose", "w365_accountid", "w365_contactid", "w365_salesorderid", "w365_tokenhash",
                        "w365_expireson", "w365_status", "w365_completedon", "w365_paymentprofileid", "w365_emailid"],
    "w365_billingcontract": ["w365_accountid", "w365_paymentprofileid"],
    "invoice": ["statecode", "statuscode", "totalamount", "w365_billingcontractid", "w365_amountpaid", "w365_balance",
                "w365_lastchargestatus"],
    "w365_paymenttransaction": [
        "w365_name", "w365_invoiceid", "w365_salesorderid", "w365_paymentprofileid", "w365_accountid", "w365_amount",
        "w365_type", "w365_outcome", "w365_transactionresult", "w365_gatewaytransactionid", "w365_responsecode",
        "w365_authcode", "w365_refid", "statecode"],
    "w365_subscription": ["w365_accountid", "w365_salesorderid", "w365_productid", "w365_quantity", "w365_providerid",
                          "w365_provisioningstatus", "w365_provisioningresult"],
    "w365_provider": ["w365_name", "w365_type", "w365_endpointurl"],
    "salesorder": ["statecode", "w365_orderstatus", "w365_paymentdeclined", "w365_activationdate",
                   "w365_paymentprofileid", "w365_signaturename", "w365_approvedon"],
    "w365_operation": ["w365_requestid", "w365_message", "w365_status", "w365_messagename", "w365_regardingtable",
                       "w365_regardingid", "w365_initiatinguserid", "w365_correlationid", "statecode", "statuscode"],
}

CONTRACT_CHOICES = {
    ("w365_paymentprofile", "w365_source"): ["Direct Entry", "Profile Request", "Order"],
    ("w365_paymentprofile", "w365_syncstatus"): ["Pending Sync", "Synced", "Sync Failed"],
    ("w365_securelink", "w365_purpose"): ["Profile Request", "Order Approval"],
    ("w365_securelink", "w365_status"): ["Sent", "Completed", "Expired", "Cancelled"],
    ("w365_paymenttransaction", "w365_type"): ["Charge", "Refund", "Void"],
    ("w365_paymenttransaction", "w365_outcome"): ["Pending", "Approved", "Declined", "Error", "Held For Review",
                                                  "Unknown"],
    ("w365_subscription", "w365_provisioningstatus"): ["Pending", "Blocked By Credit Hold", "Provisioning",
                                                       "Provisioned", "Failed"],
    ("w365_provider", "w365_type"): ["Manual", "Webhook"],
    ("salesorder", "w365_orderstatus"): ["Draft", "Pending Approval", "Declined", "Activated", "Scheduled"],
    ("w365_operation", "w365_status"): ["Succeeded", "Failed"],
}


@pytest.mark.parametrize("table_name", sorted(CONTRACT_COLUMNS))
def test_every_contract_column_is_declared(table_name):
    missing = [c for c in CONTRACT_COLUMNS[table_name] if fp.table(table_name).column(c) is None]
    assert missing == []


@pytest.mark.parametrize("key", sorted(CONTRACT_CHOICES))
def test_choice_values_follow_contract_order(key):
    table_name, column = key
    for i, text in enumerate(CONTRACT_CHOICES[key]):
        assert fp.choice(table_name, column, text) == 100000000 + i
        assert fp.label(table_name, column, 100000000 + i) == text


def test_native_states_and_statuses():
    assert fp.choice("invoice", "statecode", "Paid") == 2
    assert fp.choice("invoice", "statuscode", "Partial") == 100002
    assert fp.label("invoice", "statuscode", 100003) == "Canceled"
    assert fp.INVOICE.valid_state_status(2, 100001) and not fp.INVOICE.valid_state_status(2, 1)
    assert [s.value for s in fp.SALESORDER.states] == [0, 1, 2, 3, 4]
    assert fp.W365_PAYMENTPROFILE.state(1).label == "Inactive"
    with pytest.raises(KeyError):
        fp.choice("invoice", "statecode", "Paid (Complete)")


def test_entity_sets_and_lookup_names():
    assert fp.entity_set("w365_paymentprofile") == "w365_paymentprofiles"
    assert fp.table_by_entity_set("transactioncurrencies").logical_name == "transactioncurrency"
    assert fp.W365_PAYMENTPROFILE.column("w365_accountid").value_property == "_w365_accountid_value"
    assert fp.W365_PAYMENTPROFILE.column("w365_accountid").navigations == {"w365_accountid": "account"}
    assert fp.INVOICE.column("customerid").navigations["customerid_account"] == "account"
    assert fp.CONTACT.column("parentcustomerid").navigations["parentcustomerid_account"] == "account"
    assert "objectid_salesorder" in fp.ANNOTATION.column("objectid").navigations


def test_one_to_many_relationships_are_unique_per_table_and_named_by_rule():
    for t in fp.TABLES:
        names = [r.name for r in fp.one_to_many(t.logical_name)]
        assert len(names) == len(set(names)), t.logical_name
    names = {r.name: r for r in fp.one_to_many("invoice")}
    assert names["invoice_details"].referencing == "invoicedetail"
    assert names["w365_paymenttransaction_invoiceid"].column == "w365_invoiceid"
    assert {r.name for r in fp.one_to_many("salesorder")} >= {"order_details", "SalesOrder_Annotation"}


def test_installer_adds_only_our_columns_on_native_tables():
    assert {c.name for c in fp.ACCOUNT.custom_columns()} == {"w365_gatewaycustomerprofileid"}
    assert all(c.is_ours for t in fp.NATIVE_TABLES for c in t.custom_columns())
    assert fp.W365_PAYMENTTRANSACTION.alternate_keys == (("w365_refid",),)
    assert fp.W365_OPERATION.alternate_keys == (("w365_requestid",),)


def test_custom_apis_and_steps_cover_contract_messages():
    names = {a.unique_name for a in fp.CUSTOM_APIS}
    assert len(names) == 12 and all(a.parameters[0].name == "RequestId" for a in fp.CUSTOM_APIS)
    charge = next(a for a in fp.CUSTOM_APIS if a.unique_name == "w365_ChargeInvoice")
    assert charge.bound_to == "invoice" and charge.parameters[1] == fp.Parameter("Amount", "Decimal", True)
    steps = {(s.message, s.table): s for s in fp.WEBHOOK_STEPS}
    assert all((n, a.bound_to) in steps for a in fp.CUSTOM_APIS for n in [a.unique_name])
    assert all(s.stage == 40 and s.mode == 1 for s in fp.WEBHOOK_STEPS)
    assert steps[("Update", "account")].pre_image == ("creditonhold",)
    assert steps[("Update", "w365_configuration")].filtering_attributes == ("w365_enablecredithold",
                                                                         "w365_autopayenabled")
    assert ("Create", "w365_subscription") in steps
    assert fp.CONFIGURATION_DEFAULTS["w365_linkexpiryhours"] == 72
    assert {w.name for w in fp.WEB_RESOURCES} >= {"w365_/scripts/common.js", "w365_/scripts/invoice.js"}


def test_environment_variables_are_the_dialogs_and_take_public_settings_only():
    script = (Path(__file__).resolve().parents[2] / "webresources/w365_/scripts/directentry.js").read_text()
    variables = re.search(r"var VARIABLES = \{(.*?)\};", script, re.S).group(1)
    assert {v.schema_name for v in fp.ENVIRONMENT_VARIABLES} == set(re.findall(r'"(w365_\w+)"', variables))
    assert {v.setting for v in fp.ENVIRONMENT_VARIABLES} == fp.PUBLIC_SETTINGS
    assert fp.choice("environmentvariabledefinition", "type", "String") == 100000000
    with pytest.raises(ValueError):
        fp.EnvironmentVariable("w365_TransactionKey", "Key", "String", None, "AUTHORIZENET_TRANSACTION_KEY")
