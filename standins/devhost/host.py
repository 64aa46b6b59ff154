"""A small local host for the Functions app, because Azure Functions Core Tools cannot be installed on these machines
(its npm package downloads a binary). On a machine that has Core Tools, `func start` is the way.

It serves the app's own HTTP triggers, found through `app.get_functions()` (routes and methods from their bindings),
on a threaded standard-library WSGI server; runs timer triggers on their NCRONTAB schedules; and mounts other WSGI
apps under path prefixes (the Dataverse stand-in and the Authorize.Net simulator in local mode). It does not check
function keys: it is for local use only.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import azure.functions as func

log = logging.getLogger(__name__)
WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


@dataclass(frozen=True)
class HttpFunction:
    name: str
    pattern: re.Pattern
    methods: frozenset[str]
    arg_name: str
    call: Callable[..., Any]


@dataclass(frozen=True)
class TimerFunction:
    name: str
    schedule: "CronSchedule"
    arg_name: str
    call: Callable[..., Any]


class _TimerRequest(func.TimerRequest):
    def __init__(self, past_due: bool = False):
        self._past_due = past_due

    @property
    def past_due(self) -> bool:
        return self._past_due


class CronSchedule:
    """Six-field NCRONTAB ("sec min hour day month day-of-week"), as Functions timer triggers use: *, */n, a-b, lists."""
    _RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))

    def __init__(self, expression: str):
        fields = expression.split()
        if len(fields) != 6:
            raise ValueError(f"timer schedule {expression!r} is not a six-field NCRONTAB expression")
        self.expression = expression
        self._allowed = [self._parse(part, low, high) for part, (low, high) in zip(fields, self._RANGES)]

    @staticmethod
    def _parse(part: str, low: int, high: int) -> frozenset[int]:
        allowed: set[int] = set()
        for item in part.split(","):
            body, _, step_text = item.partition("/")
            step = int(step_text) if step_text else 1
            if body == "*":
                start, end = low, high
            elif "-" in body:
                start, end = (int(x) for x in body.split("-", 1))
            else:
                start = end = int(body)
            allowed.update(range(start, end + 1, step))
        return frozenset(allowed)

    def matches(self, moment: dt.datetime) -> bool:
        values = (moment.second, moment.minute, moment.hour, moment.day, moment.month, (moment.weekday() + 1) % 7)
        return all(value in allowed for value, allowed in zip(values, self._allowed))


def _app_setting(expression: str) -> str:
    """`%NAME%` as the Functions host resolves it: the app setting's value (here the environment, else the
    setting's default of core.settings)."""
    from core.settings import DEFAULTS

    match = re.fullmatch(r"%(\w+)%", expression.strip())
    if not match:
        return expression
    value = os.environ.get(match.group(1)) or DEFAULTS.get(match.group(1))
    if not value:
        raise ValueError(f"the app setting {match.group(1)} (used by a timer schedule) is not set")
    return value


def _route_pattern(route: str) -> re.Pattern:
    """`profile-requests/{token}` -> a regex with named groups; `{name:constraint}` and `{name?}` are understood."""
    regex = ""
    for literal, name, optional in re.findall(r"([^{]*)(?:\{([A-Za-z_]\w*)(?::[^}?]*)?(\?)?\})?", route):
        regex += re.escape(literal)
        if name:
            regex += f"(?P<{name}>[^/]+)" + ("?" if optional else "")
    return re.compile(f"^/api/{regex}/?$", re.IGNORECASE)


class FunctionsDevHost:
    def __init__(self, app: func.FunctionApp, mounts: Mapping[str, WsgiApp] | None = None, *,
                 record_requests: bool = False):
        self.http: list[HttpFunction] = []
        self.timers: list[TimerFunction] = []
        self.mounts = dict(mounts or {})
        # (method, path, body) of every /api request, only when a test asks for it: a long-running host keeps none.
        self.received: list[tuple[str, str, bytes]] = []
        self._record_requests = record_requests
        self._stop = threading.Event()
        # get_functions() may be called only once per app object (a second call raises: research/dataverse.md §4).
        functions = getattr(app, "_devhost_functions", None)
        if functions is None:
            functions = app._devhost_functions = app.get_functions()
        for function in functions:
            trigger = function.get_trigger().get_dict_repr()
            kind, name = trigger.get("type"), function.get_function_name()
            if kind == "httpTrigger":
                methods = frozenset(str(getattr(m, "value", m)).upper() for m in (trigger.get("methods") or ["GET", "POST"]))
                route = trigger.get("route") or name
                self.http.append(HttpFunction(name, _route_pattern(route), methods, trigger["name"],
                                              function.get_user_function()))
            elif kind == "timerTrigger":
                self.timers.append(TimerFunction(name, CronSchedule(_app_setting(trigger["schedule"])), trigger["name"],
                                                 function.get_user_function()))

    # --- WSGI -------------------------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for prefix, mounted in self.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                environ = dict(environ, SCRIPT_NAME=environ.get("SCRIPT_NAME", "") + prefix,
                               PATH_INFO=path[len(prefix):])
                return mounted(environ, start_response)
        method = environ["REQUEST_METHOD"].upper()
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if path.startswith("/admin/functions/") and method == "POST":
            # The Functions host's admin API runs a non-HTTP function now (learn.microsoft.com/azure/azure-functions/
            # functions-manually-run-non-http); here only from this machine, for timers.
            name = path.rsplit("/", 1)[-1]
            timer = next((t for t in self.timers if t.name == name), None)
            if timer is None:
                return self._plain(start_response, 404, "Not found")
            self.run_timer(timer)
            return self._plain(start_response, 202, "Accepted")
        if self._record_requests and path.startswith("/api/"):
            self.received.append((method, path + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING")
                                                  else ""), body))
        for function in self.http:
            match = function.pattern.match(path)
            if not match:
                continue
            if method not in function.methods:
                return self._plain(start_response, 405, "Method not allowed")
            request = func.HttpRequest(
                method=method, url=_url(environ), headers=_headers(environ),
                params=dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)),
                route_params={k: v for k, v in match.groupdict().items() if v is not None}, body=body)
            try:
                response = function.call(**{function.arg_name: request})
            except Exception:  # noqa: BLE001 - the Functions host answers 500 too
                log.exception("function %s raised", function.name)
                return self._plain(start_response, 500, "Internal server error")
            headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-type"]
            content_type = response.mimetype or "text/plain"
            if response.charset:
                content_type += f"; charset={response.charset}"
            start_response(f"{response.status_code} {_reason(response.status_code)}",
                           [("Content-Type", content_type), *headers])
            return [response.get_body() or b""]
        return self._plain(start_response, 404, "Not found")

    @staticmethod
    def _plain(start_response: Callable, status: int, text: str) -> list[bytes]:
        start_response(f"{status} {text}", [("Content-Type", "text/plain; charset=utf-8")])
        return [text.encode()]

    # --- timers and background work --------------------------------------------------------------------------
    def start_timers(self) -> None:
        threading.Thread(target=self._run_timers, name="devhost-timers", daemon=True).start()

    def _run_timers(self) -> None:
        last = int(time.time())
        while not self._stop.wait(0.2):
            now = int(time.time())
            for second in range(last + 1, now + 1):
                moment = dt.datetime.fromtimestamp(second, tz=dt.timezone.utc)
                for timer in self.timers:
                    if timer.schedule.matches(moment):
                        self.run_timer(timer)
            last = max(last, now)

    def run_timer(self, timer: TimerFunction) -> None:
        try:
            timer.call(**{timer.arg_name: _TimerRequest()})
        except Exception:  # noqa: BLE001 - a failing timer must not stop the others
            log.exception("timer %s raised", timer.name)

    def every(self, seconds: float, work: Callable[[], Any], name: str) -> None:
        def loop() -> None:
            while not self._stop.wait(seconds):
                try:
                    work()
                except Exception:  # noqa: BLE001
                    log.exception("background %s raised", name)
        threading.Thread(target=loop, name=name, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


LISTEN_BACKLOG = 128


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True     # the app calls the stand-ins over HTTP on this same server: one thread per request
    # socketserver's default backlog is 5: a burst of clicks plus the app's own calls to the stand-ins on this server
    # would see refused or stalled connections.
    request_queue_size = LISTEN_BACKLOG


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        # The request line has the token of a customer's link in it; log the route shape only.
        path = re.sub(r"(/api/(?:profile-requests|order-approvals)/)[^/?\s]+", r"\1<token>", self.path.split("?")[0])
        log.info("%s %s %s", self.command, path, code)


def serve(host: FunctionsDevHost, address: str = "127.0.0.1", port: int = 7071):
    return make_server(address, port, host, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)


def _headers(environ: dict) -> dict[str, str]:
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    return headers


def _url(environ: dict) -> str:
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    query = environ.get("QUERY_STRING")
    return f"{environ.get('wsgi.url_scheme', 'http')}://{host}{environ.get('PATH_INFO', '')}" + (f"?{query}" if query
                                                                                                  else "")


def _reason(status: int) -> str:
    from http import HTTPStatus
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"
