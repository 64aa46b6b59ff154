"""The dev host finds the app's own triggers and serves them over a real socket; timers follow NCRONTAB."""
import datetime as dt
import threading

import azure.functions as func
import pytest
import requests

from standins.devhost.host import CronSchedule, FunctionsDevHost, serve


def _app():
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="items/{item_id}", methods=["GET", "POST"])
    def item(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(f"{req.method} {req.route_params['item_id']} {req.params.get('q')} "
                                 f"{req.get_body().decode()}", headers={"X-Seen": "yes"})

    @app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer")
    def tick(timer: func.TimerRequest) -> None:
        ticks.append(timer.past_due)

    return app


ticks: list = []


@pytest.fixture
def running():
    host = FunctionsDevHost(_app(), mounts={"/_local/echo": _echo}, record_requests=True)
    server = serve(host, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield host, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _echo(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"mounted {environ['SCRIPT_NAME']} {environ['PATH_INFO']}".encode()]


def test_routes_methods_route_params_query_and_body_reach_the_function(running):
    host, base = running
    reply = requests.post(f"{base}/api/items/42?q=x", data=b"hello", timeout=5)
    assert reply.status_code == 200 and reply.text == "POST 42 x hello"
    assert reply.headers["X-Seen"] == "yes"
    assert host.received[-1] == ("POST", "/api/items/42?q=x", b"hello")


def test_wrong_method_and_unknown_route(running):
    _, base = running
    assert requests.delete(f"{base}/api/items/42", timeout=5).status_code == 405
    assert requests.get(f"{base}/api/nothing", timeout=5).status_code == 404


def test_mounted_apps_get_their_prefix_as_script_name(running):
    _, base = running
    assert requests.get(f"{base}/_local/echo/a/b", timeout=5).text == "mounted /_local/echo /a/b"


def test_timer_functions_are_found_and_can_be_run():
    host = FunctionsDevHost(_app())
    assert [t.name for t in host.timers] == ["tick"]
    ticks.clear()
    host.run_timer(host.timers[0])
    assert ticks == [False]


def test_ncrontab_schedules():
    every_five = CronSchedule("0 */5 * * * *")
    assert every_five.matches(dt.datetime(2026, 1, 1, 10, 15, 0))
    assert not every_five.matches(dt.datetime(2026, 1, 1, 10, 16, 0))
    assert not every_five.matches(dt.datetime(2026, 1, 1, 10, 15, 1))
    weekdays_at_six = CronSchedule("0 0 6 * * 1-5")
    assert weekdays_at_six.matches(dt.datetime(2026, 11, 23, 6, 0, 0))      # a Monday
    assert not weekdays_at_six.matches(dt.datetime(2026, 11, 22, 6, 0, 0))  # a Sunday
    with pytest.raises(ValueError):
        CronSchedule("*/5 * * * *")


def test_a_timer_schedule_naming_an_app_setting_is_resolved_like_the_functions_host(monkeypatch):
    from standins.devhost.host import _app_setting

    monkeypatch.delenv("W365_BILLING_SCHEDULE", raising=False)
    assert _app_setting("%W365_BILLING_SCHEDULE%") == "0 0 6 * * *"          # the setting's default
    monkeypatch.setenv("W365_BILLING_SCHEDULE", "0 30 5 * * 1-5")
    assert _app_setting("%W365_BILLING_SCHEDULE%") == "0 30 5 * * 1-5"
    assert _app_setting("0 */5 * * * *") == "0 */5 * * * *"
    with pytest.raises(ValueError, match="NO_SUCH_SETTING"):
        _app_setting("%NO_SUCH_SETTING%")


def test_fifty_clients_connecting_at_once_are_all_queued_and_served():
    # The server is not accepting yet, as when every handler thread is busy: the kernel's listen backlog alone must
    # hold the 50 connections (socketserver's default of 5 leaves the rest waiting on SYN retries).
    import socket

    server = serve(FunctionsDevHost(_app()), "127.0.0.1", 0)
    port = server.server_address[1]
    clients = []
    try:
        for _ in range(50):
            client = socket.create_connection(("127.0.0.1", port), timeout=0.5)
            client.sendall(b"GET /api/items/7 HTTP/1.0\r\nHost: x\r\n\r\n")
            clients.append(client)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        for client in clients:
            client.settimeout(10)
            answer = b""
            while chunk := client.recv(4096):
                answer += chunk
            assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"GET 7 None "), answer[:80]
    finally:
        for client in clients:
            client.close()
        server.shutdown()
        server.server_close()


def test_a_host_keeps_no_request_bodies_unless_asked():
    host = FunctionsDevHost(_app())
    server = serve(host, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for _ in range(3):
            assert requests.post(f"http://127.0.0.1:{server.server_address[1]}/api/items/1", data=b"x" * 1000,
                                 timeout=5).status_code == 200
        assert host.received == []
    finally:
        server.shutdown()
        server.server_close()
