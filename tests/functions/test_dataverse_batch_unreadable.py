"""An unreadable `$batch` answer after the changeset committed (dataverse/batch.py): the charge is never hidden, the
write is treated as unknown (queued, re-read), and it is applied exactly once."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tests.functions.charging_world import assert_books_agree, card_on_file, charge, outcome, transactions

GARBLED = ("--batchresponse_1\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 garbled\r\n"
           "--batchresponse_1--\r\n").encode()


@pytest.fixture
def garbling(world, monkeypatch):
    """The stand-in applies every changeset, then its answer is lost in transit (a proxy mangles it)."""
    card_on_file(world)
    handle = world.standin.handle

    def committed_then_garbled(method, url, headers, body):
        status, out_headers, out = handle(method, url, headers, body)
        changeset = b"boundary=changeset_" in (body.encode() if isinstance(body, str) else body or b"")
        if method.upper() == "POST" and url.endswith("$batch") and changeset and status < 400:
            return 200, {"Content-Type": "multipart/mixed; boundary=batchresponse_1"}, GARBLED
        return status, out_headers, out
    monkeypatch.setattr(world.standin, "handle", committed_then_garbled)
    return world


def test_an_approval_whose_committed_changeset_answer_is_unreadable_is_recorded_once(garbling):
    world = garbling
    request_id = str(uuid.uuid4())
    reply = charge(world, "40.00", request_id=request_id)
    assert reply.status == 200 and reply.body["status"] == "succeeded"      # the money moved: never hidden
    [row] = transactions(world)
    assert row["w365_outcome"] == outcome("Approved")                       # the changeset did commit
    world.queue.drain(include_delayed=True)                                 # the queued write re-reads: nothing to do
    assert len(world.simulator.charges()) == 1
    assert assert_books_agree(world) == Decimal("40.00")
    assert len(world.rows("w365_operation", w365_requestid=request_id)) == 1
    again = charge(world, "40.00", request_id=request_id)                   # Dataverse redelivers the message
    assert again.status == 200 and again.body["status"] == "succeeded"
    assert len(world.simulator.charges()) == 1
