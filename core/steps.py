"""Handlers registered like plugin steps: by message name and primary table, as Dataverse registers them.

Each capability's `entry.register(registry)` adds its handlers explicitly; the webhook entry and the Service Bus entry
look them up in the one Registry (app/capabilities.py). A handler takes (PluginContext, Services) and returns an Outcome; it raises only for failures (core.errors).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from core.context import PluginContext
from core.ports import WorkHandler


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


# How a Custom API step is kept safe from a redelivered RequestId (core/operations.py explains both).
OUTCOME_ROW = "outcome row"      # running again is harmless: no read first, the row is written with the outcome
CLAIM = "claim"                  # running again would repeat something (an email): the row is claimed first


@dataclass(frozen=True)
class Step:
    message: str
    table: str | None          # None: any table (unbound messages)
    handler: Handler
    replay: str = CLAIM

    @property
    def replay_safe(self) -> bool:
        return self.replay == OUTCOME_ROW

    @property
    def is_custom_api(self) -> bool:
        """Our ribbon-button messages; they write a w365_operation row. Table events (Create, Update) do not."""
        return self.message.lower().startswith("w365_")


def _in_turn(first: Handler, second: Handler) -> Handler:
    def both(context: PluginContext, services: Any) -> Outcome:
        outcomes = [first(context, services), second(context, services)]
        failed = [o for o in outcomes if not o.ok]
        data = {k: v for o in outcomes for k, v in o.data.items()}
        return Outcome("failed" if failed else "succeeded", " ".join(o.message for o in outcomes if o.message), data)
    return both


class Registry:
    """What the capabilities declare, by explicit calls from each one's `entry.register` (app/capabilities.py calls
    them in order): Dataverse steps by message and table, queued-work handlers by kind, and Functions Blueprints."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, str | None], Step] = {}
        self._work: dict[str, WorkHandler] = {}
        self.blueprints: list[Any] = []

    def step(self, message: str, table: str | None, handler: Handler, *, replay_safe: bool = False,
             replay: str | None = None) -> None:
        """A Custom API message has one handler. A table event may have several (Dataverse posts one event per
        step; each capability's handler looks at the columns it cares about): they run in registration order.
        `replay_safe=True` is `replay=OUTCOME_ROW` (the handler's work may run twice); the default is CLAIM."""
        key = (message.lower(), table.lower() if table else None)
        existing = self._steps.get(key)
        if existing is not None and existing.handler is not handler:
            if existing.is_custom_api:
                raise ValueError(f"two handlers for {message} on {table}")
            handler = _in_turn(existing.handler, handler)
        self._steps[key] = Step(message, table, handler, replay or (OUTCOME_ROW if replay_safe else CLAIM))

    def work(self, kind: str, handler: WorkHandler) -> None:
        if kind in self._work and self._work[kind] is not handler:
            raise ValueError(f"two handlers for queued work {kind!r}")
        self._work[kind] = handler

    def blueprint(self, blueprint: Any) -> None:
        if blueprint not in self.blueprints:
            self.blueprints.append(blueprint)

    def find_step(self, message: str, table: str | None) -> Step | None:
        message = message.lower()
        return self._steps.get((message, (table or "").lower() or None)) or self._steps.get((message, None))

    def steps(self) -> list[Step]:
        return list(self._steps.values())

    def work_kinds(self) -> list[str]:
        return list(self._work)

    def run_work(self, kind: str, payload: Mapping[str, Any], services: Any) -> None:
        handler = self._work.get(kind)
        if handler is None:
            raise LookupError(f"no handler for queued work {kind!r}")
        handler(payload, services)
