"""Typed sentinels and roles."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import protomata
import protomata.http
from protomata import CLIENT, NEED_DATA, PAUSED, SERVER, Role, Sentinel, SentinelType


def test_sentinels_are_distinct_enum_members() -> None:
    assert isinstance(NEED_DATA, Sentinel)
    assert isinstance(PAUSED, Sentinel)
    assert NEED_DATA is Sentinel.NEED_DATA
    assert PAUSED is Sentinel.PAUSED
    assert NEED_DATA is not PAUSED
    assert NEED_DATA != PAUSED
    assert list(Sentinel) == [NEED_DATA, PAUSED]


def test_sentinel_repr_and_str_name() -> None:
    assert repr(NEED_DATA) == "NEED_DATA"
    assert repr(PAUSED) == "PAUSED"
    assert NEED_DATA.name == "NEED_DATA"
    assert PAUSED.value == "PAUSED"


def test_sentinels_are_singletons_through_copy_and_pickle() -> None:
    for sentinel in (NEED_DATA, PAUSED):
        assert copy.copy(sentinel) is sentinel
        assert copy.deepcopy(sentinel) is sentinel
        assert pickle.loads(pickle.dumps(sentinel)) is sentinel


def test_sentinels_hash_by_identity() -> None:
    table = {NEED_DATA: 1, PAUSED: 2}
    assert table[NEED_DATA] == 1
    assert table[Sentinel.PAUSED] == 2
    assert hash(NEED_DATA) == object.__hash__(NEED_DATA)


def test_sentinels_are_not_events_and_are_truthy() -> None:
    assert not isinstance(NEED_DATA, protomata.http.Event)
    # Enum members are truthy; code like "while ev:" must not misbehave silently.
    assert bool(NEED_DATA)
    assert bool(PAUSED)


def test_sentinel_type_lists_both_members() -> None:
    assert typing.get_origin(SentinelType) is typing.Literal
    assert set(typing.get_args(SentinelType)) == {NEED_DATA, PAUSED}


def test_reexports() -> None:
    assert protomata.NEED_DATA is protomata.http.NEED_DATA is NEED_DATA
    assert protomata.PAUSED is protomata.http.PAUSED is PAUSED
    assert protomata.http.SentinelType is SentinelType
    assert protomata.CLIENT is protomata.http.CLIENT is CLIENT
    assert protomata.SERVER is protomata.http.SERVER is SERVER
    for name in protomata.__all__:
        assert hasattr(protomata, name), name
    for name in protomata.http.__all__:
        assert hasattr(protomata.http, name), name


# -- roles -------------------------------------------------------------------------


def test_roles() -> None:
    assert CLIENT is Role.CLIENT
    assert SERVER is Role.SERVER
    assert CLIENT is not SERVER
    assert repr(CLIENT) == "CLIENT"
    assert repr(SERVER) == "SERVER"
    assert CLIENT.peer is SERVER
    assert SERVER.peer is CLIENT
    assert {CLIENT: 1, SERVER: 2}[Role.SERVER] == 2
    assert hash(CLIENT) == object.__hash__(CLIENT)
    assert pickle.loads(pickle.dumps(SERVER)) is SERVER


# -- static typing -----------------------------------------------------------------

NARROWING_SNIPPET = """
from protomata.http import (
    CLIENT, NEED_DATA, PAUSED, Connection, ConnectionClosed, Data, EndOfMessage,
    InformationalResponse, Request, Response,
)

HTTPEventUnion = (
    Request | InformationalResponse | Response | Data | EndOfMessage | ConnectionClosed
)


def handle(conn: Connection) -> HTTPEventUnion | None:
    ev = conn.next_event()
    if ev is NEED_DATA:
        return None
    elif ev is PAUSED:
        return None
    else:
        reveal_type(ev)
        event: HTTPEventUnion = ev
        return event
"""

UNNARROWED_SNIPPET = """
from protomata.http import CLIENT, NEED_DATA, Connection, Event


def handle(conn: Connection) -> Event | None:
    ev = conn.next_event()
    if ev is NEED_DATA:
        return None
    event: Event = ev  # PAUSED is still possible here
    return event
"""


def run_mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(source)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            str(snippet),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )


def test_mypy_narrows_next_event_past_both_sentinels(tmp_path: Path) -> None:
    result = run_mypy(tmp_path, NARROWING_SNIPPET)
    assert result.returncode == 0, result.stdout + result.stderr
    revealed = [line for line in result.stdout.splitlines() if "Revealed type" in line]
    assert len(revealed) == 1, result.stdout
    assert "Sentinel" not in revealed[0]
    for name in ("Request", "Response", "Data", "EndOfMessage", "ConnectionClosed"):
        assert name in revealed[0]


def test_mypy_rejects_unnarrowed_use(tmp_path: Path) -> None:
    # The control case: if the sentinels were typed loosely (Any, object),
    # this would pass and the narrowing test above would prove nothing.
    result = run_mypy(tmp_path, UNNARROWED_SNIPPET)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Incompatible types in assignment" in result.stdout
    assert "PAUSED" in result.stdout
