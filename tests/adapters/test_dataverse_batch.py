"""dataverse/batch.py: the multipart text of a changeset and the parse of Dataverse's answers (pure functions)."""
from decimal import Decimal

import pytest

from core.errors import PlatformUnavailable
from core.ports import BatchOperation
from dataverse.batch import build_changeset_request, parse_batch_response

INVOICE = "8f7f2a9e-4b3c-4f0e-9a51-3a2f6c1d0b11"


def test_changeset_request_text_is_crlf_multipart_with_content_ids_and_if_match():
    request = build_changeset_request([
        BatchOperation.create("w365_paymenttransactions",
                              {"w365_amount": Decimal("10.50"), "w365_invoiceid@odata.bind": f"/invoices({INVOICE})"},
                              content_id="1"),
        BatchOperation.update("invoices", INVOICE, {"statecode": 2, "statuscode": 100001}, etag='W/"470867"'),
        BatchOperation("PATCH", "$1", {"w365_note": "x"}),
        BatchOperation.delete("w365_paymentprofiles", "aaaa"),
    ], "/api/data/v9.2/", boundary_id="X")

    assert request.content_type == "multipart/mixed; boundary=batch_X"
    assert request.content_ids == ("1", "2", "3", "4")
    assert request.body.decode() == "\r\n".join([
        "--batch_X",
        "Content-Type: multipart/mixed; boundary=changeset_X",
        "",
        "--changeset_X",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 1",
        "",
        "POST /api/data/v9.2/w365_paymenttransactions HTTP/1.1",
        "Content-Type: application/json; type=entry",
        "",
        '{"w365_amount":10.50,"w365_invoiceid@odata.bind":"/invoices(%s)"}' % INVOICE,
        "--changeset_X",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 2",
        "",
        f"PATCH /api/data/v9.2/invoices({INVOICE}) HTTP/1.1",
        "Content-Type: application/json; type=entry",
        'If-Match: W/"470867"',
        "",
        '{"statecode":2,"statuscode":100001}',
        "--changeset_X",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 3",
        "",
        "PATCH $1 HTTP/1.1",                       # a Content-ID reference is written as is
        "Content-Type: application/json; type=entry",
        "If-Match: *",                             # no ETag: update only, never create
        "",
        '{"w365_note":"x"}',
        "--changeset_X",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 4",
        "",
        "DELETE /api/data/v9.2/w365_paymentprofiles(aaaa) HTTP/1.1",
        "",
        "--changeset_X--",
        "--batch_X--",
        "",
    ])


def test_generated_content_ids_avoid_the_callers_own():
    request = build_changeset_request([
        BatchOperation.create("accounts", {}),
        BatchOperation.create("accounts", {}, content_id="1"),
        BatchOperation.create("accounts", {}),
    ], "/api/data/v9.2/")
    assert request.content_ids == ("2", "1", "3")


@pytest.mark.parametrize("operations", [
    [],
    [BatchOperation("GET", "accounts")],
    [BatchOperation.create("a", {}, content_id="1"), BatchOperation.create("b", {}, content_id="1")],
])
def test_invalid_changesets_are_refused(operations):
    with pytest.raises(ValueError):
        build_changeset_request(operations, "/api/data/v9.2/")


SUCCESS = "\r\n".join([
    "--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f",
    "Content-Type: multipart/mixed; boundary=changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc",
    "",
    "--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "Content-ID: 1",
    "",
    "HTTP/1.1 204 No Content",
    "OData-Version: 4.0",
    "Location: https://contoso.crm.dynamics.com/api/data/v9.2/w365_paymenttransactions(a59c24d3-d1a6-ec11-983f-0022480b7ae9)",
    "OData-EntityId: https://contoso.crm.dynamics.com/api/data/v9.2/w365_paymenttransactions(a59c24d3-d1a6-ec11-983f-0022480b7ae9)",
    "",
    "",
    "--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "Content-ID: 2",
    "",
    "HTTP/1.1 200 OK",
    "Content-Type: application/json; odata.metadata=minimal",
    "OData-Version: 4.0",
    "",
    '{"@odata.etag":"W/\\"470900\\"","totalamount":30.30,"statecode":2}',
    "--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc--",
    "--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f--",
    "",
])


def test_success_answer_is_flattened_into_parts_with_headers_and_decimal_bodies():
    parts = parse_batch_response("multipart/mixed; boundary=batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f",
                                 SUCCESS.encode())
    assert [(p.status, p.content_id) for p in parts] == [(204, "1"), (200, "2")]
    assert parts[0].headers["odata-entityid"].endswith("(a59c24d3-d1a6-ec11-983f-0022480b7ae9)")
    assert parts[0].body is None
    assert parts[1].body == {"@odata.etag": 'W/"470900"', "totalamount": Decimal("30.30"), "statecode": 2}
    assert isinstance(parts[1].body["totalamount"], Decimal)


def test_failed_changeset_answer_has_the_error_part():
    body = "\r\n".join([
        "--batchresponse_0c8b2f0e",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 2",
        "",
        "HTTP/1.1 412 Precondition Failed",
        "REQ_ID: 5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c",
        "Content-Type: application/json; odata.metadata=minimal",
        "OData-Version: 4.0",
        "",
        '{"error":{"code":"0x80060882","message":"The version of the existing record doesn\'t match the RowVersion '
        'property provided."}}',
        "--batchresponse_0c8b2f0e--",
        "",
    ])
    [part] = parse_batch_response('multipart/mixed; boundary="batchresponse_0c8b2f0e"', body)
    assert part.status == 412 and part.content_id == "2"
    assert part.headers["req_id"] == "5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c"
    assert part.body["error"]["code"] == "0x80060882"


def test_lf_only_answers_and_non_json_bodies_are_read():
    body = "--b\nContent-Type: application/http\n\nHTTP/1.1 500 Internal Server Error\n\nboom\n--b--\n"
    [part] = parse_batch_response("multipart/mixed; boundary=b", body)
    assert (part.status, part.body, part.content_id) == (500, "boom", None)


# An answer that cannot be read arrived after the changeset was sent: it may have committed. It is a transient
# Dataverse failure (503 to Dataverse, queue + reconciler in charging), never a bare ValueError that escapes as a 500.
@pytest.mark.parametrize("content_type, body", [
    ("application/json", b"{}"),                                                       # not multipart at all
    ("multipart/mixed; boundary=b", "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 OK\r\n\r\n--b--"),
    ("multipart/mixed; boundary=b", "--b\r\nContent-Type: application/http\r\n\r\n\r\n--b--"),   # no status line
    ("multipart/mixed; boundary=b", b"--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 200 OK\r\n\r\n\xff\xfe"),
])
def test_an_unreadable_answer_is_a_transient_dataverse_failure_that_may_have_been_applied(content_type, body):
    with pytest.raises(PlatformUnavailable) as caught:
        parse_batch_response(content_type, body)
    assert caught.value.is_transient and "may have been applied" in caught.value.message


def test_the_client_turns_an_unreadable_200_answer_into_platform_unavailable():
    import responses
    from dataverse.auth import StaticTokenProvider
    from dataverse.client import DataverseClient

    api = "https://contoso.crm.dynamics.com/api/data/v9.2/"
    client = DataverseClient("https://contoso.crm.dynamics.com", StaticTokenProvider("t"), sleep=lambda s: None)
    with responses.RequestsMock() as rsps:
        rsps.post(api + "$batch", status=200, content_type="multipart/mixed; boundary=batchresponse_1",
                  body="--batchresponse_1\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 garbled\r\n"
                       "--batchresponse_1--\r\n")
        with pytest.raises(PlatformUnavailable) as caught:
            client.batch([BatchOperation.update("invoices", INVOICE, {"statecode": 2}, etag='W/"1"')])
    assert caught.value.is_transient


def test_json_bodies_keep_decimals_exact_and_write_dates_and_guids_as_text():
    import datetime as dt
    import uuid
    from dataverse.batch import to_json

    body = {"a": Decimal("0.10") + Decimal("0.20"), "b": Decimal("1E+2"), "on": dt.date(2026, 1, 31),
            "id": uuid.UUID(INVOICE), "name": "Zoë"}
    assert to_json(body) == f'{{"a":0.30,"b":100,"on":"2026-01-31","id":"{INVOICE}","name":"Zoë"}}'
    with pytest.raises(ValueError):
        to_json({"a": Decimal("NaN")})
