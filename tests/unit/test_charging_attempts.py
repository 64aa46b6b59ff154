"""The exactly-once core (handlers/charging/attempts.py) against in-memory fakes of the ports (tests/fakes.py): what is written before
and after the one gateway call, for each kind of answer."""
from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from core.errors import ConflictInProgress, GatewayUnavailable, OutcomeUnknown, PlatformUnavailable
from core.ports import ChargeOutcome, ChargeResult
from core.services import Services
from core.settings import Settings
from handlers.charging import attempts
from tests.fakes import InMemoryDataverse

PROFILE = {"w365_paymentprofileid": "pp-1", "w365_customerprofileid": "500", "w365_paymentprofileidgateway": "600"}
INVOICE = {"invoiceid": "inv-1", "totalamount": Decimal("100.00"), "w365_amountpaid": Decimal("0.00"),
           "statecode": 0, "statuscode": 1, "@odata.etag": 'W/"7"'}


class FakeGateway:
    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def charge_profile(self, customer, payment, amount, *, ref_id, invoice_number, description=""):
        self.calls.append((customer, payment, amount, ref_id, invoice_number))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class FakeQueue:
    def __init__(self):
        self.sent = []

    def send(self, kind, payload, *, message_id, session_id=None, delay=None):
        self.sent.append((kind, dict(payload), message_id, delay))


def _services(answer):
    dataverse = InMemoryDataverse(ids=(f"tx-{n}" for n in itertools.count(1)).__next__)
    dataverse.add("invoices", dict(INVOICE))          # its ETag W/"7" is the one the changeset must carry
    return Services(dataverse=dataverse, gateway=FakeGateway(answer), queue=FakeQueue(), settings=Settings({}))


def _collect(services, number=1):
    return attempts.collect_payment(services, account_id="acc-1", profile=PROFILE, amount=Decimal("40.00"),
                                    ref_key="invoice:inv-1", attempt_number=number, invoice_number="INV-1001",
                                    invoice=INVOICE, request_id="req-1")


APPROVED = ChargeResult(ChargeOutcome.APPROVED, "1", "This transaction has been approved.", trans_id="1201",
                        auth_code="ABC123")


def test_approved_writes_the_pending_attempt_first_then_one_changeset():
    services = _services(APPROVED)
    attempt = _collect(services)
    kinds = [entry[0] for entry in services.dataverse.log]
    assert kinds == ["create", "batch"]
    created = services.dataverse.log[0][2]
    assert created["w365_outcome"] == attempts.outcome_value("Pending") and created["w365_amount"] == Decimal("40.00")
    assert len(created["w365_refid"]) <= 20 and "req-1" in created["w365_name"]
    assert services.gateway.calls == [("500", "600", Decimal("40.00"), created["w365_refid"], "INV-1001-1")]
    tx, *invoice_ops = services.dataverse.log[1][1]
    assert tx.body["w365_outcome"] == attempts.outcome_value("Approved")
    assert tx.body["w365_gatewaytransactionid"] == "1201"
    assert invoice_ops[0].etag == 'W/"7"' and invoice_ops[0].body["w365_amountpaid"] == Decimal("40.00")
    assert attempt.approved and attempt.recorded and attempt.auth_code == "ABC123"


def test_the_same_attempt_number_twice_is_refused_before_the_gateway():
    services = _services(APPROVED)
    _collect(services)
    with pytest.raises(ConflictInProgress):
        _collect(services)
    assert len(services.gateway.calls) == 1


def test_ref_ids_are_unique_per_thing_and_attempt_and_fit_the_gateway():
    ids = {attempts.ref_id_for(f"invoice:{n}", a) for n in range(200) for a in (1, 2, 9999)}
    assert len(ids) == 600 and max(map(len, ids)) <= 17          # room for a refund's "R<n>"


@pytest.mark.parametrize("outcome, code, state", [(ChargeOutcome.DECLINED, "2", 1), (ChargeOutcome.ERROR, "3", 1),
                                                  (ChargeOutcome.HELD_FOR_REVIEW, "4", None)])
def test_other_answers_write_only_the_transaction(outcome, code, state):
    services = _services(ChargeResult(outcome, code, "reason", trans_id="1202"))
    attempt = _collect(services)
    [ops] = [entry[1] for entry in services.dataverse.log if entry[0] == "batch"]
    assert len(ops) == 1 and ops[0].path == "w365_paymenttransactions(tx-1)"
    assert ops[0].body.get("statecode") == state
    assert not attempt.approved
    assert [s[0] for s in services.queue.sent] == (["charging.reconcile"] if state is None else [])


def test_a_lost_answer_is_unknown_and_scheduled_for_reconciliation_never_resent():
    services = _services(OutcomeUnknown("timeout"))
    attempt = _collect(services)
    assert attempt.outcome == "Unknown" and "being confirmed" in attempt.message
    assert services.dataverse.log[-1][2]["w365_outcome"] == attempts.outcome_value("Unknown")
    assert services.queue.sent[0][0] == "charging.reconcile" and services.queue.sent[0][3] == dt.timedelta(minutes=5)
    assert len(services.gateway.calls) == 1


def test_never_sent_is_an_error_that_frees_the_invoice():
    services = _services(GatewayUnavailable("refused"))
    attempt = _collect(services)
    assert attempt.outcome == "Error"
    assert services.dataverse.log[-1][2]["statecode"] == 1


def test_an_approval_dataverse_cannot_take_is_kept_and_queued():
    services = _services(APPROVED)
    services.dataverse.fail["batch"] = PlatformUnavailable("throttled", status=429)
    attempt = _collect(services)
    assert attempt.approved and not attempt.recorded
    assert ("update", "tx-1", {"w365_gatewaytransactionid": "1201"}) in services.dataverse.log
    kinds = [s[0] for s in services.queue.sent]
    assert kinds == ["charging.record", "charging.reconcile"]
    assert services.queue.sent[0][1]["result"]["trans_id"] == "1201"
