"""Cold start: fresh processes importing the floor (azure.functions, msal, requests, pydantic), the function app
(import + index), and the function app answering its first request. Target: each at most 1.3x the floor, in wall
time and in peak memory.

The first request is a w365_ChargeInvoice Custom API message posted to the `dataverse_webhook` function exactly as
Dataverse posts it (RemoteExecutionContext JSON, so the context parsing and its pydantic model are exercised), in real
mode with the managed identity for Dataverse: an approved charge with its reads, the attempt, the gateway call and the
`$batch`. Its HTTP answers were recorded beforehand from the Dataverse stand-in and the Authorize.Net simulator and
are replayed in the child by a stub transport adapter, so the child imports neither the stand-ins nor `responses`.

Each measured child is a fresh interpreter; its peak memory is its own VmHWM (/proc/self/status), which a new
program image starts afresh, unlike ru_maxrss, which keeps the high-water mark of the process that spawned it.
Bytecode is warmed by one unmeasured run with PYTHONDONTWRITEBYTECODE unset, as a deployed app has its .pyc files.
"""
from __future__ import annotations

import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 9
TARGET = 1.3
IDENTITY_ENDPOINT = "http://127.0.0.1:41741/MSI/token/"

PEAK = """
def _peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
print("PEAK", _peak_mib())
"""
FLOOR = "import azure.functions, msal, requests, pydantic\n" + PEAK
INDEX = "import function_app\nfunction_app.app.get_functions()\n" + PEAK
FIRST_REQUEST = """
import function_app
functions = function_app.app.get_functions()

import base64, json, os, sys
import requests

def _install_replay(path):
    # Answers every HTTP call from the recording, in order, checking that the method and path are the ones recorded.
    with open(path) as f:
        recorded = json.load(f)
    calls = iter(recorded["calls"])

    def send(adapter, request, **kwargs):
        response = requests.Response()
        if request.url.startswith(os.environ["IDENTITY_ENDPOINT"]):
            status, headers, body = 200, {"Content-Type": "application/json"}, json.dumps(
                {"access_token": "replayed-token", "expires_on": "4102444800", "token_type": "Bearer",
                 "resource": recorded["dataverse"]}).encode()
        else:
            call = next(calls)
            if (call["method"], call["url"].split("?")[0]) != (request.method, request.url.split("?")[0]):
                raise AssertionError(f"replay out of step: {request.method} {request.url} != {call['url']}")
            status, headers, body = call["status"], call["headers"], base64.b64decode(call["body"])
        response.status_code, response._content, response.url, response.request = status, body, request.url, request
        response.headers = requests.structures.CaseInsensitiveDict(headers)
        response.encoding = "utf-8"
        return response

    requests.adapters.HTTPAdapter.send = send
    return recorded

recorded = _install_replay(sys.argv[1])
import azure.functions as func
webhook = next(f for f in functions if f.get_function_name() == "dataverse_webhook").get_user_function()
answer = webhook(func.HttpRequest("POST", "https://app.example/api/dataverse", body=base64.b64decode(recorded["body"]),
                                  headers=recorded["headers"]))
reply = json.loads(answer.get_body())
assert answer.status_code == 200 and reply["status"] == "succeeded", (answer.status_code, reply)
""" + PEAK


def _record(path: str) -> dict[str, str]:
    """Run the charge once here, against the stand-ins, and keep every HTTP exchange and the request for the child.
    Returns the child's environment (the same settings, in real mode with the managed identity)."""
    import responses

    from app.composition import set_services
    from standins import payloads as messages
    from tests.conftest import DATAVERSE_URL, TEST_SETTINGS, WEBHOOK_KEY, build_world
    from tests.functions.charging_world import card_on_file

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        world = build_world(rsps)
        set_services(world.services)
        try:
            card_on_file(world)
            body = messages.dumps(messages.custom_api("w365_ChargeInvoice", "invoice", world.ids["invoice1"],
                                                      {}, request_id=str(uuid.uuid4()), user_id=world.ids["admin"]))
            headers = {"x-w365-webhook-key": WEBHOOK_KEY, "content-type": "application/json"}
            before = len(rsps.calls)
            reply = world.post(body, headers)
            assert reply.status == 200 and reply.body["status"] == "succeeded", reply.body
            calls = [{"method": c.request.method, "url": c.request.url, "status": c.response.status_code,
                      "headers": dict(c.response.headers), "body": base64.b64encode(c.response.content).decode()}
                     for c in list(rsps.calls)[before:]]
        finally:
            set_services(None)
    with open(path, "w") as f:
        json.dump({"calls": calls, "dataverse": DATAVERSE_URL, "headers": headers,
                   "body": base64.b64encode(body).decode()}, f)
    env = _clean_environment()
    env.update({k: v for k, v in TEST_SETTINGS.items() if k not in ("DATAVERSE_CLIENT_SECRET",)})
    env.update({"DATAVERSE_USE_MANAGED_IDENTITY": "true", "IDENTITY_ENDPOINT": IDENTITY_ENDPOINT,
                "IDENTITY_HEADER": "bench", "ServiceBusConnection__fullyQualifiedNamespace": "bench.servicebus.windows.net",
                "W365_WORK_QUEUE": "w365-work"})
    return env


def _clean_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("W365_", "DATAVERSE_", "AUTHORIZENET_", "IDENTITY_", "ServiceBus"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _run(code: str, env: dict[str, str], *args: str) -> tuple[float, float]:
    """Wall seconds (interpreter start to exit) and peak RSS in MiB of a fresh interpreter running `code`."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the child failed:\n{done.stderr[-3000:]}")
    peak = next(float(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("PEAK "))
    return wall, peak


def _medians(children: list[tuple]) -> list[tuple[float, float]]:
    """Median wall and peak of each child, run in turns so that the machine's load falls on all of them alike."""
    for child in children:
        _run(*child)                                # writes the .pyc files, as a deployed app has them
    samples: list[list[tuple[float, float]]] = [[] for _ in children]
    for _ in range(RUNS):
        for index, child in enumerate(children):
            samples[index].append(_run(*child))
    return [(statistics.median(s[0] for s in runs), statistics.median(s[1] for s in runs)) for runs in samples]


def main() -> bool:
    with tempfile.TemporaryDirectory() as scratch:
        recording = os.path.join(scratch, "first_request.json")
        request_env = _record(recording)
        plain = _clean_environment()
        floor, indexed, first = _medians([(FLOOR, plain), (INDEX, plain), (FIRST_REQUEST, request_env, recording)])
    rows = [("import azure.functions, msal, requests, pydantic (floor)", floor),
            ("import function_app + get_functions()", indexed),
            ("... + first request (w365_ChargeInvoice, approved)", first)]
    print(f"{'fresh process':<58}{'wall (median of %d)' % RUNS:>20}{'peak RSS':>11}{'wall':>8}{'memory':>8}")
    ok = True
    for name, (wall, rss) in rows:
        wall_ratio, rss_ratio = wall / floor[0], rss / floor[1]
        ok &= wall_ratio <= TARGET and rss_ratio <= TARGET
        print(f"{name:<58}{wall * 1000:>17.0f} ms{rss:>7.1f} MiB{wall_ratio:>7.2f}x{rss_ratio:>7.2f}x")
    print(f"target: each at most {TARGET}x the floor, wall and memory")
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
