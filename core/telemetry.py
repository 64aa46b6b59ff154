"""Who a log line is about: the dimensions of the invocation being handled, on every log record made while it runs.

A trigger opens a `scope` (through `invocation`, with the Functions invocation id); the dispatch binds the Dataverse
CorrelationId, RequestId and message name; the charging core binds the attempt's refId on money paths. The values
live in a contextvar, so concurrent invocations on other threads never mix, and a record factory puts them on every
record as attributes named like the dimensions (what an OpenTelemetry or Application Insights log handler exports as
customDimensions) and, because the Functions host forwards only a record's text from the Python worker, also as a
fixed-format suffix of the text (`[w365 InvocationId=... RequestId=...]`, README "Telemetry" has the Kusto queries).

Only identifiers are dimensions: never a parameter, a body or a secret.
"""
from __future__ import annotations

import contextvars
import functools
import logging
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

# keyword -> dimension name, in the order the text suffix shows them
DIMENSIONS = {"invocation_id": "InvocationId", "message_name": "MessageName", "correlation_id": "CorrelationId",
              "request_id": "RequestId", "ref_id": "RefId"}
SUFFIX_TAG = "w365"
MAX_VALUE = 128                       # identifiers are short; anything longer is not one and is cut

# None outside an invocation: a bind there is dropped rather than stuck to the thread for every later log line.
_current: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("w365_telemetry", default=None)
_install_lock = threading.Lock()
_installed = False


def _named(values: Mapping[str, Any]) -> dict[str, str]:
    unknown = set(values) - set(DIMENSIONS)
    if unknown:
        raise TypeError(f"not a telemetry dimension: {', '.join(sorted(unknown))}")
    return {DIMENSIONS[key]: str(value)[:MAX_VALUE] for key, value in values.items() if value not in (None, "")}


def current() -> Mapping[str, str]:
    """The dimensions bound now (dimension name -> value)."""
    return _current.get() or {}


def bind(**values: Any) -> None:
    """Add dimensions to the current scope (e.g. the RequestId once the body is parsed). Empty values are ignored,
    and so is a bind outside any scope."""
    named = _named(values)
    bound = _current.get()
    if named and bound is not None:
        _current.set({**bound, **named})


@contextmanager
def scope(**values: Any) -> Iterator[None]:
    """A fresh set of dimensions for one invocation; what was bound before is back when it ends."""
    token = _current.set(_named(values))
    try:
        yield
    finally:
        _current.reset(token)


def invocation(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorates a trigger that declares `context: func.Context`: its run is one scope carrying the invocation id.
    functools.wraps keeps the signature the Functions worker reads to bind the trigger's parameters."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        context = kwargs.get("context")
        with scope(invocation_id=getattr(context, "invocation_id", None)):
            return function(*args, **kwargs)

    return run


def install() -> None:
    """Put the current dimensions on every log record made from now on (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def record_with_dimensions(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            dimensions = _current.get()
            if dimensions:
                for name, value in dimensions.items():
                    setattr(record, name, value)
                try:
                    text = record.getMessage()
                except Exception:  # noqa: BLE001 - a bad format string stays the logging module's to report
                    return record
                record.msg = f"{text} [{SUFFIX_TAG} " + " ".join(f"{k}={v}" for k, v in dimensions.items()) + "]"
                record.args = ()
            return record

        logging.setLogRecordFactory(record_with_dimensions)
        _installed = True
