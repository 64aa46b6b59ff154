"""The one table of the entry (app/responses.py): each typed error's HTTP answer, its business outcome, and whether
the queue completes or abandons the message; events let through what a button answers as a failed outcome."""
import pytest

from app.responses import ABANDON, COMPLETE, NOT_CONFIGURED, answer_for, queue_settle
from core.errors import (AccessDenied, BadRequest, BusinessRuleViolation, ConcurrencyConflict, ConfigurationError,
                         ConflictInProgress, DataverseAuthError, DataverseError, DuplicateRecord, GatewayAuthError,
                         GatewayUnavailable, PlatformUnavailable, RecordNotFound)


@pytest.mark.parametrize("error, status, message, queue", [
    (BadRequest("Parameter Amount is not a number."), 400, None, COMPLETE),
    (BusinessRuleViolation("Invoice INV-1 is canceled."), 200, None, COMPLETE),
    (RecordNotFound("gone"), 200, "does not exist", COMPLETE),
    (AccessDenied("no"), 200, "privileges", COMPLETE),
    (ConflictInProgress("A charge is in progress"), 409, None, COMPLETE),
    (GatewayAuthError("E00007"), 200, NOT_CONFIGURED, COMPLETE),
    (ConfigurationError("The app setting X is not set.", setting="X"), 200, NOT_CONFIGURED, COMPLETE),
    (PlatformUnavailable("429", retry_after=5), 503, "busy", ABANDON),
    (GatewayUnavailable("timeout"), 503, "busy", ABANDON),
])
def test_each_typed_error_has_one_answer(error, status, message, queue):
    answer = answer_for(error)
    assert answer is not None and answer.status == status and answer.queue == queue
    if message is None:
        assert answer.message is None                       # the error's own text, written for people
    else:
        assert message in answer.message


def test_a_transient_dataverse_error_is_a_503_and_other_failures_go_to_the_host():
    transient = DataverseAuthError("identity platform unreachable", is_transient=True)
    assert answer_for(transient).status == 503
    for error in (DuplicateRecord("dup"), ConcurrencyConflict("412"), DataverseError("500"), KeyError("bug")):
        assert answer_for(error) is None


def test_events_let_through_what_only_a_button_answers_as_a_failed_outcome():
    for error in (AccessDenied("no"), ConflictInProgress("busy"), GatewayAuthError("E00007")):
        assert answer_for(error, event=True) is None
    assert "no longer exists" in answer_for(RecordNotFound("gone"), event=True).message
    assert answer_for(BadRequest("bad"), event=True).status == 400


def test_the_queue_abandons_only_what_a_later_delivery_may_pass():
    assert [queue_settle(s) for s in (200, 400, 403, 404, 409, 503)] == [COMPLETE] * 5 + [ABANDON]
