"""X-ANET-Signature: HMAC-SHA512 of the raw body, key as text (or hex-decoded), upper-case hex, constant-time compare."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from gateway.signature import sign, verify_signature

KEY = "E4B2C0A1" * 16          # Signature Keys are 128 hex characters, used as text
BODY = b'{"notificationId":"n-1","eventType":"net.authorize.payment.authcapture.created",' \
       b'"payload":{"authAmount":45.00,"entityName":"transaction","id":"60020981676"}}'


def test_sign_is_upper_hex_hmac_sha512_with_the_key_as_text():
    header = sign(BODY, KEY)
    expected = hmac.new(KEY.encode("ascii"), BODY, hashlib.sha512).hexdigest().upper()
    assert header == "sha512=" + expected
    assert header != "sha512=" + hmac.new(bytes.fromhex(KEY), BODY, hashlib.sha512).hexdigest().upper()


@pytest.mark.parametrize("header", [
    lambda h: h,
    lambda h: h.lower(),                        # case-insensitive hex and prefix
    lambda h: "SHA512=" + h[7:],
    lambda h: f"  {h} ",
])
def test_valid_signatures_verify(header):
    assert verify_signature(BODY, header(sign(BODY, KEY)), KEY)


@pytest.mark.parametrize("header", [
    None, "", "sha512", "sha512=", "sha256=" + "A" * 128, "sha512=" + "A" * 127, "sha512=" + "A" * 129,
    "sha512=" + "Z" * 128, "sha512=" + "é" * 128, "A" * 135,
])
def test_malformed_headers_are_refused(header):
    assert verify_signature(BODY, header, KEY) is False


def test_wrong_key_or_changed_body_is_refused():
    header = sign(BODY, KEY)
    assert not verify_signature(BODY, header, KEY[:-1] + "9")
    assert not verify_signature(BODY + b" ", header, KEY)
    assert not verify_signature(BODY[:-10], header, KEY)                     # truncated


def test_reserialized_json_fails_so_the_raw_body_must_be_used():
    reserialized = json.dumps(json.loads(BODY)).encode()                      # 45.00 becomes 45.0
    assert not verify_signature(reserialized, sign(BODY, KEY), KEY)


def test_an_unset_key_verifies_nothing():
    assert not verify_signature(BODY, sign(BODY, ""), "")


def test_a_signature_made_with_the_key_hex_decoded_verifies_too():
    # Published material disagrees on the key's form (research/gateway.md §4): both forms are accepted, both need it.
    hex_form = "sha512=" + hmac.new(bytes.fromhex(KEY), BODY, hashlib.sha512).hexdigest().upper()
    assert verify_signature(BODY, hex_form, KEY)
    assert verify_signature(BODY, hex_form.lower(), KEY)
    other_key = KEY[:-1] + "9"
    assert not verify_signature(BODY, hex_form, other_key)
    assert not verify_signature(BODY + b" ", hex_form, KEY)


def test_a_key_that_is_not_hex_is_only_used_as_text():
    key = "not-hex-signature-key-0123456789"
    assert verify_signature(BODY, sign(BODY, key), key)
    assert not verify_signature(BODY, "sha512=" + "0" * 128, key)
