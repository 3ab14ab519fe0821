"""Plumbing shared by the harnesses: input decoding, chunked feeding, the
chunking-invariance check, failure collection and the command line.

Not a harness itself (there is no ``fuzz/seeds/_harness/``), so ``run.py``
skips it.  It must not import protomata at module level: the harnesses
import protomata inside :func:`instrumented` so atheris can instrument it.

Input layout (the HTTP client harness puts its request methods first)::

    <bytes from the peer> <split sizes, last first> <k> <flags>

Integers come from the end of the input and bytes from the front, as
libFuzzer's ``FuzzedDataProvider`` hands them out.  ``flags`` is the last
byte, ``k`` (0-15) the number of split sizes before it; each size byte
``s`` means a chunk of ``s + 1`` bytes and the stream is fed in chunks
whose sizes cycle through them (``k == 0``: in one piece).
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

try:
    import atheris
except ImportError:  # replay mode works without it
    atheris = None

__all__ = [
    "ReplayDataProvider",
    "Session",
    "check_chunking",
    "decode_input",
    "encode_input",
    "instrumented",
    "main",
    "make_entry_point",
    "provider",
    "replay",
    "split_stream",
]


def fuzzing(module_name: str) -> bool:
    """Whether a harness module named *module_name* runs under atheris now."""
    return module_name == "__main__" and atheris is not None and "--replay" not in sys.argv


def instrumented(module_name: str) -> contextlib.AbstractContextManager[Any]:
    """Wrap the harness's protomata imports: atheris instruments them when fuzzing."""
    if fuzzing(module_name):
        return atheris.instrument_imports(include=["protomata"])
    return contextlib.nullcontext()


class ReplayDataProvider:
    """The part of atheris.FuzzedDataProvider the harnesses use, in pure Python.

    Same semantics as libFuzzer's provider (integers from the end, bytes
    from the front), so a replayed file takes the path the fuzzer took.
    """

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._lo = 0
        self._hi = len(self._data)

    def remaining_bytes(self) -> int:
        return self._hi - self._lo

    def ConsumeBytes(self, count: int) -> bytes:
        count = max(0, min(count, self._hi - self._lo))
        out = self._data[self._lo : self._lo + count]
        self._lo += count
        return out

    def ConsumeIntInRange(self, low: int, high: int) -> int:
        span = high - low
        result = 0
        offset = 0
        while offset < 64 and (span >> offset) > 0 and self._hi > self._lo:
            self._hi -= 1
            result = (result << 8) | self._data[self._hi]
            offset += 8
        if span != (1 << 64) - 1:
            result %= span + 1
        return low + result


def provider(data: bytes) -> Any:
    """atheris's data provider for *data*, or the pure-Python one without atheris."""
    if atheris is not None:
        return atheris.FuzzedDataProvider(data)
    return ReplayDataProvider(data)


def decode_input(data: bytes) -> tuple[int, list[int], bytes]:
    """(flags, split sizes, stream) from a fuzz input."""
    fdp = provider(data)
    flags = fdp.ConsumeIntInRange(0, 255)
    count = fdp.ConsumeIntInRange(0, 15)
    sizes = [fdp.ConsumeIntInRange(1, 256) for _ in range(count)]
    return flags, sizes, fdp.ConsumeBytes(fdp.remaining_bytes())


def encode_input(stream: bytes, flags: int = 0, sizes: Iterable[int] = ()) -> bytes:
    """The fuzz input that :func:`decode_input` turns into (flags, sizes, stream)."""
    sizes = list(sizes)
    if len(sizes) > 15 or not all(1 <= s <= 256 for s in sizes):
        raise ValueError("at most 15 split sizes, each 1..256")
    if not 0 <= flags <= 255:
        raise ValueError("flags is one byte")
    return stream + bytes(s - 1 for s in reversed(sizes)) + bytes([len(sizes), flags])


def split_stream(stream: bytes, sizes: list[int]) -> Iterator[bytes]:
    """*stream* in chunks whose sizes cycle through *sizes* (one piece if empty)."""
    if not sizes:
        yield stream
        return
    pos = 0
    index = 0
    while pos < len(stream):
        size = sizes[index % len(sizes)]
        yield stream[pos : pos + size]
        pos += size
        index += 1


class Session(abc.ABC):
    """A harness's machine driven through one input: subclasses set ``conn``
    and write :meth:`drain` (take events and act on them until more input is
    needed); :meth:`run` feeds the chunks and returns ``transcript``."""

    conn: Any
    transcript: list[tuple[Any, ...]]
    event_budget: int
    max_buffered: int
    stopped = False
    eof = False

    @abc.abstractmethod
    def drain(self) -> None:
        """Take the machine's events and act on them until it needs input."""

    def on_remote_error(self, exc: Exception) -> None:  # noqa: B027 (an optional hook)
        """The machine raised RemoteProtocolError: check what must hold then."""

    def buffered(self) -> int:
        """How many received bytes the machine holds unparsed."""
        return len(self.conn.trailing_data[0])

    def next_event(self) -> Any:
        """The machine's next event, after the checks that hold for every
        machine: a bounded number of events per input, only
        RemoteProtocolError for bad input (handed to :meth:`on_remote_error`,
        then None), and NEED_DATA never after EOF nor with more than
        ``max_buffered`` bytes held."""
        from protomata import NEED_DATA, RemoteProtocolError  # imported (instrumented) by now

        self.event_budget -= 1
        assert self.event_budget > 0, "next_event keeps producing events without input"
        try:
            event = self.conn.next_event()
        except RemoteProtocolError as exc:
            self.on_remote_error(exc)
            return None
        if event is NEED_DATA:
            assert not self.eof, "NEED_DATA after EOF"
            buffered = self.buffered()
            assert buffered <= self.max_buffered, f"{buffered} bytes buffered at NEED_DATA"
        return event

    def start(self) -> None:  # noqa: B027 (an optional hook)
        """Act before any input arrives (a client sends its first request)."""

    def feed(self, chunk: bytes) -> None:
        if self.stopped:
            return
        self.conn.receive_data(chunk)
        self.eof = not chunk
        self.drain()

    def run(self, chunks: Iterable[bytes]) -> list[tuple[Any, ...]]:
        self.start()
        for chunk in chunks:
            if chunk:
                self.feed(chunk)
            if self.stopped:
                break
        self.feed(b"")
        return self.transcript


def check_chunking(
    make_session: Callable[[], Session],
    stream: bytes,
    sizes: list[int],
    comparable: Callable[[list[tuple[Any, ...]]], list[tuple[Any, ...]]] = lambda t: t,
) -> None:
    """Run *stream* split by *sizes*, and (when split) in one piece: the
    *comparable* parts of the two transcripts must be equal."""
    split = make_session().run(split_stream(stream, sizes))
    if sizes:
        whole = make_session().run([stream])
        split, whole = comparable(split), comparable(whole)
        assert split == whole, (
            f"chunking changed the events ({first_difference(split, whole)}):\n"
            f"  split {sizes}: {split!r}\n  in one piece: {whole!r}"
        )


def until_tls(transcript: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The transcript up to its first ``("tls",)`` marker, inclusive.

    Bytes that follow a STARTTLS/STLS command in the same read are discarded
    on purpose (command injection defence), so what comes after the switch
    depends on how the stream was split; only the part before it must not.
    """
    for index, item in enumerate(transcript):
        if item[0] == "tls":
            return transcript[: index + 1]
    return transcript


def first_difference(split: list[tuple[Any, ...]], whole: list[tuple[Any, ...]]) -> str:
    """Where two transcripts part, for assertion messages."""
    for index, (a, b) in enumerate(zip(split, whole, strict=False)):
        if a != b:
            return f"item {index}: {a!r} vs {b!r}"
    return f"{len(split)} vs {len(whole)} items"


#: With PROTOMATA_FUZZ_COLLECT=DIR, failures are saved under DIR (a few per
#: distinct signature) instead of stopping the fuzzer at the first one.
COLLECT_DIR = os.environ.get("PROTOMATA_FUZZ_COLLECT")
_COLLECT_PER_SIGNATURE = 5


def _collect(folder_root: str, data: bytes, exc: BaseException) -> None:
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    first_line = str(exc).split("\n", 1)[0].split(":", 1)[0][:60]
    signature = (
        f"{type(exc).__name__} at {os.path.basename(frame.filename)}:{frame.lineno}: {first_line}"
    )
    key = hashlib.sha1(signature.encode()).hexdigest()[:12]
    folder = os.path.join(folder_root, key)
    os.makedirs(folder, exist_ok=True)
    saved = [name for name in os.listdir(folder) if name.startswith("input-")]
    if not saved:
        with open(os.path.join(folder, "SIGNATURE"), "w") as f:
            f.write(signature + "\n\n" + "".join(traceback.format_exception(exc)))
    if len(saved) < _COLLECT_PER_SIGNATURE:
        name = "input-" + hashlib.sha1(data).hexdigest()
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


def make_entry_point(check: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """The atheris target for *check*: raise, or collect with PROTOMATA_FUZZ_COLLECT."""
    collect_dir = COLLECT_DIR

    def TestOneInput(data: bytes) -> None:
        if collect_dir is None:
            check(data)
            return
        try:
            check(data)
        except Exception as exc:
            _collect(collect_dir, data, exc)

    return TestOneInput


def _input_files(paths: Iterable[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isdir(path):
            for root, _, files in sorted(os.walk(path)):
                for name in sorted(files):
                    yield os.path.join(root, name)
        else:
            yield path


def replay(check: Callable[[bytes], None], paths: Iterable[str]) -> int:
    """Run each input once; print failures; return the number that failed."""
    failures = 0
    count = 0
    for path in _input_files(paths):
        count += 1
        try:
            with open(path, "rb") as f:
                data = f.read()
            check(data)
        except Exception:
            failures += 1
            print(f"FAILED: {path}", file=sys.stderr)
            traceback.print_exc()
    print(f"replayed {count} inputs, {failures} failed", file=sys.stderr)
    return failures


def main(argv: list[str], check: Callable[[bytes], None]) -> int:
    """``--replay FILE_OR_DIR ...`` without atheris, else fuzz with atheris."""
    if "--replay" in argv:
        paths = [a for a in argv[1:] if a != "--replay"]
        return 1 if replay(check, paths) else 0
    if atheris is None:
        print("atheris is not installed; use --replay FILE_OR_DIR ...", file=sys.stderr)
        return 2
    atheris.Setup(argv, make_entry_point(check))
    atheris.Fuzz()
    return 0
