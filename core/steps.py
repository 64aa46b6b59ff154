"""Handlers registered like plugin steps: by message name and primary table, as Dataverse registers them.

A capability module decorates its entry functions with `@step(...)`; the webhook entry and the Service Bus entry look
them up here. A handler takes (PluginContext, Services) and returns an Outcome; it raises only for failures (core.errors).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from core.context import PluginContext


@dataclass(frozen=True)
class Outcome:
    """What the caller is told: `succeeded` or `failed` (a business refusal or a decline), a message for people, and
    optional data (ids) the button script or a test may read."""
    status: str
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def succeeded(message: str, **data: Any) -> "Outcome":
        return Outcome("succeeded", message, data)

    @staticmethod
    def failed(message: str, **data: Any) -> "Outcome":
        return Outcome("failed", message, data)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


Handler = Callable[[PluginContext, Any], Outcome]


@dataclass(frozen=True)
class Step:
    message: str
    table: str | None          # None: any table (unbound messages)
    handler: Handler
    # The handler itself recognises a redelivered RequestId from the rows it reads anyway, so the platform need not
    # look the w365_operation row up first (one round trip fewer).
    replay_safe: bool = False

    @property
    def is_custom_api(self) -> bool:
        """Our ribbon-button messages; they write a w365_operation row. Table events (Create, Update) do not."""
        return self.message.lower().startswith("w365_")


_steps: dict[tuple[str, str | None], Step] = {}


def step(message: str, table: str | None = None, *, replay_safe: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        key = (message.lower(), table.lower() if table else None)
        existing = _steps.get(key)
        if existing is not None and existing.handler is not handler:
            raise ValueError(f"two handlers for {message} on {table}")
        _steps[key] = Step(message, table, handler, replay_safe)
        return handler
    return register


def find_step(message: str, table: str | None) -> Step | None:
    message = message.lower()
    return _steps.get((message, (table or "").lower() or None)) or _steps.get((message, None))


def registered_steps() -> list[Step]:
    return list(_steps.values())
