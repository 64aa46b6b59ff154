"""Round trips per button and event: Dataverse requests, $batch parts, gateway calls and the queued work each causes.

Measured through the real HTTP entry (`world.send`: POST /api/dataverse through the function, the real Dataverse and
Authorize.Net clients over `responses` into the stand-ins), with the Dataverse stand-in's request counter and the
gateway calls `responses` saw. A `$batch` is one request (its parts are shown apart); WhoAmI is not counted (asked
once per worker), nor are token calls (none reach the stand-ins). Queued work the button causes (provisioning,
reconciliation) is delivered after the button's answer and counted in its own columns.

Targets: issue 16 ("Every button at its minimum"). Each row runs in a fresh world, so no row profits from another's
caches; the configuration row is read as a fresh worker would."""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

import responses

GATEWAY_URL = "https://apitest.authorize.net/xml/v1/request.api"
DATAVERSE_API = "https://contoso.crm.dynamics.com/api/data/"
BILL_TO = {"firstName": "Nancy", "lastName": "Davolio", "company": "Fabrikam", "address": "1 Main St",
           "city": "Redmond", "state": "WA", "zip": "98052", "country": "US", "phoneNumber": "555-0100"}
MASTERCARD = "5424000000000015"
_PART = re.compile(rb"^(GET|POST|PATCH|PUT|DELETE) \S+ HTTP/1\.1", re.MULTILINE)
NOT_COUNTED = ("WhoAmI",)
# The provider's call of a provisioning message (the "+ provider" of its target): the Manual provider's task, or a
# Webhook provider's POST (any URL that is neither Dataverse nor the gateway).
PROVIDER_WRITES = (("POST", "tasks"),)


@dataclass
class Measured:
    dataverse: int
    batch_parts: list[int]
    gateway: int
    config_reads: int
    queued: int = 0
    queued_dataverse: int = 0
    queued_gateway: int = 0
    queued_provider: int = 0             # of the queued work's requests, the providers' calls
    reply: Any = None
    requests: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    name: str
    dataverse: int                       # target: at most this many Dataverse requests
    gateway: int | None = None           # target: at most this many gateway calls (None: not targeted)
    per_queued: int | None = None        # target per queued message (provisioning): Dataverse requests each


# --- measuring ------------------------------------------------------------------------------------------------------

def _dataverse_calls(world) -> list[tuple[str, str]]:
    return [(m, p) for m, p in world.standin.requests if not p.startswith(NOT_COUNTED)]


def measure(world, rsps, action: Callable[[], Any]) -> Measured:
    world.standin.reset_counters()
    before = len(rsps.calls)
    reply = action()
    calls = list(rsps.calls)[before:]
    requests = _dataverse_calls(world)
    parts = [len(_PART.findall(_body(c.request))) for c in calls
             if c.request.url.startswith(DATAVERSE_API) and "$batch" in c.request.url]
    measured = Measured(
        dataverse=len(requests), batch_parts=parts,
        gateway=sum(1 for c in calls if c.request.url.startswith(GATEWAY_URL)),
        config_reads=sum(1 for _, p in requests if p.startswith("w365_configurations"))
        + sum(_body(c.request).count(b"w365_configurations") for c in calls if "$batch" in c.request.url),
        reply=reply, requests=tuple(f"{m} {p.split('(')[0].split('?')[0]}" for m, p in requests))
    # Queued work the button caused (not the reconciler's delayed follow-ups: they run minutes later, if at all).
    world.standin.reset_counters()
    before = len(rsps.calls)
    measured.queued = world.queue.drain()
    calls = list(rsps.calls)[before:]
    queued = _dataverse_calls(world)
    measured.queued_dataverse = len(queued)
    measured.queued_gateway = sum(1 for c in calls if c.request.url.startswith(GATEWAY_URL))
    measured.queued_provider = (
        sum(1 for m, p in queued if (m, p.split("(")[0].split("?")[0]) in PROVIDER_WRITES)
        + sum(1 for c in calls if not c.request.url.startswith((GATEWAY_URL, DATAVERSE_API))
              and c.request.url.startswith("http") and "login.microsoftonline.com" not in c.request.url))
    return measured


def _body(request) -> bytes:
    body = request.body or b""
    return body.encode() if isinstance(body, str) else body


# --- set-ups (direct, through the stand-ins, not counted) -----------------------------------------------------------

def _synced_profile(world, number: str, *, default: bool) -> str:
    """A card in the simulator and its Active, Synced row, the account's customer profile recorded on the account."""
    from core import footprint
    from core.ports import BillTo

    gateway = world.services.gateway
    account = world.row("account", world.ids["account"])
    customer = account.get("w365_gatewaycustomerprofileid") or gateway.create_customer_profile(
        "FAB-001", description="Fabrikam")
    world.standin.update("account", world.ids["account"], {"w365_gatewaycustomerprofileid": customer})
    nonce = world.simulator.issue_nonce(number, 12, 2030, "123")
    bill_to = BillTo(first_name="Nancy", last_name="Davolio", address="1 Main St", city="Redmond", state="WA",
                     zip="98052", country="US")
    payment = gateway.create_payment_profile(customer, nonce, bill_to, default=default)
    masked = "XXXX" + number[-4:]
    return world.standin.seed("w365_paymentprofile", {
        "w365_name": f"Card {masked}", "w365_accountid@odata.bind": f"/accounts({world.ids['account']})",
        "w365_contactid@odata.bind": f"/contacts({world.ids['contact']})",
        "w365_customerprofileid": customer, "w365_paymentprofileidgateway": payment, "w365_cardtype": "Visa",
        "w365_cardlast4": masked, "w365_expiration": "2030-12", "w365_isdefault": default, "statecode": 0,
        "statuscode": 1, "w365_billto_firstname": "Nancy", "w365_billto_lastname": "Davolio",
        "w365_billto_address": "1 Main St", "w365_billto_city": "Redmond", "w365_billto_state": "WA",
        "w365_billto_zip": "98052", "w365_billto_country": "US",
        "w365_syncstatus": footprint.choice("w365_paymentprofile", "w365_syncstatus", "Synced"),
        "w365_source": footprint.choice("w365_paymentprofile", "w365_source", "Direct Entry")})


def _nonce_params(world, number: str = "4111111111111111") -> dict[str, Any]:
    nonce = world.simulator.issue_nonce(number, 12, 2030, "123")
    return {"OpaqueDataDescriptor": nonce.descriptor, "OpaqueDataValue": nonce.value,
            "BillTo": json.dumps(BILL_TO)}


def _charge(world, amount: str | None = None, user: str | None = None):
    params = {"Amount": Decimal(amount)} if amount else {}
    return world.send("w365_ChargeInvoice", "invoice", world.ids["invoice1"], user=user, **params)


def _send_for_approval(world, user: str | None = None):
    return world.send("w365_SendOrderForApproval", "salesorder", world.ids["order"], user=user,
                      ContactId=world.ids["contact"],
                      EmailSubject="Please approve your order", EmailBody="Approve here: {Approval Link}")


def scenario_charge(world):
    _synced_profile(world, "4111111111111111", default=True)
    return lambda user=None: _charge(world, "40.00", user=user)


def scenario_refund(world):
    _synced_profile(world, "4111111111111111", default=True)
    reply = _charge(world, "40.00")
    return lambda user=None: world.send("w365_RefundTransaction", "w365_paymenttransaction",
                                        reply.body["transactionId"], user=user)


def scenario_order_card_on_file(world):
    profile = _synced_profile(world, "4111111111111111", default=False)
    return lambda user=None: world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"], user=user,
                                        PaymentProfileId=profile)


def scenario_order_new_card(world):
    params = _nonce_params(world)
    return lambda user=None: world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"], user=user,
                                        **params)


def scenario_send_for_approval(world):
    return lambda user=None: _send_for_approval(world, user=user)


def scenario_convert_to_draft(world):
    assert _send_for_approval(world).body["status"] == "succeeded"
    world.queue.drain()
    return lambda user=None: world.send("w365_ConvertOrderToDraft", "salesorder", world.ids["order"], user=user)


def scenario_profile_request(world):
    return lambda user=None: world.send("w365_AddPaymentProfile", "account", world.ids["account"], user=user,
                                        Method="ProfileRequest",
                              ContactId=world.ids["contact"], EmailSubject="Your card",
                              EmailBody="Add your card here: {Secure Link}")


def scenario_direct_entry(world):
    params = _nonce_params(world)
    return lambda user=None: world.send("w365_AddPaymentProfile", "account", world.ids["account"], user=user,
                                        Method="DirectEntry",
                              ContactId=world.ids["contact"], SetAsDefault=False, **params)


def scenario_sync(world):
    params = _nonce_params(world)
    added = world.send("w365_AddPaymentProfile", "account", world.ids["account"], Method="DirectEntry",
                       ContactId=world.ids["contact"], **params)
    assert added.body["status"] == "succeeded", added.body
    return lambda user=None: world.send("w365_SyncPaymentProfile", "w365_paymentprofile",
                                        added.body["paymentProfileId"], user=user)


def scenario_sync_all(world):
    _synced_profile(world, "4111111111111111", default=True)
    _synced_profile(world, MASTERCARD, default=False)
    return lambda user=None: world.send("w365_SyncPaymentProfiles", "account", world.ids["account"], user=user)


def scenario_set_default(world):
    _synced_profile(world, "4111111111111111", default=True)
    second = _synced_profile(world, MASTERCARD, default=False)
    return lambda user=None: world.send("w365_SetDefaultPaymentProfile", "w365_paymentprofile", second, user=user)


def scenario_update(world):
    profile = _synced_profile(world, "4111111111111111", default=True)
    return lambda user=None: world.send("w365_UpdatePaymentProfile", "w365_paymentprofile", profile, user=user,
                              BillTo=json.dumps({**BILL_TO, "address": "2 Side St"}))


def scenario_deactivate(world):
    profile = _synced_profile(world, "4111111111111111", default=True)
    return lambda user=None: world.send("w365_DeactivatePaymentProfile", "w365_paymentprofile", profile, user=user)


ROWS: tuple[tuple[Row, Callable], ...] = (
    (Row("Charge Invoice (card on file)", 3, 1), scenario_charge),
    (Row("Refund/Void", 4, 2), scenario_refund),
    (Row("Submit Order Payment, card on file", 8, 2), scenario_order_card_on_file),
    (Row("Submit Order Payment, new card", 9, 2), scenario_order_new_card),
    (Row("  each provisioned subscription (queued)", 0, None, per_queued=2), None),
    (Row("Send for Approval", 6), scenario_send_for_approval),
    (Row("Convert to Draft", 3), scenario_convert_to_draft),
    (Row("Add Payment Profile by request", 5), scenario_profile_request),
    (Row("Add Payment Profile by Direct Entry", 3, 1), scenario_direct_entry),
    (Row("Sync Payment Profile", 3), scenario_sync),
    (Row("Sync Payment Profiles (account)", 3), scenario_sync_all),
    (Row("Set Default Payment Profile", 3, 1), scenario_set_default),
    (Row("Update Payment Profile", 3), scenario_update),
    (Row("Deactivate Payment Profile", 3), scenario_deactivate),
)


def run() -> list[tuple[Row, Measured]]:
    from app.composition import set_services
    from tests.conftest import build_world

    results: list[tuple[Row, Measured]] = []
    for row, scenario in ROWS:
        if scenario is None:                      # derived from the row above (its queued work)
            previous = results[-1][1]
            results.append((row, previous))
            continue
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            world = build_world(rsps)
            set_services(world.services)
            try:
                action = scenario(world)
                world.queue.drain()
                results.append((row, measure(world, rsps, action)))
            finally:
                set_services(None)
    return results


def met(row: Row, m: Measured) -> bool:
    if row.per_queued is not None:           # at most one provider's call each, and the rest within the target
        return (m.queued > 0 and m.queued_provider <= m.queued
                and m.queued_dataverse - m.queued_provider <= row.per_queued * m.queued)
    ok = m.reply is not None and m.reply.status == 200 and m.reply.body.get("status") == "succeeded"
    return ok and m.dataverse <= row.dataverse and (row.gateway is None or m.gateway <= row.gateway)


def table(results: list[tuple[Row, Measured]]) -> list[tuple[str, ...]]:
    header = ("button / event", "Dataverse", "$batch parts", "gateway", "config reads", "queued (Dataverse/gateway)",
              "target", "met")
    lines = [header]
    for row, m in results:
        if row.per_queued is not None:
            own = m.queued_dataverse - m.queued_provider
            each = f"{own / m.queued:.1f} each + {m.queued_provider / m.queued:.1f} provider" if m.queued else "-"
            lines.append((row.name, each, "", "", "", f"{m.queued} msgs: {m.queued_dataverse}/{m.queued_gateway}",
                          f"<= {row.per_queued} each + provider", "yes" if met(row, m) else "NO"))
            continue
        target = f"<= {row.dataverse}" + (f" / {row.gateway}" if row.gateway is not None else "")
        queued = f"{m.queued} msgs: {m.queued_dataverse}/{m.queued_gateway}" if m.queued else "-"
        parts = "+".join(str(p) for p in m.batch_parts) or "-"
        lines.append((row.name, str(m.dataverse), parts, str(m.gateway), str(m.config_reads), queued, target,
                      "yes" if met(row, m) else "NO"))
    return lines


def markdown(lines: list[tuple[str, ...]]) -> str:
    out = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(lines[0])]
    out += ["| " + " | ".join(cell.strip() for cell in line) + " |" for line in lines[1:]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> bool:
    import sys

    argv = sys.argv[1:] if argv is None else argv
    results = run()
    lines = table(results)
    if "--markdown" in argv:
        print(markdown(lines))
    else:
        widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
        for line in lines:
            print("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip())
    if "--verbose" in argv:
        for row, m in results:
            if row.per_queued is None:
                reply = m.reply.body if m.reply is not None else {}
                print(f"\n{row.name}: {reply.get('status')}: {str(reply.get('message'))[:160]}")
                print("   " + ", ".join(m.requests))
    return all(met(row, m) for row, m in results)


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
