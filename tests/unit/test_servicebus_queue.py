"""The Service Bus sender sets what the broker needs for at-least-once work without duplicates: the deterministic
message id (duplicate detection), the session id on a session queue, the scheduled time for back-off, and a body the
queue trigger tells apart from Dataverse's own messages."""
import datetime as dt
import json

from adapters.servicebus import ServiceBusQueue
from core.queue import WORK_KIND_KEY, decode_work


class FakeSender:
    def __init__(self, sent):
        self.sent = sent

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def send_messages(self, message):
        self.sent.append(message)


class FakeClient:
    def __init__(self):
        self.sent, self.queues = [], []

    def get_queue_sender(self, queue_name):
        self.queues.append(queue_name)
        return FakeSender(self.sent)


def _queue(**kw):
    clients = []

    def factory(connection):
        assert connection == "Endpoint=sb://example/;SharedAccessKeyName=k;SharedAccessKey=v"
        clients.append(FakeClient())
        return clients[-1]
    queue = ServiceBusQueue("Endpoint=sb://example/;SharedAccessKeyName=k;SharedAccessKey=v", "w365-work",
                            client_factory=factory, **kw)
    return queue, clients


def test_a_message_carries_its_kind_payload_and_deterministic_id():
    queue, clients = _queue()
    queue.send("charging.record", {"transaction_id": "t1"}, message_id="charging.record:t1")
    queue.send("charging.record", {"transaction_id": "t2"}, message_id="charging.record:t2")
    [client] = clients                              # one long-lived client for every send
    first = client.sent[0]
    assert client.queues == ["w365-work", "w365-work"]
    assert first.message_id == "charging.record:t1"
    assert decode_work(json.loads(b"".join(first.body))) == ("charging.record", {"transaction_id": "t1"})
    assert first.application_properties[WORK_KIND_KEY] == "charging.record"
    assert first.session_id is None and first.scheduled_enqueue_time_utc is None


def test_a_delay_schedules_the_message_and_a_session_queue_gets_session_ids():
    queue, clients = _queue(sessions=True)
    before = dt.datetime.now(dt.timezone.utc)
    queue.send("credit_hold.provision", {"subscription_id": "s"}, message_id="p:s:2", session_id="account-1",
               delay=dt.timedelta(minutes=5))
    queue.send("credit_hold.provision", {"subscription_id": "s"}, message_id="p:s:3")
    scheduled, default_session = clients[0].sent
    assert scheduled.session_id == "account-1"
    assert before + dt.timedelta(minutes=5) <= scheduled.scheduled_enqueue_time_utc
    assert scheduled.scheduled_enqueue_time_utc <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    assert default_session.session_id == "credit_hold.provision"


def test_the_identity_form_connects_to_the_namespace_with_the_managed_identity():
    namespaces = []

    def factory(namespace):
        namespaces.append(namespace)
        return FakeClient()
    queue = ServiceBusQueue(None, "w365-work", fully_qualified_namespace="w365.servicebus.windows.net",
                            client_factory=factory)
    queue.send("charging.record", {"transaction_id": "t1"}, message_id="charging.record:t1")
    assert namespaces == ["w365.servicebus.windows.net"]


def test_the_managed_identity_credential_asks_the_app_service_identity_endpoint(monkeypatch):
    """App Service / Functions give the identity endpoint in IDENTITY_ENDPOINT and IDENTITY_HEADER; msal's managed
    identity client asks it for the Service Bus resource, and the credential hands azure-core an AccessToken."""
    import responses as responses_lib

    from adapters.identity import ManagedIdentityCredential
    endpoint = "http://127.0.0.1:41741/msi/token"
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", "header-secret")
    with responses_lib.RequestsMock() as rsps:
        rsps.add("GET", endpoint, json={"access_token": "sb-token", "expires_on": "4102444800",
                                        "resource": "https://servicebus.azure.net", "token_type": "Bearer"})
        token = ManagedIdentityCredential().get_token("https://servicebus.azure.net/.default")
        asked = rsps.calls[0].request
    assert token.token == "sb-token" and token.expires_on > 0
    assert "resource=https%3A%2F%2Fservicebus.azure.net" in asked.url
    assert asked.headers["X-IDENTITY-HEADER"] == "header-secret"
