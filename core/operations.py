"""The w365_operation row of a Custom API call: what the button's script reads to show the outcome.

The platform writes it after the handler, once per RequestId. A handler whose last write is a `$batch` can carry the
row in that changeset instead (one round trip fewer on the hot path, and the row can never say "succeeded" for a write
that rolled back): it sets `approval_message` before the batch and the changeset includes `batch_operation(...)`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from core import footprint
from core.context import EntityRef, PluginContext
from core.ports import BatchOperation

OPERATIONS = "w365_operations"


def status_value(ok: bool) -> int:
    return footprint.choice("w365_operation", "w365_status", "Succeeded" if ok else "Failed")


@dataclass
class OperationRecorder:
    context: PluginContext
    request_id: str
    approval_message: Callable[[Any], str] | None = None      # set by a handler that records in its own changeset
    recorded_message: str | None = field(default=None, init=False)

    def row(self, ok: bool, message: str) -> dict[str, Any]:
        target = self.context.target
        regarding = target if isinstance(target, EntityRef) else None
        return {
            "w365_name": f"{self.context.message_name} {self.request_id}"[:100],
            "w365_requestid": self.request_id,
            "w365_message": message[:4000],
            "w365_status": status_value(ok),
            "w365_messagename": self.context.message_name,
            "w365_regardingtable": regarding.logical_name if regarding else self.context.primary_entity_name,
            "w365_regardingid": regarding.id if regarding else self.context.primary_entity_id,
            "w365_initiatinguserid": self.context.initiating_user_id,
            "w365_correlationid": self.context.correlation_id,
        }

    def batch_operation(self, result: Any) -> BatchOperation | None:
        """The row to add to a handler's final changeset for an approved `result`, or None when not asked for."""
        if self.approval_message is None:
            return None
        self._pending = self.approval_message(result)
        return BatchOperation.create(OPERATIONS, self.row(True, self._pending))

    def committed(self) -> None:
        """The changeset that carried the row went through."""
        self.recorded_message = getattr(self, "_pending", None)
