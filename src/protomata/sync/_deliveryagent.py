"""The delivery process: Maildir deliveries in a child process.

Theory of operation
-------------------
An async server that delivers in worker threads pays for it in GIL
traffic, not in disk time.  Each delivery makes five system calls
(create, write, fsync, rename, fsync), and a worker thread releases the
GIL for each one and wants it back when the call returns.  The event
loop's thread also releases the GIL on every system call it makes (each
send and recv), and a worker waiting for the GIL takes it then.  So the
loop keeps losing the GIL, and every time it must wait for a wake-up to
get it back.  In the SMTP benchmark a ``send`` of a three-line reply took
over 50 microseconds on average, nearly all of it waiting for the GIL
(docs/performance.rst).

The delivery process, run as ``python -m protomata.sync._deliveryagent``,
does that file work in its own threads, under its own GIL.  It reads jobs
from its standard input and writes one result per job to its standard
output.  The server's loop only writes a job and reads a result, both
through non-blocking pipes.  This module holds the wire format and the
process's main function; the clients are
:mod:`protomata.asyncio._deliveryagent` and
:mod:`protomata.trio._deliveryagent`.

Wire format (integers little-endian):

* a job: ``u32`` job id, ``u32`` length, then the file's content;
* a result: ``u32`` job id, ``u8`` status (0 delivered, 1 failed),
  ``u32`` length, then UTF-8 text: the new file's path, or the error.

Before any job, the process sends a result with job id 0: delivered once
the Maildir is open, or failed, with the reason, after which it exits.

The process ignores SIGINT and SIGTERM.  A Ctrl-C reaches the whole
process group, and the server lets transactions in flight finish before
it stops.  The process ends when its standard input ends, after
finishing the jobs it was given; that happens when the server closes the
pipe or dies.  A job is answered only after :meth:`Maildir.deliver` has
returned, so a message the server acknowledged is on disk whatever
happens to either process afterwards.
"""

from __future__ import annotations

import abc
import contextlib
import itertools
import os
import queue
import signal
import struct
import sys
import threading
from typing import Any

from ._maildir import Maildir

__all__ = [
    "AgentClient",
    "AgentError",
    "AgentUnavailable",
    "JobReader",
    "ResultReader",
    "agent_command",
    "agent_environment",
    "encode_job",
    "encode_result",
    "main",
]

_JOB_HEAD = struct.Struct("<II")
_RESULT_HEAD = struct.Struct("<IBI")
#: the longest result text accepted (a path or an error message)
MAX_TEXT = 64 * 1024
#: the job id of the first result, which says whether the Maildir is open
READY = 0
# One read's worth of jobs.  Below glibc's mmap threshold, so a read is a
# heap block, not a fresh mapping that the kernel must zero and unmap.
_READ_SIZE = 64 * 1024
_USAGE = "python -m protomata.sync._deliveryagent MAILDIR HOSTNAME THREADS"


class AgentError(OSError):
    """The delivery process broke the wire format (or could not start)."""


class AgentUnavailable(AgentError):
    """The delivery process could not be started; nothing was sent to it."""


def encode_job(job_id: int, content: bytes) -> bytes:
    """One job frame."""
    return _JOB_HEAD.pack(job_id, len(content)) + content


def encode_result(job_id: int, delivered: bool, text: str) -> bytes:
    """One result frame (*text* is cut to :data:`MAX_TEXT` bytes)."""
    data = text.encode("utf-8", "replace")[:MAX_TEXT]
    return _RESULT_HEAD.pack(job_id, 0 if delivered else 1, len(data)) + data


class ResultReader:
    """Splits the delivery process's output into ``(job id, delivered, text)``."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray) -> list[tuple[int, bool, str]]:
        """The results completed by *data*; :class:`AgentError` on a bad frame."""
        buffer = self._buffer
        buffer += data
        results: list[tuple[int, bool, str]] = []
        head = _RESULT_HEAD.size
        pos = 0
        while len(buffer) - pos >= head:
            job_id, status, length = _RESULT_HEAD.unpack_from(buffer, pos)
            if status > 1 or length > MAX_TEXT:
                raise AgentError("the delivery process sent a malformed result")
            end = pos + head + length
            if len(buffer) < end:
                break
            text = bytes(buffer[pos + head : end]).decode("utf-8", "replace")
            results.append((job_id, status == 0, text))
            pos = end
        del buffer[:pos]
        return results


class JobReader:
    """Splits the process's input into ``(job id, content)``."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The jobs completed by *data*."""
        buffer = self._buffer
        buffer += data
        jobs: list[tuple[int, bytes]] = []
        head = _JOB_HEAD.size
        pos = 0
        while len(buffer) - pos >= head:
            job_id, length = _JOB_HEAD.unpack_from(buffer, pos)
            end = pos + head + length
            if len(buffer) < end:
                break
            jobs.append((job_id, bytes(buffer[pos + head : end])))
            pos = end
        del buffer[:pos]
        return jobs


#: how long a started process may take to open the Maildir and say so (a
#: ``sys.executable`` that is not a Python interpreter may never answer)
START_TIMEOUT = 10.0
#: the most a client reads from the process's output at a time (results
#: are a few dozen bytes; bigger reads cost fresh mappings, see main())
RESULT_READ_SIZE = 16 * 1024


class AgentClient(abc.ABC):
    """What the clients of the process (one per event loop) have in common.

    :param threads: the process's delivery threads (by default what
        :class:`concurrent.futures.ThreadPoolExecutor` would use).
    """

    def __init__(self, path: str, hostname: str, threads: int | None = None) -> None:
        self.path = path
        self.hostname = hostname
        self.threads = threads if threads is not None else min(32, (os.cpu_count() or 1) + 4)
        #: job id -> what wakes the job's caller (the adapter's kind)
        self._pending: dict[int, Any] = {}
        self._ids = itertools.count(READY + 1)
        self._closed = False

    @property
    @abc.abstractmethod
    def pid(self) -> int | None:
        """The process id of the delivery process, while it is in use."""

    @property
    def running(self) -> bool:
        """Whether a started process is there to take jobs."""
        return self.pid is not None

    @property
    def pending(self) -> int:
        """Jobs sent and not answered yet."""
        return sum(1 for job_id in self._pending if job_id != READY)

    @abc.abstractmethod
    async def start(self) -> None:
        """Start the process and wait until it has opened the Maildir.

        Raises :class:`AgentUnavailable` when it cannot (no usable Python,
        an event loop without subprocess support, a Maildir it cannot open,
        no answer within :data:`START_TIMEOUT`).
        """

    @abc.abstractmethod
    async def deliver(self, content: bytes) -> str:
        """Deliver *content*; the path of the new file in ``new/``.

        The process is started again first if it died.
        :class:`AgentUnavailable` if no process could be started (nothing
        was sent); :class:`OSError` if the delivery failed or the process
        died before it answered.
        """

    @abc.abstractmethod
    async def close(self, timeout: float = 30.0) -> None:
        """End the process once it has finished its jobs (killed after *timeout* s)."""

    def command(self) -> list[str]:
        """The command line that starts the process."""
        return agent_command(self.path, self.hostname, self.threads)

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {self.path!r} {state}, {self.pending} pending>"


def agent_command(path: str, hostname: str, threads: int) -> list[str]:
    """The command line that starts a delivery process for the Maildir *path*."""
    return [sys.executable, "-m", "protomata.sync._deliveryagent", path, hostname, str(threads)]


def agent_environment() -> dict[str, str]:
    """The process's environment: this one, with this protomata importable first."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main(argv: list[str] | None = None) -> int:
    """``MAILDIR HOSTNAME THREADS``: deliver the jobs read from standard input."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print(
            "usage: python -m protomata.sync._deliveryagent MAILDIR HOSTNAME THREADS",
            file=sys.stderr,
        )
        return 2
    path, hostname, count = args[0], args[1], int(args[2])
    for name in ("SIGINT", "SIGTERM"):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.SIG_IGN)
    stdin, stdout = 0, 1
    try:
        maildir = Maildir(path, hostname, create=False)
    except OSError as exc:
        _write_all(stdout, encode_result(READY, False, f"{type(exc).__name__}: {exc}"))
        return 1
    _write_all(stdout, encode_result(READY, True, maildir.path))
    jobs: queue.SimpleQueue[tuple[int, bytes] | None] = queue.SimpleQueue()
    output = threading.Lock()
    parent_gone = threading.Event()

    def work() -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            job_id, content = job
            try:
                delivered, text = True, maildir.deliver(content)
            except Exception as exc:  # reported to the server, which answers 451
                delivered, text = False, f"{type(exc).__name__}: {exc}"
            del job, content
            frame = encode_result(job_id, delivered, text)
            with output:
                if parent_gone.is_set():
                    continue
                try:
                    _write_all(stdout, frame)
                except OSError:  # the server is gone: finish the jobs, say nothing
                    parent_gone.set()

    workers = [threading.Thread(target=work, daemon=True) for _ in range(max(1, count))]
    for worker in workers:
        worker.start()
    reader = JobReader()
    with contextlib.suppress(OSError):
        while True:
            data = os.read(stdin, _READ_SIZE)
            if not data:
                break
            for job in reader.feed(data):
                jobs.put(job)
    for _ in workers:
        jobs.put(None)
    for worker in workers:
        worker.join()
    maildir.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
