"""The w365_operation row of a Custom API call: what the button's script reads to show the outcome, and what makes a
redelivered RequestId harmless (its alternate key w365_requestid).

One pattern for every button, by what a second run of its work would do (Step.replay, core/steps.py):
- OUTCOME_ROW: running again is harmless (the work is idempotent, or the handler recognises its own earlier attempt,
  as Charge does by the attempt's refId). No read first: the row is created at the end, inside the handler's final
  `$batch` when it has one (`finish`), and a redelivery whose work already committed fails on the alternate key there;
  the platform then answers with the earlier row.
- CLAIM: running again would repeat something (an email). The platform claims the RequestId first by creating the row
  with no status (CONTRACT §4 has only Succeeded and Failed, so "no status yet" is not a third choice: the button's
  script keeps polling until one is set), and the handler's final `$batch` sets it (`finish`, a PATCH). A redelivery
  meets the alternate key at once and is answered from the row (or told the work is in progress).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from core import footprint
from core.context import EntityRef, PluginContext
from core.ports import BatchOperation, BatchResult

OPERATIONS = "w365_operations"


def status_value(ok: bool) -> int:
    return footprint.choice("w365_operation", "w365_status", "Succeeded" if ok else "Failed")


@dataclass
class OperationRecorder:
    context: PluginContext
    request_id: str
    approval_message: Callable[[Any], str] | None = None      # set by a handler that records in its own changeset
    claimed_id: str | None = None                              # the row the platform created first (CLAIM)
    recorded_message: str | None = field(default=None, init=False)
    recorded_ok: bool = field(default=True, init=False)
    _pending: tuple[bool, str] | None = field(default=None, init=False, repr=False)

    def row(self, ok: bool | None, message: str) -> dict[str, Any]:
        target = self.context.target
        regarding = target if isinstance(target, EntityRef) else None
        return {
            "w365_name": f"{self.context.message_name} {self.request_id}"[:100],
            "w365_requestid": self.request_id,
            "w365_message": message[:4000],
            "w365_status": None if ok is None else status_value(ok),
            "w365_messagename": self.context.message_name,
            "w365_regardingtable": regarding.logical_name if regarding else self.context.primary_entity_name,
            "w365_regardingid": regarding.id if regarding else self.context.primary_entity_id,
            "w365_initiatinguserid": self.context.initiating_user_id,
            "w365_correlationid": self.context.correlation_id,
        }

    def finish(self, ok: bool, message: str) -> BatchOperation:
        """The operation that records the outcome, for the handler's final changeset: the claimed row's update, or
        the row itself. Call `committed()` once that changeset went through."""
        self._pending = (ok, message)
        if self.claimed_id:
            return BatchOperation.update(OPERATIONS, self.claimed_id, {"w365_message": message[:4000],
                                                                       "w365_status": status_value(ok)})
        return BatchOperation.create(OPERATIONS, self.row(ok, message))

    def batch_operation(self, result: Any) -> BatchOperation | None:
        """The row to add to a handler's final changeset for an approved `result`, or None when not asked for."""
        if self.approval_message is None:
            return None
        return self.finish(True, self.approval_message(result))

    def committed(self) -> None:
        """The changeset that carried the outcome went through."""
        if self._pending is not None:
            self.recorded_ok, self.recorded_message = self._pending


def batch_with_outcome(services: Any, ops: Sequence[BatchOperation], message: str, *,
                       ok: bool = True) -> list[BatchResult]:
    """The handler's final changeset with the button's outcome in it (when the call has an operation row): one
    request for the work and its outcome, and the row can never say "succeeded" for work that rolled back. Made with
    the service's rights (the person's are checked before, core/permissions.py)."""
    recorder: OperationRecorder | None = services.operation
    extra = [recorder.finish(ok, message)] if recorder is not None else []
    results = services.dataverse.batch(list(ops) + extra)
    if recorder is not None:
        recorder.committed()
    return results[:len(ops)]
