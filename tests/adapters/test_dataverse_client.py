"""dataverse/client.py against hand-written Dataverse answers (shapes from research/dataverse.md §2)."""
import json
import logging
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError

from core.errors import (AccessDenied, ConcurrencyConflict, ConfigurationError, DataverseError, DuplicateRecord,
                         PlatformUnavailable, RecordNotFound)
from core.ports import BatchOperation
from dataverse.auth import StaticTokenProvider
from dataverse.client import DataverseClient

ORG = "https://contoso.crm.dynamics.com"
API = ORG + "/api/data/v9.2/"
ACCOUNT = "5d8b3a1e-1c2f-4e6a-9b7d-0a1b2c3d4e5f"
INVOICE = "8f7f2a9e-4b3c-4f0e-9a51-3a2f6c1d0b11"
USER = "75c2dd85-0d5a-4f1e-8a3b-2c4d6e8f0a1b"
JSON = "application/json; odata.metadata=minimal"
REQ_ID = "0c7a9f4e-3b2d-4c1a-8e6f-5d4c3b2a1908"


@pytest.fixture
def rsps():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sleeps):
    return DataverseClient(ORG, StaticTokenProvider("tok-123"), sleep=sleeps.append, max_retries=3, max_backoff=30)


def error_body(code, message):
    return json.dumps({"error": {"code": code, "message": message}})


# --- headers, URLs, JSON -----------------------------------------------------------------------------------------------

def test_retrieve_sends_auth_and_odata_headers_and_encodes_the_query(rsps, client):
    rsps.get(f"{API}accounts({ACCOUNT})", body=json.dumps({
        "@odata.context": f"{API}$metadata#accounts(name,creditonhold)/$entity",
        "@odata.etag": 'W/"470867"', "name": "Fourth Coffee", "creditonhold": False, "accountid": ACCOUNT}),
        content_type=JSON)

    record = client.retrieve("accounts", ACCOUNT, select=["name", "creditonhold"],
                             expand="primarycontactid($select=fullname)")

    assert record["@odata.etag"] == 'W/"470867"' and record["creditonhold"] is False
    sent = rsps.calls[0].request
    assert sent.url == (f"{API}accounts({ACCOUNT})?$select=name,creditonhold"
                        "&$expand=primarycontactid($select=fullname)")
    assert sent.headers["Authorization"] == "Bearer tok-123"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["OData-MaxVersion"] == "4.0" and sent.headers["OData-Version"] == "4.0"
    assert sent.headers["If-None-Match"] == "null"
    assert sent.headers["Prefer"] == 'odata.include-annotations="*"'
    assert "MSCRMCallerID" not in sent.headers and "Content-Type" not in sent.headers


def test_filter_spaces_are_percent_encoded_not_plus(rsps, client):
    rsps.get(f"{API}invoices", body='{"value":[]}', content_type=JSON)
    client.query("invoices", filter=f"_customerid_value eq {ACCOUNT} and name eq 'A+B'")
    assert rsps.calls[0].request.url == (f"{API}invoices?$filter=_customerid_value%20eq%20{ACCOUNT}"
                                         "%20and%20name%20eq%20'A%2BB'")


def test_decimal_goes_out_and_comes_back_exact(rsps, client):
    rsps.post(f"{API}w365_paymenttransactions", status=204,
              headers={"OData-EntityId": f"{API}w365_paymenttransactions({INVOICE})"})
    rsps.get(f"{API}w365_paymenttransactions({INVOICE})", content_type=JSON,
             body='{"@odata.etag":"W/\\"1\\"","w365_amount":0.30,"w365_rate":0.1000000001,"statecode":0}')

    new_id = client.create("w365_paymenttransactions", {"w365_amount": Decimal("0.10") + Decimal("0.20"),
                                                        "w365_name": "Zoë"})
    record = client.retrieve("w365_paymenttransactions", new_id)

    sent = rsps.calls[0].request
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.body == '{"w365_amount":0.30,"w365_name":"Zoë"}'.encode()
    assert new_id == INVOICE
    assert record["w365_amount"] == Decimal("0.30") and str(record["w365_amount"]) == "0.30"
    assert record["w365_rate"] == Decimal("0.1000000001") and record["statecode"] == 0


def test_create_reads_the_id_from_a_201_body_when_no_header(rsps, client):
    rsps.post(f"{API}accounts", status=201, content_type=JSON, body=json.dumps({"accountid": ACCOUNT}))
    assert client.create("accounts", {"name": "x"}) == ACCOUNT


# --- paging --------------------------------------------------------------------------------------------------------------

def test_query_follows_next_link_until_done(rsps, client):
    client.page_size = 2
    page2 = f"{API}accounts?$select=name&$skiptoken=%3Ccookie%20pagenumber=%222%22%20/%3E"
    rsps.get(f"{API}accounts", content_type=JSON, body=json.dumps(
        {"value": [{"name": "a"}, {"name": "b"}], "@odata.nextLink": page2}))
    rsps.get(f"{API}accounts", content_type=JSON, body=json.dumps({"value": [{"name": "c"}]}))

    rows = client.query("accounts", select=["name"])

    assert [r["name"] for r in rows] == ["a", "b", "c"]
    assert [c.request.headers["Prefer"] for c in rsps.calls] == ['odata.include-annotations="*",odata.maxpagesize=2'] * 2
    assert rsps.calls[1].request.url == page2


def test_query_with_top_stops_at_top(rsps, client):
    rsps.get(f"{API}accounts", content_type=JSON, body=json.dumps(
        {"value": [{"name": "a"}, {"name": "b"}], "@odata.nextLink": f"{API}accounts?$skiptoken=x"}))
    rows = client.query("accounts", top=2, orderby="name asc")
    assert len(rows) == 2 and len(rsps.calls) == 1
    assert rsps.calls[0].request.url == f"{API}accounts?$orderby=name%20asc&$top=2"
    assert "maxpagesize" not in rsps.calls[0].request.headers["Prefer"]


def test_next_link_to_another_host_is_refused_so_the_token_stays_home(rsps, client):
    rsps.get(f"{API}accounts", content_type=JSON, body=json.dumps(
        {"value": [], "@odata.nextLink": "https://evil.example.com/api/data/v9.2/accounts?$skiptoken=1"}))
    with pytest.raises(DataverseError):
        client.query("accounts")
    assert len(rsps.calls) == 1


# --- retries -------------------------------------------------------------------------------------------------------------

THROTTLED = error_body("0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 seconds.")


def test_429_honours_retry_after(rsps, client, sleeps):
    rsps.get(f"{API}accounts({ACCOUNT})", status=429, body=THROTTLED, content_type=JSON, headers={"Retry-After": "7"})
    rsps.get(f"{API}accounts({ACCOUNT})", status=429, body=THROTTLED, content_type=JSON, headers={"Retry-After": "2"})
    rsps.get(f"{API}accounts({ACCOUNT})", body='{"name":"a"}', content_type=JSON)
    assert client.retrieve("accounts", ACCOUNT) == {"name": "a"}
    assert sleeps == [7.0, 2.0]


def test_a_retry_after_beyond_max_backoff_surfaces_at_once_instead_of_retrying_early(rsps, client, sleeps):
    # Retrying after max_backoff when Dataverse said 300 s only meets another 429 and spends the webhook's 60 s.
    rsps.get(f"{API}accounts({ACCOUNT})", status=429, body=THROTTLED, content_type=JSON,
             headers={"Retry-After": "300", "x-ms-service-request-id": REQ_ID})
    with pytest.raises(PlatformUnavailable) as caught:
        client.retrieve("accounts", ACCOUNT)
    assert sleeps == []
    assert len(rsps.calls) == 1
    error = caught.value
    assert (error.status, error.code, error.retry_after, error.is_transient, error.request_id) == (
        429, "0x80072322", 300.0, True, REQ_ID)


def test_503_then_success_with_jittered_backoff(rsps, client, sleeps):
    rsps.get(f"{API}accounts({ACCOUNT})", status=503, body="")
    rsps.get(f"{API}accounts({ACCOUNT})", status=503, body="")
    rsps.get(f"{API}accounts({ACCOUNT})", body='{"name":"a"}', content_type=JSON)
    assert client.retrieve("accounts", ACCOUNT)["name"] == "a"
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


def test_create_is_retried_after_a_429_because_dataverse_refused_it(rsps, client, sleeps):
    rsps.post(f"{API}accounts", status=429, body=THROTTLED, content_type=JSON, headers={"Retry-After": "1"})
    rsps.post(f"{API}accounts", status=204, headers={"OData-EntityId": f"{API}accounts({ACCOUNT})"})
    assert client.create("accounts", {"name": "x"}) == ACCOUNT
    assert sleeps == [1.0]


def test_create_is_not_resent_after_a_read_timeout(rsps, client, sleeps):
    rsps.post(f"{API}w365_paymenttransactions", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(PlatformUnavailable) as caught:
        client.create("w365_paymenttransactions", {"w365_amount": Decimal("10.00")})
    assert len(rsps.calls) == 1 and sleeps == []
    assert caught.value.is_transient and "may have been carried out" in str(caught.value)


def test_create_is_not_resent_after_a_504(rsps, client, sleeps):
    rsps.post(f"{API}w365_paymenttransactions", status=504, body="")
    with pytest.raises(PlatformUnavailable):
        client.create("w365_paymenttransactions", {"w365_amount": Decimal("10.00")})
    assert len(rsps.calls) == 1 and sleeps == []


def test_create_is_resent_when_the_connection_was_never_made(rsps, client, sleeps):
    refused = requests.ConnectionError(MaxRetryError(None, API, NewConnectionError(None, "Connection refused")))
    rsps.post(f"{API}accounts", body=refused)
    rsps.post(f"{API}accounts", status=204, headers={"OData-EntityId": f"{API}accounts({ACCOUNT})"})
    assert client.create("accounts", {"name": "x"}) == ACCOUNT
    assert len(sleeps) == 1


def test_reads_are_resent_after_a_read_timeout(rsps, client, sleeps):
    rsps.get(f"{API}accounts({ACCOUNT})", body=requests.ReadTimeout("read timed out"))
    rsps.get(f"{API}accounts({ACCOUNT})", body='{"name":"a"}', content_type=JSON)
    assert client.retrieve("accounts", ACCOUNT)["name"] == "a"


# --- typed errors --------------------------------------------------------------------------------------------------------

def test_update_sends_if_match_and_a_412_is_a_concurrency_conflict_with_its_fields(rsps, client):
    rsps.patch(f"{API}invoices({INVOICE})", status=412, content_type=JSON, headers={"REQ_ID": REQ_ID},
               body=error_body("", "The version of the existing record doesn't match the RowVersion property provided."))
    with pytest.raises(ConcurrencyConflict) as caught:
        client.update("invoices", INVOICE, {"statecode": 2, "statuscode": 100001}, etag='W/"470867"')
    assert rsps.calls[0].request.headers["If-Match"] == 'W/"470867"'
    assert "If-None-Match" not in rsps.calls[0].request.headers
    error = caught.value
    assert (error.status, error.code, error.request_id, error.is_transient) == (412, "", REQ_ID, False)
    assert error.message.startswith("The version of the existing record")


def test_update_without_etag_never_creates(rsps, client):
    rsps.patch(f"{API}accounts({ACCOUNT})", status=204)
    client.update("accounts", ACCOUNT, {"creditonhold": True})
    assert rsps.calls[0].request.headers["If-Match"] == "*"


@pytest.mark.parametrize("method,status,code,expected", [
    ("POST", 412, "0x80060892", DuplicateRecord),
    ("POST", 409, "", DuplicateRecord),
    ("POST", 400, "0x80040237", DuplicateRecord),
    ("GET", 404, "0x80040217", RecordNotFound),
    ("GET", 403, "0x80040220", AccessDenied),
    ("GET", 500, "0x80040216", PlatformUnavailable),
    ("GET", 400, "0x0", DataverseError),
])
def test_statuses_and_codes_map_to_typed_errors(rsps, client, method, status, code, expected):
    rsps.add(method, f"{API}accounts", status=status, content_type=JSON, body=error_body(code, "nope"),
             headers={"x-ms-service-request-id": REQ_ID})
    with pytest.raises(expected) as caught:
        client.create("accounts", {"name": "x"}) if method == "POST" else client.query("accounts")
    assert type(caught.value) is expected
    assert (caught.value.status, caught.value.code, caught.value.request_id) == (status, code, REQ_ID)


def test_a_404_for_an_unknown_segment_is_a_configuration_error_naming_it(rsps, client):
    # Dataverse's answer for a path naming no entity set (learn.microsoft.com "Web API error codes": 0x8006088a)
    rsps.get(f"{API}w365_paymentprofiless", status=404, content_type=JSON,
             body=error_body("0x8006088A", "Resource not found for the segment 'w365_paymentprofiless'."))
    with pytest.raises(ConfigurationError) as caught:
        client.query("w365_paymentprofiless")
    assert "'w365_paymentprofiless'" in str(caught.value)
    assert not isinstance(caught.value, RecordNotFound)
    rsps.get(f"{API}accounts({ACCOUNT})", status=404, content_type=JSON,
             body=error_body("0x80040217", f"account With Id = {ACCOUNT} Does Not Exist"))
    with pytest.raises(RecordNotFound):                   # a missing row stays "not found"
        client.retrieve("accounts", ACCOUNT)


def test_delete(rsps, client):
    rsps.delete(f"{API}w365_paymentprofiles({ACCOUNT})", status=204)
    client.delete("w365_paymentprofiles", ACCOUNT)
    assert rsps.calls[0].request.method == "DELETE"


# --- actions and functions -----------------------------------------------------------------------------------------------

def test_bound_action_posts_to_the_prefixed_name(rsps, client):
    rsps.post(f"{API}invoices({INVOICE})/Microsoft.Dynamics.CRM.w365_ChargeInvoice", status=204)
    assert client.execute("w365_ChargeInvoice", {"Amount": Decimal("40.00")}, bound_to=("invoices", INVOICE)) == {}
    assert rsps.calls[0].request.body == b'{"Amount":40.00}'


def test_unbound_function_uses_parameter_aliases(rsps, client):
    rsps.get(f"{API}RetrieveTotalRecordCount(EntityNames=@p1,Flag=@p2,Name=@p3)", content_type=JSON,
             body='{"EntityRecordCountCollection":{"Count":1}}')
    result = client.execute("RetrieveTotalRecordCount", {"EntityNames": ["account"], "Flag": True, "Name": "O'Neil"},
                            is_function=True)
    assert result["EntityRecordCountCollection"]["Count"] == 1
    assert rsps.calls[0].request.url == (f"{API}RetrieveTotalRecordCount(EntityNames=@p1,Flag=@p2,Name=@p3)"
                                         "?@p1=%5B%22account%22%5D&@p2=true&@p3='O''Neil'")


def test_function_without_parameters(rsps, client):
    rsps.get(f"{API}WhoAmI()", content_type=JSON, body=json.dumps({"UserId": USER}))
    assert client.execute("WhoAmI", is_function=True)["UserId"] == USER


# --- impersonation ---------------------------------------------------------------------------------------------------------

def test_as_user_sends_mscrmcallerid_and_shares_the_session(rsps, client):
    rsps.get(f"{API}accounts({ACCOUNT})", body="{}", content_type=JSON)
    rsps.get(f"{API}accounts({ACCOUNT})", body="{}", content_type=JSON)
    person = client.as_user(USER)
    person.retrieve("accounts", ACCOUNT)
    client.retrieve("accounts", ACCOUNT)
    assert rsps.calls[0].request.headers["MSCRMCallerID"] == USER
    assert "MSCRMCallerID" not in rsps.calls[1].request.headers
    assert person._session is client._session


# --- $batch ------------------------------------------------------------------------------------------------------------------

def batch_answer(status, lines, boundary="batchresponse_7d4c"):
    return dict(status=status, body="\r\n".join(lines).encode(),
                content_type=f"multipart/mixed; boundary={boundary}")


def test_batch_sends_one_changeset_and_reads_each_result(rsps, client):
    rsps.post(f"{API}$batch", **batch_answer(200, [
        "--batchresponse_7d4c",
        "Content-Type: multipart/mixed; boundary=changesetresponse_2a1b",
        "",
        "--changesetresponse_2a1b",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 1",
        "",
        "HTTP/1.1 204 No Content",
        "OData-Version: 4.0",
        f"OData-EntityId: {API}w365_paymenttransactions({ACCOUNT})",
        "",
        "",
        "--changesetresponse_2a1b",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 2",
        "",
        "HTTP/1.1 204 No Content",
        "OData-Version: 4.0",
        f"OData-EntityId: {API}invoices({INVOICE})",
        "",
        "",
        "--changesetresponse_2a1b--",
        "--batchresponse_7d4c--",
        "",
    ]))
    results = client.batch([
        BatchOperation.create("w365_paymenttransactions", {"w365_amount": Decimal("10.50")}, content_id="1"),
        BatchOperation.update("invoices", INVOICE, {"statecode": 2, "statuscode": 100001}, etag='W/"470867"'),
    ])

    assert [(r.status, r.record_id) for r in results] == [(204, ACCOUNT), (204, INVOICE)]
    sent = rsps.calls[0].request
    assert sent.headers["Content-Type"].startswith("multipart/mixed; boundary=batch_")
    text = sent.body.decode()
    assert text.count("Content-Type: application/http\r\n") == 2 and "\n" not in text.replace("\r\n", "")
    assert "POST /api/data/v9.2/w365_paymenttransactions HTTP/1.1" in text and '{"w365_amount":10.50}' in text
    assert f'PATCH /api/data/v9.2/invoices({INVOICE}) HTTP/1.1\r\nContent-Type: application/json; type=entry\r\n' \
           f'If-Match: W/"470867"' in text


def test_a_failing_changeset_raises_the_failing_parts_typed_error(rsps, client):
    rsps.post(f"{API}$batch", **batch_answer(412, [
        "--batchresponse_7d4c",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 2",
        "",
        "HTTP/1.1 412 Precondition Failed",
        f"REQ_ID: {REQ_ID}",
        "Content-Type: application/json; odata.metadata=minimal",
        "OData-Version: 4.0",
        "",
        error_body("", "The version of the existing record doesn't match the RowVersion property provided."),
        "--batchresponse_7d4c--",
        "",
    ]))
    with pytest.raises(ConcurrencyConflict) as caught:
        client.batch([
            BatchOperation.create("w365_paymenttransactions", {"w365_amount": Decimal("10.50")}),
            BatchOperation.update("invoices", INVOICE, {"statecode": 2}, etag='W/"1"'),
        ])
    assert (caught.value.status, caught.value.request_id) == (412, REQ_ID)


def test_a_412_on_a_create_part_is_a_duplicate(rsps, client):
    rsps.post(f"{API}$batch", **batch_answer(400, [
        "--batchresponse_7d4c",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 1",
        "",
        "HTTP/1.1 412 Precondition Failed",
        "Content-Type: application/json; odata.metadata=minimal",
        "",
        error_body("0x80060892", "A record with matching key values already exists."),
        "--batchresponse_7d4c--",
    ]))
    with pytest.raises(DuplicateRecord):
        client.batch([BatchOperation.create("w365_paymenttransactions", {"w365_name": "charge:1"})])


@pytest.mark.parametrize("parts", [1, 2])
def test_a_failed_part_without_content_id_is_the_whole_changesets_failure_not_a_guess(rsps, client, parts):
    failed = ["Content-Type: application/http", "Content-Transfer-Encoding: binary", "",
              "HTTP/1.1 412 Precondition Failed", "Content-Type: application/json; odata.metadata=minimal", "",
              error_body("", "The version of the existing record doesn't match the RowVersion property provided.")]
    ok = ["Content-Type: application/http", "Content-Transfer-Encoding: binary", "", "HTTP/1.1 204 No Content", "", ""]
    lines = ["--batchresponse_7d4c", *failed] if parts == 1 else \
        ["--batchresponse_7d4c", *failed, "--batchresponse_7d4c", *ok]
    rsps.post(f"{API}$batch", **batch_answer(400, [*lines, "--batchresponse_7d4c--"]))
    with pytest.raises(DataverseError) as caught:
        client.batch([BatchOperation.create("w365_paymenttransactions", {"w365_name": "charge:1"}),
                      BatchOperation.update("invoices", INVOICE, {"statecode": 2}, etag='W/"1"')])
    # Position 1 is the create, whose 412 would read "duplicate": without a Content-ID that is not known.
    assert not isinstance(caught.value, DuplicateRecord)
    assert "changeset of 2 operations" in caught.value.message and caught.value.status == 412


def test_a_batch_rejected_as_a_whole_raises_from_its_json_error(rsps, client):
    rsps.post(f"{API}$batch", status=400, content_type=JSON, body=error_body("0x0", "Malformed batch"))
    with pytest.raises(DataverseError) as caught:
        client.batch([BatchOperation.delete("accounts", ACCOUNT)])
    assert caught.value.message == "Malformed batch"


def test_empty_batch_makes_no_call(rsps, client):
    assert client.batch([]) == []
    assert len(rsps.calls) == 0


# --- logging ---------------------------------------------------------------------------------------------------------------

def test_logs_name_method_path_status_and_request_id_never_values_or_token(rsps, client, caplog):
    rsps.get(f"{API}contacts", status=403, content_type=JSON, body=error_body("0x80040220", "no"),
             headers={"x-ms-service-request-id": REQ_ID})
    with caplog.at_level(logging.DEBUG, logger="dataverse.client"), pytest.raises(AccessDenied):
        client.query("contacts", filter="emailaddress1 eq 'jane@example.com'")
    text = caplog.text
    assert "GET /api/data/v9.2/contacts?$filter -> 403" in text and REQ_ID in text
    assert "jane" not in text and "tok-123" not in text


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_a_non_finite_retry_after_is_ignored(rsps, client, sleeps, value):
    rsps.get(f"{API}accounts({ACCOUNT})", status=429, body=THROTTLED, content_type=JSON, headers={"Retry-After": value})
    rsps.get(f"{API}accounts({ACCOUNT})", body='{"name":"a"}', content_type=JSON)
    assert client.retrieve("accounts", ACCOUNT) == {"name": "a"}
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5      # the ordinary back-off


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))) | st.text(alphabet="ab$'(),/:=@*-_.~ %+&#?é"))
def test_query_values_are_percent_encoded_exactly_as_quote_does(value):
    from urllib.parse import quote

    from dataverse.client import _QUERY_SAFE, _quoted

    assert _quoted(value) == quote(value, safe=_QUERY_SAFE)
