"""The shared exception hierarchy."""

from __future__ import annotations

import pickle

import pytest

import protomata
import protomata.http
from protomata import LocalProtocolError, ProtocolError, RemoteProtocolError


def test_protocol_error_is_abstract() -> None:
    with pytest.raises(TypeError):
        ProtocolError("nope")
    with pytest.raises(TypeError):
        ProtocolError("nope", 500)


@pytest.mark.parametrize("cls", [LocalProtocolError, RemoteProtocolError])
def test_subclasses_carry_message_and_default_hint(cls: type[ProtocolError]) -> None:
    exc = cls("something broke")
    assert isinstance(exc, ProtocolError)
    assert isinstance(exc, Exception)
    assert str(exc) == "something broke"
    assert exc.args == ("something broke",)
    assert exc.error_status_hint == 400


@pytest.mark.parametrize("cls", [LocalProtocolError, RemoteProtocolError])
def test_custom_hint(cls: type[ProtocolError]) -> None:
    assert cls("too big", 431).error_status_hint == 431
    assert cls("smtp", error_status_hint=554).error_status_hint == 554


def test_local_and_remote_are_distinct() -> None:
    assert not issubclass(LocalProtocolError, RemoteProtocolError)
    assert not issubclass(RemoteProtocolError, LocalProtocolError)


@pytest.mark.parametrize("cls", [LocalProtocolError, RemoteProtocolError])
def test_catching_the_base_class_catches_both(cls: type[ProtocolError]) -> None:
    with pytest.raises(ProtocolError) as excinfo:
        raise cls("x", 505)
    assert type(excinfo.value) is cls
    assert excinfo.value.error_status_hint == 505


def test_reexported_everywhere() -> None:
    assert protomata.LocalProtocolError is protomata.http.LocalProtocolError is LocalProtocolError
    assert protomata.RemoteProtocolError is protomata.http.RemoteProtocolError
    assert protomata.ProtocolError is protomata.http.ProtocolError


def test_local_error_raised_while_parsing_surfaces_as_remote() -> None:
    # The state machine checks a received 101 with the same code that checks
    # what we send; the resulting LocalProtocolError must reach the user as
    # a RemoteProtocolError (the peer broke the protocol, not us).
    conn = protomata.http.Connection(protomata.CLIENT)
    conn.send(protomata.http.Request(method="GET", target="/", headers=[("Host", "a")]))
    conn.send(protomata.http.EndOfMessage())
    conn.receive_data(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
    with pytest.raises(RemoteProtocolError) as excinfo:
        conn.next_event()
    assert not isinstance(excinfo.value, LocalProtocolError)
    assert excinfo.value.error_status_hint == 400
    assert excinfo.value.__traceback__ is not None


def test_reraise_as_remote_keeps_message_hint_and_identity() -> None:
    original = LocalProtocolError("bad byte", 414)
    with pytest.raises(RemoteProtocolError) as excinfo:
        original._reraise_as_remote_protocol_error()
    assert excinfo.value is original
    assert str(excinfo.value) == "bad byte"
    assert excinfo.value.error_status_hint == 414


@pytest.mark.parametrize("cls", [LocalProtocolError, RemoteProtocolError])
def test_errors_pickle(cls: type[ProtocolError]) -> None:
    clone = pickle.loads(pickle.dumps(cls("msg", 431)))
    assert type(clone) is cls
    assert str(clone) == "msg"
    assert clone.error_status_hint == 431
