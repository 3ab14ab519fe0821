"""Maildir delivery: durable, in order, safe from many threads; cheap trace headers."""

from __future__ import annotations

import os
import stat
import sys
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protomata.smtp._maildir import received_header
from protomata.smtp._server import Envelope
from protomata.sync import _maildir, _mailservice
from protomata.sync._maildir import Maildir
from protomata.sync._smtpserver import SMTPServer

TIMEOUT = 10.0


def _files(path: Path) -> list[Path]:
    return sorted(path.iterdir())


def test_deliver_writes_the_exact_bytes_and_leaves_tmp_empty(tmp_path: Path) -> None:
    maildir = Maildir(tmp_path / "md", "host.test")
    content = b"Subject: x\n\n" + bytes(range(256)) * 300
    path = maildir.deliver(content)
    assert Path(path).parent == tmp_path / "md" / "new"
    assert Path(path).read_bytes() == content
    assert _files(tmp_path / "md" / "tmp") == []
    assert Path(path).name.endswith(".host.test")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_each_delivery_fsyncs_its_file_then_renames_then_fsyncs_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maildir = Maildir(tmp_path / "md", "host.test")
    steps: list[str] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        real_fsync(fd)
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        steps.append(f"fsync {kind} {os.readlink(f'/proc/self/fd/{fd}')}")

    def rename(src: str, dst: str) -> None:
        real_rename(src, dst)
        steps.append(f"rename {src} {dst}")

    monkeypatch.setattr(_maildir.os, "fsync", fsync)
    monkeypatch.setattr(_maildir.os, "rename", rename)
    path = maildir.deliver(b"durable\n")
    tmp = os.path.join(maildir.path, "tmp", Path(path).name)
    assert steps == [
        f"fsync file {tmp}",
        f"rename {tmp} {path}",
        f"fsync dir {os.path.join(maildir.path, 'new')}",
    ]


def test_concurrent_deliveries_all_land(tmp_path: Path) -> None:
    maildir = Maildir(tmp_path / "md", "host.test")
    messages = [b"message %d\n" % i * (i + 1) for i in range(48)]
    with ThreadPoolExecutor(16) as pool:
        paths = list(pool.map(maildir.deliver, messages, timeout=TIMEOUT))
    assert len(set(paths)) == len(messages)
    for path, content in zip(paths, messages, strict=True):
        assert Path(path).read_bytes() == content
    assert len(_files(tmp_path / "md" / "new")) == len(messages)
    assert _files(tmp_path / "md" / "tmp") == []


def test_a_failed_file_fsync_removes_the_tmp_file_and_delivers_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maildir = Maildir(tmp_path / "md")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_maildir.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        maildir.deliver(b"lost?\n")
    assert _files(tmp_path / "md" / "tmp") == []
    assert _files(tmp_path / "md" / "new") == []


def test_a_failed_directory_fsync_is_reported_to_the_deliverer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maildir = Maildir(tmp_path / "md")
    real_fsync = os.fsync

    def broken(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(5, "I/O error")
        real_fsync(fd)

    monkeypatch.setattr(_maildir.os, "fsync", broken)
    with pytest.raises(OSError, match="I/O error"):
        maildir.deliver(b"not acknowledged\n")
    assert _files(tmp_path / "md" / "tmp") == []


def test_a_closed_maildir_refuses_deliveries_and_releases_its_directory(tmp_path: Path) -> None:
    maildir = Maildir(tmp_path / "md")
    fd = maildir._new_fd
    assert fd is not None and stat.S_ISDIR(os.fstat(fd).st_mode)
    maildir.close()
    maildir.close()  # twice is fine
    with pytest.raises(OSError):
        os.fstat(fd)  # closed
    with pytest.raises(ValueError, match="closed"):
        maildir.deliver(b"too late\n")
    assert _files(tmp_path / "md" / "tmp") == [] and _files(tmp_path / "md" / "new") == []


def test_unique_names_across_threads(tmp_path: Path) -> None:
    maildir = Maildir(tmp_path / "md", "h")
    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(lambda _: maildir._unique_name(), range(2000), timeout=TIMEOUT))
    assert len(set(names)) == 2000


@given(st.text(max_size=40))
def test_header_fields_never_carry_control_characters(text: str) -> None:
    env = Envelope((text, 25))
    env.helo = text
    env.esmtp = True
    env.rcpt_tos = [text]
    header = received_header(env, text, "Sat, 21 Nov 2026 12:00:00 +0000")
    body = header.replace("\n\t", " ")
    assert body.endswith("\n") and "\n" not in body[:-1]
    assert not any(ch < " " or ch == "\x7f" for ch in body[:-1])
    expected = "".join(ch if ch >= " " and ch != "\x7f" else "?" for ch in text)
    assert f"for <{expected}>" in body


def test_the_received_date_is_formatted_once_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_800_000_000.25]
    monkeypatch.setattr(_mailservice, "time", SimpleNamespace(time=lambda: clock[0]))
    calls: list[object] = []
    real_formatdate = _mailservice.formatdate

    def counting_formatdate(*args: Any, **kwargs: Any) -> str:
        calls.append(args)
        return real_formatdate(*args, **kwargs)

    monkeypatch.setattr(_mailservice, "formatdate", counting_formatdate)
    sink = object.__new__(SMTPServer)  # no socket: only the date cache is used
    sink._date = (-1, "")
    first = sink._received_date()
    clock[0] += 0.5
    assert sink._received_date() == first
    assert len(calls) == 1
    clock[0] += 1
    second = sink._received_date()
    assert len(calls) == 2
    assert parsedate_to_datetime(first).timestamp() == 1_800_000_000
    assert parsedate_to_datetime(second).timestamp() == 1_800_000_001
