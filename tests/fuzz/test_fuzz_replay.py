"""Run the fuzz harnesses over their seed corpora, in-process and without atheris.

CI thereby exercises every harness (and every invariant it checks) on each
run, even where atheris does not install.  Inputs that found bugs are kept
below as regression cases.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

FUZZ_DIR = Path(__file__).resolve().parents[2] / "fuzz"
SEEDS_DIR = FUZZ_DIR / "seeds"
HTTP_HARNESSES = ("http_server", "http_client")
MAIL_HARNESSES = ("smtp_server", "smtp_client", "pop3_server", "pop3_client")
HARNESSES = HTTP_HARNESSES + MAIL_HARNESSES


@functools.cache
def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_fuzz_{name}", FUZZ_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seeds(name: str) -> list[Path]:
    return sorted(p for p in (SEEDS_DIR / name).iterdir() if p.is_file())


SEED_CASES = [
    pytest.param(name, path, id=f"{name}/{path.name}")
    for name in HARNESSES
    for path in _seeds(name)
]


@pytest.fixture(scope="module")
def modules() -> dict[str, ModuleType]:
    return {name: _load(name) for name in HARNESSES}


@pytest.mark.parametrize(("name", "path"), SEED_CASES)
def test_seed_replays_cleanly(modules: dict[str, ModuleType], name: str, path: Path) -> None:
    modules[name].check_one_input(path.read_bytes())


@pytest.mark.parametrize("name", HARNESSES)
def test_fuzz_entry_point_runs_every_seed(modules: dict[str, ModuleType], name: str) -> None:
    module = modules[name]
    assert module._COLLECT_DIR is None or "PROTOMATA_FUZZ_COLLECT" in os.environ
    for path in _seeds(name):
        module.TestOneInput(path.read_bytes())


@pytest.mark.parametrize("name", HARNESSES)
def test_seed_corpus_is_realistic(modules: dict[str, ModuleType], name: str) -> None:
    seeds = _seeds(name)
    assert len(seeds) >= 12
    streams = [modules[name].decode_input(p.read_bytes())[-1] for p in seeds]
    starts: dict[str, tuple[bytes, ...]] = {
        "http_client": (b"HTTP/1.",),
        "smtp_client": (b"220", b"554"),  # a greeting or a refusal
        "pop3_client": (b"+OK ", b"-ERR "),
    }
    if name in starts:
        assert all(s.startswith(starts[name]) for s in streams)
    else:
        assert not any(s.startswith(b"HTTP/1.") for s in streams)
    # Seeds differ in their control bytes too, not only in the stream.
    assert len({p.read_bytes()[-2:] for p in seeds}) > 3


def test_server_seeds_cover_the_framings(modules: dict[str, ModuleType]) -> None:
    streams = b"\n".join(
        modules["http_server"].decode_input(p.read_bytes())[-1] for p in _seeds("http_server")
    )
    for needle in (
        b"Content-Length:",
        b"Transfer-Encoding: chunked",
        b"HTTP/1.0",
        b"Expect: 100-continue",
        b"Upgrade:",
        b"CONNECT ",
        b"HEAD ",
    ):
        assert needle in streams


def test_client_seeds_cover_the_framings(modules: dict[str, ModuleType]) -> None:
    streams = b"\n".join(
        modules["http_client"].decode_input(p.read_bytes())[-1] for p in _seeds("http_client")
    )
    for needle in (
        b"Content-Length:",
        b"Transfer-Encoding: chunked",
        b"HTTP/1.0 200",
        b"HTTP/1.1 100 Continue",
        b"HTTP/1.1 101 ",
        b"HTTP/1.1 103 ",
        b"HTTP/1.1 204 ",
        b"HTTP/1.1 304 ",
    ):
        assert needle in streams


# -- input encoding ------------------------------------------------------------


def test_server_input_round_trip(modules: dict[str, ModuleType]) -> None:
    module = modules["http_server"]
    data = module.encode_input(b"GET / HTTP/1.1\r\n\r\n", 0x5A, [1, 256, 7])
    assert module.decode_input(data) == (0x5A, [1, 256, 7], b"GET / HTTP/1.1\r\n\r\n")


def test_client_input_round_trip(modules: dict[str, ModuleType]) -> None:
    module = modules["http_client"]
    data = module.encode_input(b"HTTP/1.1 200 OK\r\n\r\n", 0x12, 0x34, [3])
    assert module.decode_input(data) == (0x12, 0x34, [3], b"HTTP/1.1 200 OK\r\n\r\n")


def test_split_stream_covers_the_stream() -> None:
    split = _load("_harness").split_stream
    stream = bytes(range(100))
    assert list(split(stream, [])) == [stream]
    pieces = list(split(stream, [1, 30]))
    assert b"".join(pieces) == stream
    assert [len(p) for p in pieces] == [1, 30, 1, 30, 1, 30, 1, 6]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64))
def test_replay_provider_matches_atheris(data: bytes) -> None:
    atheris = pytest.importorskip("atheris")
    replay = _load("_harness").ReplayDataProvider(data)
    real = atheris.FuzzedDataProvider(data)
    for low, high in ((0, 255), (0, 15), (1, 256), (3, 9), (0, 65535), (7, 7), (0, 2**40)):
        assert replay.ConsumeIntInRange(low, high) == real.ConsumeIntInRange(low, high)
        assert replay.remaining_bytes() == real.remaining_bytes()
        assert replay.ConsumeBytes(2) == real.ConsumeBytes(2)
    assert replay.ConsumeBytes(1000) == real.ConsumeBytes(1000)


# -- the command line ----------------------------------------------------------------


@pytest.mark.parametrize("name", HARNESSES)
def test_replay_command_works_without_atheris(name: str) -> None:
    # sys.modules["atheris"] = None makes "import atheris" fail, as if absent.
    script = FUZZ_DIR / f"{name}.py"
    code = (
        "import runpy, sys\n"
        "sys.modules['atheris'] = None\n"
        f"sys.argv = [{str(script)!r}, '--replay', {str(SEEDS_DIR / name)!r}]\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert f"replayed {len(_seeds(name))} inputs, 0 failed" in proc.stderr


def test_fuzzing_without_atheris_says_so(tmp_path: Path) -> None:
    script = FUZZ_DIR / "http_server.py"
    code = (
        "import runpy, sys\n"
        "sys.modules['atheris'] = None\n"
        f"sys.argv = [{str(script)!r}, {str(tmp_path)!r}]\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert "--replay" in proc.stderr


def test_replay_counts_and_reports_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _load("http_client")
    (tmp_path / "good").write_bytes(b"x")
    (tmp_path / "bad").write_bytes(b"y")

    def check(data: bytes) -> None:
        assert data != b"y", "invariant broken"

    monkeypatch.setattr(module, "check_one_input", check)
    assert module.replay([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"FAILED: {tmp_path / 'bad'}" in err
    assert "invariant broken" in err
    assert "replayed 2 inputs, 1 failed" in err
    assert module.main(["http_client.py", "--replay", str(tmp_path / "good")]) == 0
    assert module.main(["http_client.py", "--replay", str(tmp_path)]) == 1


# -- inputs that found bugs --------------------------------------------------------
#
# Each was found by the harnesses as a chunking-invariance failure: the same
# bytes parsed differently when they arrived in pieces.


def _client_input(stream: bytes, sizes: list[int], methods: int = 0, flags: int = 0) -> bytes:
    return _load("http_client").encode_input(stream, methods, flags, sizes)


def _server_input(stream: bytes, sizes: list[int], flags: int = 0) -> bytes:
    return _load("http_server").encode_input(stream, flags, sizes)


_OK_EMPTY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
_GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


def test_regression_server_empty_line_before_request_split_after_cr(
    modules: dict[str, ModuleType],
) -> None:
    # RFC 9112 section 2.2 lets a server skip an empty line before a request
    # line; the CR and the LF may arrive in different reads.
    stream = _GET + b"\r\n" + _GET
    module = modules["http_server"]
    module.check_one_input(_server_input(stream, [len(_GET) + 1]))
    pieces = [stream[: len(_GET) + 1], stream[len(_GET) + 1 :]]
    transcript = module.ServerSession(0, len(stream)).run(pieces)
    assert [type(item[1]).__name__ for item in transcript if item[0] == "event"] == [
        "Request",
        "EndOfMessage",
        "Request",
        "EndOfMessage",
        "ConnectionClosed",
    ]


def test_regression_client_empty_line_before_status_line_split_after_cr(
    modules: dict[str, ModuleType],
) -> None:
    # Was: "illegal status line" when the CR of an empty line before a status
    # line arrived alone; in one piece the empty line was skipped.
    stream = _OK_EMPTY + b"\r\n" + _OK_EMPTY
    module = modules["http_client"]
    module.check_one_input(_client_input(stream, [len(_OK_EMPTY) + 1]))
    pieces = [stream[: len(_OK_EMPTY) + 1], stream[len(_OK_EMPTY) + 1 :]]
    transcript = module.ClientSession(0, 0, len(stream)).run(pieces)
    responses = [item[1] for item in transcript if item[0] == "event"]
    assert [getattr(r, "status_code", None) for r in responses[:4]] == [200, None, 200, None]


_SMALL = 0x20  # http_server's _F_SMALL: max_line_length=90
_SMALL_CLIENT = 0x01  # http_client's _F_SMALL: max_line_length=90


def test_regression_server_start_line_of_max_length_split(modules: dict[str, ModuleType]) -> None:
    # Was: 414 when the head arrived in pieces (the early line-length check
    # looked for the LF within max_line_length + 1 bytes, leaving no room for
    # the CRLF); accepted when it arrived at once.
    line = b"GET /" + b"a" * 76 + b" HTTP/1.1"
    assert len(line) == 90
    head = line + b"\r\nHost: example.com\r\n\r\n"
    module = modules["http_server"]
    module.check_one_input(_server_input(head, [len(head) - 2], _SMALL))
    transcript = module.ServerSession(_SMALL, len(head)).run([head[:-2], head[-2:]])
    assert transcript[0][0] == "event" and transcript[0][1].target == b"/" + b"a" * 76


def test_regression_client_status_line_of_max_length_split(
    modules: dict[str, ModuleType],
) -> None:
    line = b"HTTP/1.1 200 " + b"x" * 77
    assert len(line) == 90
    head = line + b"\r\nContent-Length: 0\r\n\r\n"
    module = modules["http_client"]
    module.check_one_input(_client_input(head, [len(head) - 2], flags=_SMALL_CLIENT))
    transcript = module.ClientSession(0, _SMALL_CLIENT, len(head)).run([head[:-2], head[-2:]])
    assert transcript[1][0] == "event" and transcript[1][1].reason == b"x" * 77


# -- the mail harnesses ----------------------------------------------------------


def _streams(modules: dict[str, ModuleType], name: str) -> bytes:
    return b"\n".join(modules[name].decode_input(p.read_bytes())[-1] for p in _seeds(name))


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        (
            "smtp_server",
            [b"EHLO ", b"LHLO ", b"DATA\r\n", b"BDAT ", b"AUTH ", b"STARTTLS", b"\n.\n"],
        ),
        ("smtp_client", [b"250-PIPELINING", b"354 ", b"334 ", b"421 ", b"550 ", b"\n250 "]),
        ("pop3_server", [b"APOP ", b"AUTH ", b"STLS", b"RETR ", b"TOP ", b"UIDL", b"\x00"]),
        ("pop3_client", [b"+OK", b"-ERR", b"+ ", b"\r\n..", b"SASL ", b"STLS"]),
    ],
)
def test_mail_seeds_cover_the_protocol(
    modules: dict[str, ModuleType], name: str, needles: list[bytes]
) -> None:
    streams = _streams(modules, name)
    for needle in needles:
        assert needle in streams, needle


@pytest.mark.parametrize("name", MAIL_HARNESSES)
def test_mail_input_round_trip(modules: dict[str, ModuleType], name: str) -> None:
    module = modules[name]
    data = module.encode_input(b"QUIT\r\n", 0xA5, [1, 256, 7])
    assert module.decode_input(data) == (0xA5, [1, 256, 7], b"QUIT\r\n")
    with pytest.raises(ValueError):
        module.encode_input(b"", 0, [0])


def _mail_input(name: str, stream: bytes, flags: int, sizes: list[int]) -> bytes:
    return _load(name).encode_input(stream, flags, sizes)


@pytest.mark.parametrize(
    ("name", "stream", "flags", "sizes"),
    [
        # A too-long DATA line: the bytes before it came out only when they
        # arrived in an earlier read (DotUnstuffer).
        (
            "smtp_server",
            b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n" + b"y" * 90 + b"\r\n",
            0x06,
            [13, 51],
        ),
        # max_message_size: DataChunks up to the read that crossed it, or none.
        (
            "smtp_server",
            b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"
            + (b"y" * 60 + b"\r\n") * 6
            + b".\r\nQUIT\r\n",
            0x06,
            [13, 50],
        ),
        # A quote in a source route: the parser accepted what MailFrom refused.
        (
            "smtp_server",
            b'HELO c\r\nMAIL FROM: <@relay.exam"p:eojlhn doe"@x.example>\r\nQUIT\r\n',
            0x00,
            [],
        ),
        # A quoted "<" in an address: accepted by the parser, refused by MailFrom.
        ("smtp_server", b'HELO c\r\nMAIL FROM:<"a<b"@x>\r\nQUIT\r\n', 0x00, []),
        # Control characters in reply text: accepted, but no Reply could carry them.
        ("smtp_client", b"554 5.7.1 no service\r\n503 5.5.1 bad\r\x1a221 bye\r\n", 0x00, []),
        # A greeting timestamp with invalid UTF-8: apop_digest raised UnicodeEncodeError.
        ("pop3_client", b"+OK POP3 ready <1896.6971@dbc.mtview\xdbca.us>\r\n+OK\r\n", 0x48, []),
        # A reply text with a bare CR, a listing with message 0, a 71-byte unique-id.
        ("pop3_client", b"+OK hi\r\n+OK a\rb\r\n", 0x40, []),
        ("pop3_client", b"+OK hi\r\n+OK\r\n+OK\r\n+OK 1 2\r\n+OK\r\n0 12\r\n.\r\n", 0x40, []),
        (
            "pop3_client",
            b"+OK hi\r\n+OK\r\n+OK\r\n+OK 1 2\r\n+OK\r\n.\r\n+OK\r\n1 " + b"u" * 71 + b"\r\n.\r\n",
            0x40,
            [5],
        ),
        # APOP with a name containing spaces: accepted, but Apop() refuses it.
        ("pop3_server", b"APOP a b c4c9334bac560ecc979e58001b3e22fb\r\nQUIT\r\n", 0x00, [3]),
    ],
)
def test_regression_mail_inputs(name: str, stream: bytes, flags: int, sizes: list[int]) -> None:
    _load(name).check_one_input(_mail_input(name, stream, flags, sizes))
