"""The SASL messages shared by SMTP and POP3 (protomata._core._sasl)."""

from __future__ import annotations

import pytest

from protomata._core._sasl import (
    cram_md5_challenge,
    cram_md5_digest,
    cram_md5_response,
    digests_match,
    parse_cram_md5,
    parse_plain,
    parse_xoauth2,
    plain_response,
    xoauth2_response,
)

# RFC 2195 section 2's example.
RFC2195_CHALLENGE = b"<1896.697170952@postoffice.reston.mci.net>"
RFC2195_DIGEST = "b913a602c7eda7a495b4e6e7334d3890"


def test_cram_md5_matches_rfc_2195() -> None:
    assert cram_md5_digest("tanstaaftanstaaf", RFC2195_CHALLENGE) == RFC2195_DIGEST
    response = cram_md5_response("tim", "tanstaaftanstaaf", RFC2195_CHALLENGE)
    assert response == b"tim " + RFC2195_DIGEST.encode()
    assert parse_cram_md5(response) == ("tim", RFC2195_DIGEST)
    assert digests_match("tanstaaftanstaaf", RFC2195_CHALLENGE, RFC2195_DIGEST)
    assert not digests_match("wrong", RFC2195_CHALLENGE, RFC2195_DIGEST)
    assert not digests_match(None, RFC2195_CHALLENGE, cram_md5_digest("", RFC2195_CHALLENGE))


@pytest.mark.parametrize(
    "answer",
    [
        b"",
        b"tim",
        b" " + RFC2195_DIGEST.encode(),
        b"tim " + RFC2195_DIGEST.upper().encode(),
        b"tim " + RFC2195_DIGEST[:-1].encode(),
        b"\xff " + RFC2195_DIGEST.encode(),
    ],
)
def test_malformed_cram_md5_answers(answer: bytes) -> None:
    assert parse_cram_md5(answer) is None


def test_user_names_with_spaces_keep_the_last_space_as_separator() -> None:
    assert parse_cram_md5(b"john smith " + RFC2195_DIGEST.encode()) == (
        "john smith",
        RFC2195_DIGEST,
    )


def test_challenges_are_unique_msg_ids() -> None:
    challenges = {cram_md5_challenge("mx.example") for _ in range(100)}
    assert len(challenges) == 100
    assert all(c.startswith(b"<") and c.endswith(b"@mx.example>") for c in challenges)


def test_plain_round_trip_and_malformed() -> None:
    assert plain_response("alice", "pässwörd") == "\0alice\0pässwörd".encode()
    assert parse_plain(plain_response("alice", "s3cret", "admin")) == ("admin", "alice", "s3cret")
    assert parse_plain(b"\0alice\0") == ("", "alice", "")
    for bad in (b"alice\0s3cret", b"\0\0s3cret", b"a\0b\0c\0d", b"\0\xff\0x"):
        assert parse_plain(bad) is None, bad


def test_xoauth2_round_trip_and_malformed() -> None:
    message = xoauth2_response("someone@example.com", "ya29.token")
    assert message == b"user=someone@example.com\x01auth=Bearer ya29.token\x01\x01"
    assert parse_xoauth2(message) == ("someone@example.com", "ya29.token")
    assert parse_xoauth2(b"user=u\x01auth=bearer t\x01\x01") == ("u", "t")
    for bad in (
        b"user=u\x01auth=Bearer t\x01",  # not terminated
        b"user=u\x01auth=Basic t\x01\x01",
        b"auth=Bearer t\x01\x01",
        b"user=u\x01user=v\x01auth=Bearer t\x01\x01",
        b"user=u\x01auth=Bearer \x01\x01",
        b"user=\xff\x01auth=Bearer t\x01\x01",
    ):
        assert parse_xoauth2(bad) is None, bad
