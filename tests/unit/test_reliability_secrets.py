"""The secrets scenario's oracle finds a password in every form it can take in output."""

from __future__ import annotations

import base64

from benchmarks.chaos import secrets

SECRET = "S3cr3t-k1ZpQ0x_yy"


def test_the_password_is_found_as_itself():
    assert "plain" in secrets.leaks(b"sasl_plain_password='" + SECRET.encode() + b"'", SECRET)


def test_the_password_is_found_inside_a_longer_base64_blob_at_any_alignment():
    for prefix in (b"", b"u", b"us", b"user:"):
        blob = base64.b64encode(prefix + SECRET.encode() + b"|tail")
        assert secrets.leaks(b"Authorization: Basic " + blob, SECRET), prefix


def test_the_sasl_plain_token_is_found():
    token = base64.b64encode(b"\0" + secrets.USER.encode() + b"\0" + SECRET.encode())
    assert "sasl_plain_token" in secrets.leaks(token, SECRET)


def test_output_without_the_password_has_no_leak():
    text = b"kafka.security.password: ******** (from STREAMVAE_KAFKA_SECURITY_PASSWORD)"
    assert secrets.leaks(text, SECRET) == []
