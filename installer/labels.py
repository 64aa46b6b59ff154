"""Display names and descriptions a person reads in Dynamics, keyed by logical name. Installer data only: the function
app never imports this (core/footprint.py is what it imports), so wording changes never touch the deployed service.

TABLES: logical name -> (display name, plural, description). COLUMNS: (table, column) -> (display name, description),
for every column the installer adds (a test checks that none is missing). CUSTOM_APIS: unique name -> (display name,
description). The primary name column `w365_name` of each table of ours is named per table.
"""
from __future__ import annotations

TABLES: dict[str, tuple[str, str, str]] = {
    "w365_configuration": ("W365 Configuration", "W365 Configurations",
                           "Settings of W365 Payments: credit hold, links, approvals, autopay and dunning."),
    "w365_paymentprofile": ("Payment Profile", "Payment Profiles",
                            "A customer's card as the gateway keeps it: only its type, last four digits and expiry."),
    "w365_securelink": ("Secure Link", "Secure Links",
                        "An expiring, single-use link emailed to a customer to enter a card or approve an order."),
    "w365_billingcontract": ("Billing Contract", "Billing Contracts",
                             "Which card pays an account's invoices, and whether they are collected automatically."),
    "w365_paymenttransaction": ("Payment Transaction", "Payment Transactions",
                                "Every charge, refund and void sent to Authorize.Net, written before it is sent."),
    "w365_subscription": ("Subscription", "Subscriptions",
                          "A product to provision for an account, held back while the account is on credit hold."),
    "w365_provider": ("Provisioning Provider", "Provisioning Providers",
                      "Who provisions subscriptions: a task for a person (Manual) or a signed HTTPS call (Webhook)."),
    "w365_operation": ("Button Result", "Button Results",
                       "The outcome of a button press, shown to the person who pressed it."),
    "w365_billingrun": ("Billing Run", "Billing Runs",
                        "One automatic collection of due invoices, with its counts and amounts."),
}

_NAME = "Name"
COLUMNS: dict[tuple[str, str], tuple[str, str]] = {
    # W365 Configuration
    ("w365_configuration", "w365_name"): (_NAME, "Name of the configuration row (there is one)."),
    ("w365_configuration", "w365_enablecredithold"): ("Enable Credit Hold",
                                                      "Hold back subscriptions of accounts on credit hold."),
    ("w365_configuration", "w365_emailfromqueueid"): ("Email From Queue",
                                                      "The queue customer emails are sent from."),
    ("w365_configuration", "w365_linkexpiryhours"): ("Link Expiry (Hours)",
                                                     "How long a secure link stays valid; 72 by default."),
    ("w365_configuration", "w365_salescansendforapproval"): ("Sales Can Send for Approval",
                                                             "Let salespeople send orders they can edit for approval."),
    ("w365_configuration", "w365_approvalcanacceptpayment"): ("Approval Can Accept Payment",
                                                              "Let the customer pay on the order approval page."),
    ("w365_configuration", "w365_autopayenabled"): ("Autopay Enabled",
                                                    "Collect due invoices of autopay contracts automatically."),
    ("w365_configuration", "w365_retryschedule"): ("Retry Schedule (Days)",
                                                   "Days after the first failed attempt to try again, e.g. 3,7,14,21."),
    ("w365_configuration", "w365_dunningfinalaction"): ("Final Dunning Action",
                                                        "What happens when every retry has failed."),
    ("w365_configuration", "w365_cardupdatesubject"): ("Card Update Email Subject",
                                                       "Subject of the email asking a customer for a new card."),
    ("w365_configuration", "w365_cardupdatebody"): ("Card Update Email Body",
                                                    "Body of that email; must contain {Secure Link}."),
    ("w365_configuration", "w365_sendreceipts"): ("Send Receipts", "Email a receipt for each automatic payment."),
    ("w365_configuration", "w365_expirynoticedays"): ("Expiry Notice (Days)",
                                                      "Days before a card expires to ask for a new one; 0 turns it off."),
    ("w365_configuration", "w365_autopaysince"): ("Autopay Since",
                                                  "When autopay was first turned on; older invoices are never "
                                                  "collected automatically."),
    # Payment Profile
    ("w365_paymentprofile", "w365_name"): (_NAME, "The card as people see it, e.g. Visa XXXX1111."),
    ("w365_paymentprofile", "w365_accountid"): ("Account", "The account this card pays for."),
    ("w365_paymentprofile", "w365_contactid"): ("Contact", "The contact who gave the card."),
    ("w365_paymentprofile", "w365_customerprofileid"): ("Gateway Customer Profile ID",
                                                        "Authorize.Net customer profile id (set by the service)."),
    ("w365_paymentprofile", "w365_paymentprofileidgateway"): ("Gateway Payment Profile ID",
                                                              "Authorize.Net payment profile id (set by the service)."),
    ("w365_paymentprofile", "w365_cardtype"): ("Card Type", "Visa, Mastercard, ..."),
    ("w365_paymentprofile", "w365_cardlast4"): ("Card Number", "The last four digits, as XXXX1111."),
    ("w365_paymentprofile", "w365_expiration"): ("Expiry", "The card's expiry as the gateway shows it (YYYY-MM)."),
    ("w365_paymentprofile", "w365_billto_firstname"): ("Bill-To First Name", "Billing first name."),
    ("w365_paymentprofile", "w365_billto_lastname"): ("Bill-To Last Name", "Billing last name."),
    ("w365_paymentprofile", "w365_billto_company"): ("Bill-To Company", "Billing company."),
    ("w365_paymentprofile", "w365_billto_address"): ("Bill-To Address", "Billing street address."),
    ("w365_paymentprofile", "w365_billto_city"): ("Bill-To City", "Billing city."),
    ("w365_paymentprofile", "w365_billto_state"): ("Bill-To State", "Billing state or region."),
    ("w365_paymentprofile", "w365_billto_zip"): ("Bill-To ZIP", "Billing postal code."),
    ("w365_paymentprofile", "w365_billto_country"): ("Bill-To Country", "Billing country."),
    ("w365_paymentprofile", "w365_billto_phone"): ("Bill-To Phone", "Billing phone number."),
    ("w365_paymentprofile", "w365_isdefault"): ("Is Default", "The card charged when no other is named."),
    ("w365_paymentprofile", "w365_source"): ("Source", "How the card was added."),
    ("w365_paymentprofile", "w365_syncstatus"): ("Sync Status",
                                                 "Whether the gateway confirmed the card (set by the service)."),
    ("w365_paymentprofile", "w365_lastsyncedon"): ("Last Synced On", "When the gateway last confirmed the card."),
    ("w365_paymentprofile", "w365_expirynoticeon"): ("Expiry Notice Sent On",
                                                     "When the customer was asked for a new card before expiry."),
    # Secure Link
    ("w365_securelink", "w365_name"): (_NAME, "What the link is for and for whom."),
    ("w365_securelink", "w365_purpose"): ("Purpose", "Profile Request, Order Approval or Card Update."),
    ("w365_securelink", "w365_accountid"): ("Account", "The customer's account."),
    ("w365_securelink", "w365_contactid"): ("Contact", "The person the link was sent to."),
    ("w365_securelink", "w365_salesorderid"): ("Order", "The order to approve."),
    ("w365_securelink", "w365_tokenhash"): ("Token Hash", "SHA-256 of the link's token; the token is never kept."),
    ("w365_securelink", "w365_expireson"): ("Expires On", "After this the link no longer opens."),
    ("w365_securelink", "w365_status"): ("Status", "Sent, Completed, Expired, Cancelled or Locked."),
    ("w365_securelink", "w365_completedon"): ("Completed On", "When the customer finished."),
    ("w365_securelink", "w365_paymentprofileid"): ("Payment Profile", "The card the customer entered."),
    ("w365_securelink", "w365_emailid"): ("Email", "The email that carried the link."),
    ("w365_securelink", "w365_failedprofileid"): ("Failed Card", "Card Update: the card that was declined."),
    ("w365_securelink", "w365_declinedcards"): ("Declined Cards", "Cards refused on this link; at 5 it locks."),
    # Billing Contract
    ("w365_billingcontract", "w365_name"): (_NAME, "Name of the contract."),
    ("w365_billingcontract", "w365_accountid"): ("Account", "The account billed."),
    ("w365_billingcontract", "w365_paymentprofileid"): ("Payment Profile", "The card that pays; else the default."),
    ("w365_billingcontract", "w365_autopay"): ("Autopay", "Collect this contract's invoices automatically."),
    # Payment Transaction
    ("w365_paymenttransaction", "w365_name"): (_NAME, "What was charged or refunded."),
    ("w365_paymenttransaction", "w365_invoiceid"): ("Invoice", "The invoice paid or refunded."),
    ("w365_paymenttransaction", "w365_salesorderid"): ("Order", "The order paid."),
    ("w365_paymenttransaction", "w365_paymentprofileid"): ("Payment Profile", "The card used."),
    ("w365_paymenttransaction", "w365_accountid"): ("Account", "The customer's account."),
    ("w365_paymenttransaction", "w365_amount"): ("Amount", "The amount sent to the gateway."),
    ("w365_paymenttransaction", "w365_type"): ("Type", "Charge, Refund or Void."),
    ("w365_paymenttransaction", "w365_outcome"): ("Outcome", "What the gateway answered (set by the service)."),
    ("w365_paymenttransaction", "w365_transactionresult"): ("Transaction Result", "The gateway's answer in words."),
    ("w365_paymenttransaction", "w365_gatewaytransactionid"): ("Gateway Transaction ID",
                                                               "Authorize.Net transaction id."),
    ("w365_paymenttransaction", "w365_responsecode"): ("Response Code", "Authorize.Net response code."),
    ("w365_paymenttransaction", "w365_authcode"): ("Authorization Code", "The bank's authorization code."),
    ("w365_paymenttransaction", "w365_refid"): ("Attempt Reference", "Unique reference of this attempt (refId)."),
    ("w365_paymenttransaction", "w365_source"): ("Source", "Manual, Autopay, Retry, Order or Customer Page."),
    ("w365_paymenttransaction", "w365_reasoncode"): ("Reason Code", "The gateway's response reason code."),
    ("w365_paymenttransaction", "w365_declinetype"): ("Decline Type", "Soft, Hard or Merchant."),
    ("w365_paymenttransaction", "w365_billingrunid"): ("Billing Run", "The run that made this attempt."),
    ("w365_paymenttransaction", "w365_nextcheckon"): ("Next Check On",
                                                      "When the service looks at an open attempt again."),
    ("w365_paymenttransaction", "w365_needsattention"): ("Needs Attention", "A person must look at this attempt."),
    # Subscription
    ("w365_subscription", "w365_name"): (_NAME, "What is provisioned."),
    ("w365_subscription", "w365_accountid"): ("Account", "The customer's account."),
    ("w365_subscription", "w365_salesorderid"): ("Order", "The order it came from."),
    ("w365_subscription", "w365_productid"): ("Product", "The product provisioned."),
    ("w365_subscription", "w365_quantity"): ("Quantity", "How many."),
    ("w365_subscription", "w365_providerid"): ("Provider", "Who provisions it."),
    ("w365_subscription", "w365_provisioningstatus"): ("Provisioning Status",
                                                       "Pending, Blocked By Credit Hold, Provisioning, Provisioned "
                                                       "or Failed."),
    ("w365_subscription", "w365_provisioningresult"): ("Provisioning Result", "What the provider said."),
    # Provider
    ("w365_provider", "w365_name"): (_NAME, "Name of the provider."),
    ("w365_provider", "w365_type"): ("Type", "Manual (a task) or Webhook (a signed HTTPS call)."),
    ("w365_provider", "w365_endpointurl"): ("Endpoint URL",
                                            "Webhook providers: an https address on the public internet."),
    # Button Result
    ("w365_operation", "w365_name"): (_NAME, "The button and its record."),
    ("w365_operation", "w365_requestid"): ("Request ID", "The id the button sent."),
    ("w365_operation", "w365_message"): ("Message", "What the person is told."),
    ("w365_operation", "w365_status"): ("Status", "Succeeded or Failed."),
    ("w365_operation", "w365_messagename"): ("Button Message", "The Custom API called."),
    ("w365_operation", "w365_regardingtable"): ("Regarding Table", "The table of the record."),
    ("w365_operation", "w365_regardingid"): ("Regarding Record ID", "The id of the record."),
    ("w365_operation", "w365_initiatinguserid"): ("Pressed By (User ID)", "Who pressed the button."),
    ("w365_operation", "w365_correlationid"): ("Correlation ID", "Dataverse's correlation id, for support."),
    # Billing Run
    ("w365_billingrun", "w365_name"): (_NAME, "The run's date and trigger."),
    ("w365_billingrun", "w365_asof"): ("As Of", "Invoices due on or before this date were collected."),
    ("w365_billingrun", "w365_trigger"): ("Trigger", "Timer or Manual."),
    ("w365_billingrun", "w365_status"): ("Status", "Running, Completed or Completed With Errors."),
    ("w365_billingrun", "w365_startedon"): ("Started On", "When the run started."),
    ("w365_billingrun", "w365_completedon"): ("Completed On", "When the run closed."),
    ("w365_billingrun", "w365_startedby"): ("Started By", "Who started it; empty for the timer."),
    ("w365_billingrun", "w365_invoicesdue"): ("Invoices Due", "Invoices selected."),
    ("w365_billingrun", "w365_charged"): ("Charged", "Invoices charged."),
    ("w365_billingrun", "w365_declined"): ("Declined", "Invoices declined."),
    ("w365_billingrun", "w365_skipped"): ("Skipped", "Invoices skipped."),
    ("w365_billingrun", "w365_pending"): ("Pending", "Held or unknown when the run closed."),
    ("w365_billingrun", "w365_amountcollected"): ("Amount Collected", "Total approved."),
    ("w365_billingrun", "w365_amountfailed"): ("Amount Failed", "Total declined."),
    ("w365_billingrun", "w365_amountrecovered"): ("Amount Recovered", "Collected by retries and card updates."),
    # Our columns on native tables
    ("account", "w365_gatewaycustomerprofileid"): ("Gateway Customer Profile ID",
                                                   "Authorize.Net customer profile id (set by the service)."),
    ("invoice", "w365_billingcontractid"): ("Billing Contract", "The contract this invoice bills."),
    ("invoice", "w365_amountpaid"): ("Amount Paid", "Paid through W365 Payments (set by the service)."),
    ("invoice", "w365_balance"): ("Balance", "What is left to pay (set by the service)."),
    ("invoice", "w365_lastchargestatus"): ("Last Charge Status", "The outcome of the last charge."),
    ("invoice", "w365_dunningstatus"): ("Dunning Status",
                                        "None, Retrying, Awaiting Card, Exhausted, Recovered or Needs Review."),
    ("invoice", "w365_firstfailedon"): ("First Failed On", "When automatic collection first failed."),
    ("invoice", "w365_nextretryon"): ("Next Retry On", "When collection is tried again."),
    ("invoice", "w365_failedattempts"): ("Failed Attempts", "Declined automatic attempts so far."),
    ("salesorder", "w365_orderstatus"): ("Payment Status",
                                         "Draft, Pending Approval, Declined, Activated or Scheduled."),
    ("salesorder", "w365_paymentdeclined"): ("Payment Declined", "The last payment of this order was declined."),
    ("salesorder", "w365_activationdate"): ("Activation Date", "When the paid order is activated."),
    ("salesorder", "w365_paymentprofileid"): ("Payment Profile", "The card that paid."),
    ("salesorder", "w365_signaturename"): ("Signed By", "The name the customer typed to approve."),
    ("salesorder", "w365_approvedon"): ("Approved On", "When the customer approved."),
}

CUSTOM_APIS: dict[str, tuple[str, str]] = {
    "w365_AddPaymentProfile": ("Add Payment Profile", "Add a card by Direct Entry or email a Profile Request."),
    "w365_SyncPaymentProfile": ("Sync Payment Profile", "Check a card with the gateway and make it usable."),
    "w365_SyncPaymentProfiles": ("Sync Payment Profiles", "Import and refresh every card of an account."),
    "w365_SetDefaultPaymentProfile": ("Set Default Payment Profile", "Make this card the account's default."),
    "w365_UpdatePaymentProfile": ("Update Payment Profile", "Change a card's billing details or the card itself."),
    "w365_DeactivatePaymentProfile": ("Deactivate Payment Profile", "Stop using a card and remove it at the gateway."),
    "w365_ChargeInvoice": ("Charge Invoice", "Charge the invoice's balance, or less, to a card on file."),
    "w365_RefundTransaction": ("Refund Transaction", "Refund or void a charge, in full or in part."),
    "w365_SubmitOrderPayment": ("Submit Order Payment", "Pay an order with a card on file or a new card."),
    "w365_SendOrderForApproval": ("Send Order for Approval", "Email the customer a link to approve the order."),
    "w365_ConvertOrderToDraft": ("Convert Order to Draft", "Put a declined or pending order back to Draft."),
    "w365_RunBilling": ("Run Billing", "Collect every invoice that is due now."),
}


def table_label(logical_name: str) -> tuple[str, str, str]:
    return TABLES[logical_name]


def column_label(table: str, column: str) -> tuple[str, str]:
    """A column added to the footprint before it got a name here still installs, under a derived name (the unit test
    test_every_table_column_and_custom_api_has_a_display_name... fails until it gets a real one)."""
    found = COLUMNS.get((table, column))
    if found is None:
        derived = column.removeprefix("w365_").replace("_", " ").title()
        return derived, derived
    return found


def api_label(unique_name: str) -> tuple[str, str]:
    return CUSTOM_APIS[unique_name]
