"""Mail throughput: protomata's SMTP sink against aiosmtpd, into a durable Maildir.

    python bench/smtp_bench.py [--quick] [--rounds 5] [--dir DIR] [--skip-servers|--skip-pure]

Servers, each a subprocess on 127.0.0.1 with its own Maildir:

- ``protomata serve smtp --io asyncio --maildir D`` (message file and
  ``new/`` fsynced before the 250);
- aiosmtpd with a handler that writes the same kind of Maildir with the same
  fsyncs (bench/aiosmtpd_maildir.py): once in ``handle_DATA`` on the event
  loop, as a typical handler does, and once offloaded with
  ``run_in_executor``;
- a null server (this file, ``--null-server``) that answers every command
  and discards the messages: the ceiling of the load client.

One load client (asyncio streams, in this process) opens 8 connections and
sends 100 messages of 10 KB on each: EHLO once, then MAIL, RCPT and DATA per
message.  It runs every round twice: once in lockstep (each command waits
for its reply), and once as Postfix and Exim send mail, pipelining MAIL,
RCPT and DATA in one write when the server offers PIPELINING (RFC 2920).
aiosmtpd does not offer it, so it is driven in lockstep both times;
``--pipelining off`` or ``on`` runs one of the two.  Rounds alternate
between the servers; the table gives the median messages/s of the rounds
and the ratios.  After every round each
acknowledged message must be in ``new/`` with the right content, or the
benchmark stops: a server that loses mail has no score.

Then the pure machine alone: DATA parsing (a server-side
``protomata.smtp.Connection`` fed a 10 KB and a 20 MB message in 64 KiB
pieces through EndOfData) and client-side dot-stuffing, in MB/s.

Needs aiosmtpd (pip install aiosmtpd; the ``bench`` extra).  The Maildirs go
under --dir (default ~/.cache), which should be a real disk: fsync on tmpfs
costs nothing, and that is not the case measured.  Avoid directories where
many files are created and deleted (/tmp under test suites): ext4 then spends
up to a millisecond of CPU per file creation skipping recently freed inodes,
for both servers alike.  Each server also reports its CPU time per message,
a steadier figure than messages/s on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
PY = sys.executable
ID_RE = re.compile(rb"X-Bench-Id: (\d+)-(\d+)-(\d+)\n")


# -- the messages -------------------------------------------------------------


def make_message(size: int, ident: str) -> bytes:
    """A plain-text message of about *size* bytes (CRLF), some lines starting with a dot."""
    head = (
        "From: Load Client <load@bench.example>\r\n"
        "To: Sink <sink@bench.example>\r\n"
        f"Subject: benchmark message {ident}\r\n"
        "Date: Sat, 21 Nov 2026 12:00:00 +0000\r\n"
        f"Message-ID: <{ident}@bench.example>\r\n"
        f"X-Bench-Id: {ident}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
    ).encode()
    return head + _body(size - len(head))


@functools.lru_cache
def _body(size: int) -> bytes:
    lines = []
    total = n = 0
    while total < size:
        n += 1
        if n % 25 == 0:
            line = b".. a line that starts with dots, stuffed on the wire\r\n"
        else:
            line = b"The quick brown fox jumps over the lazy dog; line %06d of the body.\r\n" % n
        lines.append(line)
        total += len(line)
    return b"".join(lines)


def stuffed(message: bytes) -> bytes:
    """*message* (CRLF lines) dot-stuffed and terminated, as sent after 354."""
    return (b"\r\n" + message).replace(b"\r\n.", b"\r\n..")[2:] + b".\r\n"


def message_id(conn: int, seq: int, round_: int) -> str:
    return f"{round_}-{conn}-{seq}"


# -- the load client ----------------------------------------------------------


class LoadError(Exception):
    """The server answered something unexpected."""


async def _reply(reader: asyncio.StreamReader) -> bytes:
    """The last line of the next reply (the whole reply is read)."""
    return (await _full_reply(reader))[-1]


async def _full_reply(reader: asyncio.StreamReader) -> list[bytes]:
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise LoadError("connection closed while waiting for a reply")
        lines.append(line)
        if line[3:4] != b"-":
            return lines


async def _command(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, expect: bytes
) -> None:
    writer.write(data)
    line = await _reply(reader)
    if not line.startswith(expect):
        raise LoadError(f"{data[:20]!r} answered {line!r}")


async def _session(
    port: int,
    conn: int,
    messages: int,
    size: int,
    round_: int,
    acked: list[str],
    pipelining: bool = False,
) -> None:
    """One connection's messages; with *pipelining*, MAIL, RCPT and DATA go in
    one write when the server offers PIPELINING (RFC 2920), as Postfix and
    Exim send them."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        if not (await _reply(reader)).startswith(b"220"):
            raise LoadError("no 220 greeting")
        writer.write(b"EHLO load.bench.example\r\n")
        ehlo = await _full_reply(reader)
        if not ehlo[-1].startswith(b"250"):
            raise LoadError(f"EHLO answered {ehlo[-1]!r}")
        pipelining = pipelining and any(line[4:].strip() == b"PIPELINING" for line in ehlo)
        mail = b"MAIL FROM:<load@bench.example>\r\n"
        rcpt = b"RCPT TO:<sink@bench.example>\r\n"
        for seq in range(messages):
            ident = message_id(conn, seq, round_)
            body = stuffed(make_message(size, ident))
            if pipelining:
                # One write for the three commands; their replies in order.
                writer.write(mail + rcpt + b"DATA\r\n")
                for expect in (b"250", b"250", b"354"):
                    line = await _reply(reader)
                    if not line.startswith(expect):
                        raise LoadError(f"pipelined command answered {line!r}")
            else:
                await _command(reader, writer, mail, b"250")
                await _command(reader, writer, rcpt, b"250")
                await _command(reader, writer, b"DATA\r\n", b"354")
            await _command(reader, writer, body, b"250")
            acked.append(ident)
        await _command(reader, writer, b"QUIT\r\n", b"221")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _load(
    port: int,
    connections: int,
    messages: int,
    size: int,
    round_: int,
    acked: list[str],
    pipelining: bool,
) -> float:
    start = time.perf_counter()
    await asyncio.gather(
        *(_session(port, c, messages, size, round_, acked, pipelining) for c in range(connections))
    )
    return time.perf_counter() - start


def load(
    port: int,
    connections: int,
    messages: int,
    size: int,
    round_: int,
    timeout: float = 300,
    pipelining: bool = False,
) -> tuple[float, list[str]]:
    """Run the load once; (messages/s, ids of the acknowledged messages)."""
    acked: list[str] = []
    elapsed = asyncio.run(
        asyncio.wait_for(
            _load(port, connections, messages, size, round_, acked, pipelining), timeout
        )
    )
    return len(acked) / elapsed, acked


# -- checking the Maildir -----------------------------------------------------


def verify(maildir: Path, acked: list[str], size: int, seen: set[str]) -> None:
    """Every acknowledged message is in new/ with its content.

    *seen* holds the file names checked in earlier rounds (updated here).
    Files stay until the end: deleting them between rounds would make the
    next round's file creations slower (ext4 skips recently freed inodes
    when it allocates one, scanning past them).
    """
    found: dict[str, int] = {}
    new = maildir / "new"
    for path in new.iterdir():
        if path.name in seen:
            continue
        seen.add(path.name)
        data = path.read_bytes()
        match = ID_RE.search(data)
        if match is None:
            raise LoadError(f"{path}: no X-Bench-Id header")
        ident = b"-".join(match.groups()).decode()
        expected = make_message(size, ident).replace(b"\r\n", b"\n")
        if not data.endswith(expected):
            raise LoadError(f"{path}: content differs from the message sent")
        if ident in found:
            raise LoadError(f"{path}: message {ident} stored twice")
        found[ident] = len(data)
    missing = set(acked) - set(found)
    if missing:
        raise LoadError(f"{len(missing)} acknowledged messages missing from {new}")
    leftovers = list((maildir / "tmp").iterdir())
    if leftovers:
        raise LoadError(f"{len(leftovers)} files left in {maildir / 'tmp'}")


def filesystem_of(path: Path) -> str:
    """``type (device) mounted on M`` for the filesystem holding *path*."""
    real = os.path.realpath(path)
    best = ("?", "?", "/")
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                device, mount, kind = line.split()[:3]
                inside = real == mount or real.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best[2]):
                    best = (kind, device, mount)
    except OSError:
        return "unknown"
    return f"{best[0]} ({best[1]}) mounted on {best[2]}"


# -- the servers ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    """The running child processes of *pid* (Linux; else none)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


class Server:
    """A server subprocess, ready once it printed its first line."""

    def __init__(self, name: str, command: list[str], port: int, maildir: Path | None) -> None:
        self.name = name
        self.port = port
        self.maildir = maildir
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115  # closed in stop()
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
        )
        self.process = subprocess.Popen(
            command, cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=self._errors
        )
        ready = threading.Event()
        first: list[bytes] = []

        def drain() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                if not first:
                    first.append(line)
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(30) or not first:
            message = self.errors()
            self.stop()
            raise RuntimeError(f"{name} did not start: {message}")

    def cpu_seconds(self) -> float:
        """User plus system CPU time so far of the server process and of its
        child processes (protomata's delivery process); Linux, else 0."""
        total = 0
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # utime, stime, and what the process's reaped children used
            total += sum(int(field) for field in fields[11:15])
        return total / os.sysconf("SC_CLK_TCK")

    def errors(self) -> str:
        self._errors.seek(0)
        return self._errors.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._errors.close()


def start_servers(root: Path, names: list[str]) -> dict[str, Server]:
    servers: dict[str, Server] = {}
    for name in names:
        port = free_port()
        maildir = root / name.replace(" ", "-")
        if name == "null":
            command = [PY, str(HERE / "smtp_bench.py"), "--null-server", str(port)]
            maildir_arg: Path | None = None
        elif name == "protomata":
            command = [
                PY, "-m", "protomata", "serve", "smtp", "--io", "asyncio",
                "--host", HOST, "--port", str(port), "--maildir", str(maildir),
            ]  # fmt: skip
            maildir_arg = maildir
        else:
            command = [
                PY, str(HERE / "aiosmtpd_maildir.py"), "--host", HOST, "--port", str(port),
                "--maildir", str(maildir),
            ]  # fmt: skip
            if name == "aiosmtpd offload":
                command.append("--offload")
            maildir_arg = maildir
        try:
            servers[name] = Server(name, command, port, maildir_arg)
        except RuntimeError:
            for server in servers.values():
                server.stop()
            raise
    return servers


_PIPELINED = ", pipelining client"


def bench_servers(
    root: Path, rounds: int, connections: int, messages: int, size: int, modes: list[bool]
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Messages/s and server CPU ms per message of each round, by server name
    (+ ", pipelining client" for the runs with a client that pipelines when
    offered PIPELINING)."""
    names = ["null", "protomata", "aiosmtpd", "aiosmtpd offload"]
    if not _importable("aiosmtpd"):
        print("aiosmtpd is not installed (pip install aiosmtpd): protomata and null only")
        names = names[:2]
    servers = start_servers(root, names)
    labels = [name + (_PIPELINED if mode else "") for mode in modes for name in servers]
    rates: dict[str, list[float]] = {label: [] for label in labels}
    cpu_ms: dict[str, list[float]] = {label: [] for label in labels}
    seen: dict[str, set[str]] = {name: set() for name in servers}
    try:
        for server in servers.values():  # warm-up: imports, first files, page cache
            _, acked = load(server.port, 2, max(5, messages // 10), size, 0)
            if server.maildir is not None:
                verify(server.maildir, acked, size, seen[server.name])
        for round_ in range(1, rounds + 1):
            for mode in modes:
                suffix = _PIPELINED if mode else ""
                tag = round_ + 1000 * mode  # message ids differ between the two runs
                line = []
                for name, server in servers.items():
                    cpu = server.cpu_seconds()
                    rate, acked = load(
                        server.port, connections, messages, size, tag, pipelining=mode
                    )
                    label = name + suffix
                    cpu_ms[label].append((server.cpu_seconds() - cpu) * 1e3 / max(1, len(acked)))
                    if len(acked) != connections * messages:
                        raise LoadError(f"{name}: only {len(acked)} messages acknowledged")
                    if server.maildir is not None:
                        verify(server.maildir, acked, size, seen[server.name])
                    rates[label].append(rate)
                    line.append(f"{name} {rate:5.0f} ({cpu_ms[label][-1]:.2f} ms CPU/msg)")
                ratios = _ratios({name: rates[name + suffix][-1] for name in servers})
                what = "pipelined" if mode else "lockstep"
                print(
                    f"  round {round_} {what:9}: " + ", ".join(line) + " msgs/s" + ratios,
                    flush=True,
                )
    except BaseException:
        for server in servers.values():
            if server.process.poll() is not None:
                print(f"{server.name} exited: {server.errors()}", file=sys.stderr)
        raise
    finally:
        for server in servers.values():
            server.stop()
    return rates, cpu_ms


def _ratios(rate: dict[str, float]) -> str:
    parts = [
        f"protomata/{peer} {rate['protomata'] / rate[peer]:.2f}x"
        for peer in ("aiosmtpd", "aiosmtpd offload")
        if peer in rate and "protomata" in rate
    ]
    return ("; " + ", ".join(parts)) if parts else ""


def _importable(name: str) -> bool:
    done = subprocess.run([PY, "-c", f"import {name}"], capture_output=True, check=False)
    return done.returncode == 0


# -- the null server ------------------------------------------------------------


class _NullSMTP(asyncio.Protocol):
    """Answers every command, reads DATA to its end, stores nothing."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buf = b""
        self.in_data = False
        transport.write(b"220 null ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        out = []
        while True:
            if self.in_data:
                end = buf.find(b"\r\n.\r\n")
                if end < 0:
                    buf = buf[-4:]
                    break
                buf = buf[end + 5 :]
                self.in_data = False
                out.append(b"250 2.0.0 discarded\r\n")
                continue
            end = buf.find(b"\r\n")
            if end < 0:
                break
            verb = buf[:4].upper()
            buf = buf[end + 2 :]
            if verb == b"DATA":
                self.in_data = True
                buf = b"\r\n" + buf  # the body may be empty: ".\r\n" ends it
                out.append(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                out.append(b"221 bye\r\n")
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            elif verb == b"EHLO":
                out.append(b"250-null\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
            else:
                out.append(b"250 OK\r\n")
        self.buf = buf
        if out:
            self.transport.write(b"".join(out))


def null_server(port: int) -> int:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_NullSMTP, HOST, port)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        print(f"null SMTP server on {HOST}:{port}", flush=True)
        async with server:
            await stop.wait()

    asyncio.run(serve())
    return 0


# -- the pure machine ---------------------------------------------------------------


def data_parse_time(wire: bytes, piece: int = 65536) -> float:
    """Seconds for a server Connection to turn *wire* (a DATA body) into events."""
    from protomata.smtp import SERVER, Connection, Data, DataChunk, EndOfData, Reply

    conn = Connection(SERVER, max_message_size=None)
    conn.send(Reply(220, "bench"))
    for command in (b"EHLO c\r\n", b"MAIL FROM:<a@b>\r\n", b"RCPT TO:<c@d>\r\n", b"DATA\r\n"):
        conn.receive_data(command)
        event = conn.next_event()
        conn.send(Reply(354 if isinstance(event, Data) else 250, "ok"))
    got = 0
    start = time.perf_counter()
    receive, next_event = conn.receive_data, conn.next_event
    for offset in range(0, len(wire), piece):
        receive(wire[offset : offset + piece])
        while True:
            event = next_event()
            if type(event) is DataChunk:
                got += len(event.data)
            else:
                break
        if type(event) is EndOfData:
            break
    elapsed = time.perf_counter() - start
    if type(event) is not EndOfData:
        raise LoadError(f"no EndOfData, last event {event!r}")
    del got
    return elapsed


def stuff_time(message: bytes, piece: int = 65536) -> float:
    """Seconds for the client's dot-stuffer to encode *message* fed in pieces."""
    from protomata._core._textproto import DotStuffer

    start = time.perf_counter()
    stuffer = DotStuffer()
    out = [
        stuffer.feed(message[offset : offset + piece]) for offset in range(0, len(message), piece)
    ]
    out.append(stuffer.finish())
    return time.perf_counter() - start


def replace_time(wire: bytes, times: int) -> float:
    """Seconds per ``bytes.replace`` pass over *wire*: a yardstick for the machine's speed."""
    start = time.perf_counter()
    for _ in range(times):
        wire.replace(b"\r\n..", b"\r\n.")
    return (time.perf_counter() - start) / times


def big_message(size: int) -> bytes:
    """*size* bytes of long lines (up to 998 bytes), with dot lines among them."""
    lines = []
    total = 0
    n = 0
    while total < size:
        n += 1
        if n % 7 == 0:
            line = b"." * (n % 5 + 1) + b" dotted line %d\r\n" % n
        else:
            width = 60 + (n * 131) % 938
            line = (b"%08d " % n + b"long line of text " * 60)[:width] + b"\r\n"
        lines.append(line)
        total += len(line)
    return b"".join(lines)


def mean_time(fn: Callable[[bytes], float], data: bytes, times: int) -> float:
    """The mean of *times* calls of *fn* (which times itself) on *data*."""
    return sum(fn(data) for _ in range(times)) / times


def bench_pure(quick: bool) -> None:
    small = make_message(10 * 1024, "0-0-0")
    big = big_message((1 if quick else 20) * 1024 * 1024)
    rounds = 2 if quick else 7
    repeat = 20 if quick else 500
    print("\npure machine, 64 KiB pieces (best of rounds):")
    for label, message, times in (
        ("10 KB message", small, repeat),
        (f"{len(big) >> 20} MB message", big, 1),
    ):
        wire = stuffed(message)
        parse = min(mean_time(data_parse_time, wire, times) for _ in range(rounds))
        stuff = min(mean_time(stuff_time, message, times) for _ in range(rounds))
        copy = min(replace_time(wire, times) for _ in range(rounds))
        print(
            f"  {label:16} DATA parsing {len(wire) / parse / 1e6:8.1f} MB/s"
            f"   dot-stuffing {len(message) / stuff / 1e6:8.1f} MB/s"
            f"   (yardstick: one bytes.replace {len(wire) / copy / 1e6:8.1f} MB/s)"
        )


# -- main ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small, fast run (smoke test)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per server (median counts)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--messages", type=int, default=100, help="messages per connection")
    parser.add_argument("--size", type=int, default=10 * 1024, help="message size in bytes")
    parser.add_argument(
        "--dir",
        help="where the Maildirs go (default: ~/.cache; avoid /tmp, where test suites "
        "churn files and make every file creation slower)",
    )
    parser.add_argument(
        "--pipelining",
        choices=("off", "on", "both"),
        default="both",
        help="whether the load client pipelines when offered PIPELINING (default: a run of each)",
    )
    parser.add_argument("--skip-servers", action="store_true", help="only the pure machine")
    parser.add_argument("--skip-pure", action="store_true", help="only the servers")
    parser.add_argument("--null-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args, _unknown = parser.parse_known_args(argv)
    if args.null_server is not None:
        return null_server(args.null_server)
    if args.quick:
        args.rounds, args.connections, args.messages = 1, 2, 10
    if not args.skip_servers:
        base = Path(args.dir) if args.dir else Path.home() / ".cache"
        base.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="protomata-smtp-bench-", dir=base))
        try:
            print(
                f"SMTP into a fsynced Maildir: {args.connections} connections x "
                f"{args.messages} messages x {args.size} bytes, {args.rounds} rounds"
            )
            print(f"Maildirs under {root}: {filesystem_of(root)}")
            modes = {"off": [False], "on": [True], "both": [False, True]}[args.pipelining]
            rates, cpu_ms = bench_servers(
                root, args.rounds, args.connections, args.messages, args.size, modes
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)
        median = {name: statistics.median(values) for name, values in rates.items()}
        print(f"\n{'server':32}{'median msgs/s':>14}{'CPU ms/msg':>12}")
        for name, rate in median.items():
            print(f"{name:32}{rate:14.0f}{statistics.median(cpu_ms[name]):12.2f}")
        for suffix in ("", _PIPELINED):
            if "protomata" + suffix not in median:
                continue
            for peer in ("aiosmtpd", "aiosmtpd offload"):
                if peer + suffix in median:
                    ratio = median["protomata" + suffix] / median[peer + suffix]
                    note = ""
                    if peer == "aiosmtpd":  # the target is against the usual handler
                        note = f"  ({'meets' if ratio >= 2 else 'misses'} the >= 2x target)"
                    print(f"protomata / {peer + suffix:29} {ratio:5.2f}x{note}")
            if "null" + suffix in median:
                print(f"load client ceiling (null server{suffix}): {median['null' + suffix]:.0f}")
    if not args.skip_pure:
        bench_pure(args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
