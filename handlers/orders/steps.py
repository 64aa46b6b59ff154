"""The order messages of CONTRACT §3 (ribbon buttons on the order form): read the parameters, call one use case."""
from __future__ import annotations

from core.context import PluginContext
from core.errors import BadRequest
from core.services import Services
from core.steps import Outcome
from handlers.orders import approval, payment
from handlers.payment_profiles.profiles import bill_to_from_json, opaque_from


def submit_order_payment(ctx: PluginContext, services: Services) -> Outcome:
    profile_id = ctx.param("PaymentProfileId")
    opaque = opaque_from(ctx.param("OpaqueDataDescriptor"), ctx.param("OpaqueDataValue"))
    if bool(profile_id) == bool(opaque):
        raise BadRequest("Give either PaymentProfileId (a card on file) or OpaqueDataDescriptor, OpaqueDataValue and "
                         "BillTo (a new card).")
    card = payment.CardOnFile(str(profile_id)) if profile_id else \
        payment.NewCard(opaque, bill_to_from_json(ctx.param("BillTo")))
    result = payment.submit_order_payment(services, ctx.primary_entity_id, card, user_id=ctx.initiating_user_id,
                                          request_id=ctx.request_id)
    data = {"outcome": result.outcome, "transactionId": result.transaction_id, "invoiceId": result.invoice_id,
            "paymentProfileId": result.profile_id}
    return Outcome.succeeded(result.message, **data) if result.approved else Outcome.failed(result.message, **data)


def send_order_for_approval(ctx: PluginContext, services: Services) -> Outcome:
    return Outcome.succeeded(approval.send_for_approval(
        services, ctx.primary_entity_id, user_id=ctx.initiating_user_id, contact_id=str(ctx.param("ContactId")),
        subject=ctx.param("EmailSubject") or "", body=ctx.param("EmailBody") or ""))


def convert_order_to_draft(ctx: PluginContext, services: Services) -> Outcome:
    return Outcome.succeeded(approval.convert_to_draft(services, ctx.primary_entity_id,
                                                       user_id=ctx.initiating_user_id))
