"""Round trip: what our client sends, our server parses to the same command, and back."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from protomata.pop3 import (
    AUTHORIZATION,
    CLIENT,
    SERVER,
    TRANSACTION,
    Apop,
    Auth,
    Capa,
    Capabilities,
    Connection,
    Dele,
    Err,
    Greeting,
    List,
    Ok,
    Pass,
    Retr,
    ScanListing,
    Top,
    Uidl,
    UidListing,
    User,
)

text = st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)))
word = text.filter(lambda s: s != "" and " " not in s and s.strip(" ") == s)
number = st.integers(min_value=1, max_value=10**9)
commands = st.one_of(
    word.map(User),
    text.map(Pass),
    st.builds(Apop, word, word),
    st.builds(List, st.none() | number),
    st.builds(Uidl, st.none() | number),
    number.map(Retr),
    number.map(Dele),
    st.builds(Top, number, st.integers(min_value=0, max_value=10**9)),
    st.builds(Auth, st.from_regex(r"[A-Z0-9_-]{1,20}", fullmatch=True), st.none() | st.binary()),
)


@settings(max_examples=200, deadline=None)
@given(commands)
def test_commands_round_trip(command: Any) -> None:
    client = Connection(CLIENT)
    client.receive_data(b"+OK\r\n")
    client.next_event()
    if type(command) in (User, Pass, Apop, Auth):
        client._user_accepted = True
    else:
        client._state = TRANSACTION
    server = Connection(SERVER)
    server.send(Greeting())
    server._state = client.state
    server._user_accepted = True
    server.receive_data(client.send(command))
    assert server.next_event() == command
    assert server.data_to_send() == b""


uid = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=70)
replies = st.one_of(
    st.builds(ScanListing, st.lists(st.tuples(number, st.integers(0, 10**12))), text),
    st.builds(UidListing, st.lists(st.tuples(number, uid)), text),
    st.builds(
        Capabilities,
        st.lists(text.filter(lambda s: s != "" and not s.startswith("."))),
        text,
    ),
)


@settings(max_examples=200, deadline=None)
@given(replies, text)
def test_listings_and_status_lines_round_trip(listing: Any, status: str) -> None:
    command = {ScanListing: List(), UidListing: Uidl()}.get(type(listing))
    client = Connection(CLIENT)
    server = Connection(SERVER)
    client.receive_data(server.send(Greeting(status)))
    assert client.next_event() == Greeting(status)
    for cmd, reply in ((command or Capa(), listing), (Retr(1), Err(status))):
        client._state = server._state = TRANSACTION if type(cmd) is not Capa else AUTHORIZATION
        server.receive_data(client.send(cmd))
        assert server.next_event() == cmd
        client.receive_data(server.send(reply))
        assert client.next_event() == reply
    client._state = server._state = TRANSACTION
    server.receive_data(client.send(List(1)))
    server.next_event()
    client.receive_data(server.send(Ok(status)))
    assert client.next_event() == Ok(status)
