"""Stand-in $batch over real HTTP: changesets are atomic, Content-ID references, Dataverse's response format."""
import re

import requests


API = "https://contoso.crm.dynamics.com/api/data/v9.2/"




def part(method, url, body=None, content_id=None, **headers):
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    lines += [f"Content-ID: {content_id}"] if content_id else []
    lines += ["", f"{method} {url} HTTP/1.1"]
    lines += ["Content-Type: application/json; type=entry"] if body is not None else []
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += ["", body or ""]
    return "\r\n".join(lines)


def batch(*items):
    """items: a str part (outside any changeset) or a list of parts (one changeset)."""
    out = []
    for item in items:
        if isinstance(item, list):
            inner = "\r\n".join(f"--changeset_Y\r\n{p}" for p in item) + "\r\n--changeset_Y--\r\n"
            out.append("--batch_X\r\nContent-Type: multipart/mixed; boundary=changeset_Y\r\n\r\n" + inner)
        else:
            out.append(f"--batch_X\r\n{item}\r\n")
    body = "".join(out) + "--batch_X--\r\n"
    return requests.post(API + "$batch", data=body.encode(),
                         headers={"Content-Type": "multipart/mixed; boundary=batch_X"})


def test_changeset_with_content_id_commits_and_answers_like_dataverse(dv, ids):
    tag = dv.get("invoice", ids["invoice1"])["@odata.etag"]
    r = batch([
        part("POST", "/api/data/v9.2/w365_paymenttransactions", '{"w365_refid": "c1", "w365_amount": 120.00, '
             f'"w365_invoiceid@odata.bind": "/invoices({ids["invoice1"]})"}}', content_id="1"),
        part("PATCH", "$1", '{"w365_outcome": 100000001}', content_id="2"),
        part("PATCH", f"{API}invoices({ids['invoice1']})", '{"w365_balance": 0, "w365_amountpaid": 120}',
             content_id="3", **{"If-Match": tag}),
    ], part("GET", f"invoices({ids['invoice1']})?$select=w365_balance"))
    assert r.status_code == 200
    boundary = re.fullmatch(r"multipart/mixed; boundary=(batchresponse_[\w-]+)", r.headers["Content-Type"]).group(1)
    text = r.text
    assert text.endswith(f"--{boundary}--\r\n") and "\r\n" in text
    assert re.search(r"Content-Type: multipart/mixed; boundary=changesetresponse_[\w-]+\r\n", text)
    assert text.count("HTTP/1.1 204 No Content\r\n") == 3 and "Content-ID: 1\r\n" in text
    created = re.search(r"OData-EntityId: " + re.escape(API) + r"w365_paymenttransactions\(([\w-]+)\)", text).group(1)
    assert "HTTP/1.1 200 OK" in text and '"w365_balance":0.00' in text
    row = dv.get("w365_paymenttransaction", created)
    assert row["w365_outcome"] == 100000001 and str(dv.get("invoice", ids["invoice1"])["w365_balance"]) == "0.00"


def test_failing_part_rolls_back_the_whole_changeset(dv, ids):
    before_invoice = dv.get("invoice", ids["invoice1"])
    r = batch([
        part("POST", "w365_paymenttransactions", '{"w365_refid": "c2", "w365_amount": 10}', content_id="1"),
        part("PATCH", f"invoices({ids['invoice1']})", '{"w365_balance": 110}', content_id="2"),
        part("PATCH", f"invoices({ids['invoice1']})", '{"w365_balance": 100}', content_id="3",
             **{"If-Match": 'W/"1"'}),
    ])
    assert r.status_code == 400
    assert "HTTP/1.1 412 Precondition Failed" in r.text and "RowVersion" in r.text
    assert "changesetresponse_" not in r.text and "HTTP/1.1 204" not in r.text
    assert dv.rows("w365_paymenttransaction") == []
    assert dv.get("invoice", ids["invoice1"]) == before_invoice               # same values, same version


def test_batch_stops_at_first_error_outside_changesets(dv, ids):
    r = batch(part("GET", "nosuchsets"), part("POST", "w365_operations", '{"w365_requestid": "x"}'))
    assert r.status_code == 400 and "HTTP/1.1 404 Not Found" in r.text
    assert dv.rows("w365_operation") == []


def test_malformed_batch_and_get_inside_changeset_are_400(dv, ids):
    assert requests.post(API + "$batch", data=b"--batch_X\r\n", headers={
        "Content-Type": "multipart/mixed; boundary=batch_X"}).status_code == 400
    assert batch([part("GET", "accounts")]).status_code == 400


def test_a_rolled_back_changeset_leaves_no_trace_in_keys_or_expands(dv, ids):
    """The stand-in undoes only what the changeset changed (no copy of the store per $batch): the rolled-back row's
    alternate key is free again and no $expand of its parent shows it."""
    def attempt(refid, etag):
        return batch([
            part("POST", "w365_paymenttransactions", f'{{"w365_refid": "{refid}", "w365_amount": 10, '
                 f'"w365_invoiceid@odata.bind": "/invoices({ids["invoice1"]})"}}', content_id="1"),
            part("PATCH", f"invoices({ids['invoice1']})", '{"w365_balance": 100}', content_id="2",
                 **{"If-Match": etag}),
        ])

    assert attempt("k1", 'W/"1"').status_code == 400
    expanded = requests.get(f"{API}invoices({ids['invoice1']})?$select=name"
                            "&$expand=w365_paymenttransaction_invoiceid($select=w365_refid)").json()
    assert expanded["w365_paymenttransaction_invoiceid"] == []
    assert attempt("k1", dv.get("invoice", ids["invoice1"])["@odata.etag"]).status_code == 200
    again = requests.get(f"{API}w365_paymenttransactions(w365_refid='k1')?$select=w365_refid").json()
    assert again["w365_refid"] == "k1"
