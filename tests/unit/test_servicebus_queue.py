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


# --- the dead-letter sub-queue --------------------------------------------------------------------------------------

class FakeReceivedMessage:
    def __init__(self, message_id, body, reason="MaxDeliveryCountExceeded", delivery_count=10):
        self.message_id, self._body = message_id, body
        self.dead_letter_reason, self.delivery_count = reason, delivery_count

    @property
    def body(self):                          # a received DATA body: its sections, as the SDK hands them over
        return iter([self._body[:5], self._body[5:]]) if isinstance(self._body, bytes) else self._body


class FakeReceiver:
    def __init__(self, waiting, lose_locks=False):
        self.waiting, self.completed, self.abandoned, self.calls = list(waiting), [], [], []
        self.open, self.lose_locks = False, lose_locks

    def __enter__(self):
        self.open = True
        return self

    def __exit__(self, *exc):
        self.open = False

    def receive_messages(self, max_message_count, max_wait_time):
        assert self.open
        self.calls.append((max_message_count, max_wait_time))
        batch, self.waiting = self.waiting[:max_message_count], self.waiting[max_message_count:]
        return batch

    def complete_message(self, message):
        if self.lose_locks:
            from azure.servicebus.exceptions import MessageLockLostError
            raise MessageLockLostError(message="lock lost")
        self.completed.append(message.message_id)

    def abandon_message(self, message):
        self.abandoned.append(message.message_id)


class FakeReceivingClient(FakeClient):
    def __init__(self, receiver):
        super().__init__()
        self.receiver, self.receivers = receiver, []

    def get_queue_receiver(self, queue_name, **kw):
        self.receivers.append((queue_name, kw))
        return self.receiver


def _receiving(waiting, **kw):
    receiver = FakeReceiver(waiting, **kw)
    client = FakeReceivingClient(receiver)
    queue = ServiceBusQueue("Endpoint=sb://example/;SharedAccessKeyName=k;SharedAccessKey=v", "w365-work",
                            client_factory=lambda connection: client)
    return queue, client, receiver


def test_dead_letters_are_received_in_peek_lock_from_the_dead_letter_sub_queue_and_settled():
    from azure.servicebus import ServiceBusReceiveMode, ServiceBusSubQueue
    from adapters.servicebus import DEAD_LETTER_WAIT
    from core.queue import encode_work

    ours = FakeReceivedMessage("autopay.charge:r:i", encode_work("autopay.charge", {"run_id": "r", "invoice_id": "i"}))
    dataverse = FakeReceivedMessage("dv-1", b'{"MessageName": "Update"}', reason="TTLExpiredException",
                                    delivery_count=1)
    garbage = FakeReceivedMessage("junk", b"\xff\xfe not json")
    amqp_value = FakeReceivedMessage("value", {"not": "bytes"})
    queue, client, receiver = _receiving([ours, dataverse, garbage, amqp_value])
    with queue.dead_letter_inbox() as inbox:
        letters = inbox.receive(10)
        inbox.complete(letters[0])
        inbox.abandon(letters[1])
    [(name, kw)] = client.receivers
    assert name == "w365-work" and kw["sub_queue"] == ServiceBusSubQueue.DEAD_LETTER
    assert kw["receive_mode"] == ServiceBusReceiveMode.PEEK_LOCK and "session_id" not in kw
    assert receiver.calls == [(10, DEAD_LETTER_WAIT)] and not receiver.open
    first = letters[0]
    assert (first.message_id, first.kind, first.payload) == ("autopay.charge:r:i", "autopay.charge",
                                                             {"run_id": "r", "invoice_id": "i"})
    assert (first.reason, first.delivery_count) == ("MaxDeliveryCountExceeded", 10)
    assert [(letter.kind, letter.payload, letter.reason) for letter in letters[1:]] == [
        (None, {}, "TTLExpiredException"), (None, {}, "MaxDeliveryCountExceeded"),
        (None, {}, "MaxDeliveryCountExceeded")]
    # Completed what was recorded; abandoned what was not ours, and on closing, what was left unsettled.
    assert receiver.completed == ["autopay.charge:r:i"]
    assert receiver.abandoned == ["dv-1", "junk", "value"]


def test_a_lost_lock_on_settling_is_logged_not_raised(caplog):
    from core.queue import encode_work

    queue, _, receiver = _receiving([FakeReceivedMessage("m1", encode_work("autopay.charge", {"secret": "s3"}))],
                                    lose_locks=True)
    with queue.dead_letter_inbox() as inbox:
        [letter] = inbox.receive(5)
        inbox.complete(letter)                   # back in the sub-queue; recording it again makes no second row
    assert receiver.completed == [] and receiver.abandoned == []
    assert any("m1" in r.getMessage() and "MessageLockLostError" in r.getMessage() for r in caplog.records)
    assert not any("s3" in r.getMessage() for r in caplog.records)
