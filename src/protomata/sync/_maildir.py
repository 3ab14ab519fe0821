"""Maildir storage: the file side of the mail servers and of ``fetch-mail``.

One directory, two uses.  :class:`Maildir` creates the layout and delivers
messages durably (the SMTP sink acknowledges a message only after
:meth:`Maildir.deliver` returned); :class:`MaildirMailbox` is one POP3
session's view of the messages, which deletes only what the session marked,
when it ends with QUIT.  Only file handling lives here: naming, trace
fields and line-end conversions are pure (``protomata.smtp._maildir``,
``protomata.pop3._server``).  The asyncio and trio adapters call these
methods in worker threads.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time

from ..pop3._server import maildir_uid, to_crlf
from ..smtp._maildir import maildir_name

__all__ = ["Maildir", "MaildirMailbox"]


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _write_synced(path: str, content: bytes) -> None:
    """Create *path* (it must not exist), write *content* and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o666)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


class Maildir:
    """A Maildir directory: ``tmp/``, ``new/`` and ``cur/`` under *path*.

    With *create* (the default) missing directories are made; without it a
    missing Maildir raises :class:`FileNotFoundError`.  Deliveries may run
    in several threads at once.  Each fsyncs its own file and ``new/``
    itself: the kernel already merges concurrent fsyncs into one journal
    commit (ext4, xfs), and waiting for one another in Python only added
    wake-up latency in the benchmark (docs/performance.rst).
    """

    def __init__(
        self, path: str | os.PathLike[str], hostname: str | None = None, *, create: bool = True
    ) -> None:
        self.path = os.fspath(path)
        self.hostname = hostname or socket.gethostname()
        for sub in ("tmp", "new", "cur"):
            directory = os.path.join(self.path, sub)
            if create:
                os.makedirs(directory, exist_ok=True)
            elif not os.path.isdir(directory):
                raise FileNotFoundError(f"not a Maildir (no {sub}/): {self.path}")
        self._tmp = os.path.join(self.path, "tmp")
        self._new = os.path.join(self.path, "new")
        self._counter = itertools.count(1)  # next() is atomic under the GIL
        # new/ stays open for its fsyncs: two system calls fewer per message,
        # each of which a worker thread would release the GIL for.
        self._new_fd: int | None = os.open(self._new, os.O_RDONLY | _O_CLOEXEC | _O_DIRECTORY)

    def close(self) -> None:
        """Close the directory handle kept for deliveries (idempotent)."""
        fd, self._new_fd = self._new_fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(AttributeError, OSError):
            self.close()

    def _unique_name(self) -> str:
        return maildir_name(int(time.time()), os.getpid(), next(self._counter), self.hostname)

    def _store(self, content: bytes) -> str:
        """Write *content* to ``tmp/``, fsync it and rename it into ``new/``."""
        name = self._unique_name()
        tmp_path = os.path.join(self._tmp, name)
        new_path = os.path.join(self._new, name)
        try:
            _write_synced(tmp_path, content)
            os.rename(tmp_path, new_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_path)
            raise
        return new_path

    def deliver(self, content: bytes) -> str:
        """Store *content* durably as a new message; return its path in ``new/``.

        Written to ``tmp/``, fsynced, renamed into ``new/``, and ``new/``
        fsynced, all before this returns.
        """
        new_fd = self._new_fd
        if new_fd is None:
            raise ValueError("the Maildir is closed")
        new_path = self._store(content)
        os.fsync(new_fd)
        return new_path


class MaildirMailbox:
    """One POP3 session's view of a :class:`Maildir` (or of a Maildir path)."""

    def __init__(self, maildir: Maildir | str | os.PathLike[str]) -> None:
        self.root = maildir.path if isinstance(maildir, Maildir) else os.fspath(maildir)
        self._paths: dict[str, str] = {}

    def messages(self) -> list[tuple[str, int]]:
        """``(uid, size)`` of each message in ``new/`` and ``cur/``, oldest name first.

        The size is the size on the wire (CRLF line ends).
        """
        found: list[tuple[str, str]] = []
        for sub in ("new", "cur"):
            directory = os.path.join(self.root, sub)
            try:
                names = os.listdir(directory)
            except FileNotFoundError:
                continue
            for name in names:
                if name.startswith("."):
                    continue
                path = os.path.join(directory, name)
                if os.path.isfile(path):
                    found.append((name, path))
        found.sort()
        self._paths.clear()
        listing: list[tuple[str, int]] = []
        for name, path in found:
            uid = maildir_uid(name)
            if uid in self._paths:
                continue  # the same message in new/ and cur/ (a concurrent move)
            try:
                size = len(self._read(path))
            except OSError:
                continue
            self._paths[uid] = path
            listing.append((uid, size))
        return listing

    @staticmethod
    def _read(path: str) -> bytes:
        with open(path, "rb") as file:
            return to_crlf(file.read())

    def read(self, uid: str) -> bytes | None:
        """The message *uid* with CRLF line ends, or None if it vanished."""
        path = self._paths.get(uid)
        if path is None:
            return None
        try:
            return self._read(path)
        except OSError:
            return None

    def delete(self, uids: list[str]) -> bool:
        """Unlink the messages *uids*; False if one of them could not be removed."""
        ok = True
        for uid in uids:
            path = self._paths.pop(uid, None)
            if path is None:
                continue
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass  # already gone: deleted is deleted
            except OSError:
                ok = False
        return ok
