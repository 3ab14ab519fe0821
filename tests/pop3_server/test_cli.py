"""``protomata serve pop3`` as a subprocess (via ``python -m protomata.cli._serve_pop3``)."""

from __future__ import annotations

import argparse
import os
import poplib
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from protomata.cli._serve_pop3 import add_pop3_parser, main

from .test_server import MSG2, make_maildir

MODULE = [sys.executable, "-m", "protomata.cli._serve_pop3"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_pop3_subprocess_stops_on_sigint(tmp_path: Path) -> None:
    maildir = make_maildir(tmp_path / "Maildir")
    port = free_port()
    proc = subprocess.Popen(
        [*MODULE, "--port", str(port), "--maildir", str(maildir), "--user", "bob:pw:x"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline().decode().rstrip("\n")
        assert banner == f"Serving POP3 on 127.0.0.1:{port} (maildir: {maildir})"
        client = poplib.POP3("127.0.0.1", port, timeout=10)
        client.user("bob")
        client.pass_("pw:x")  # everything after the first colon is the password
        assert client.stat()[0] == 3
        _, lines, _ = client.retr(2)
        assert b"\r\n".join(lines) + b"\r\n" == MSG2
        client.dele(2)
        client.quit()
        assert not (maildir / "new" / "1001.M2P1.host").exists()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "a:b", "--tls-cert", "x.pem"], "--tls-cert and --tls-key go together"),
    ],
)
def test_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["--maildir", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_missing_maildir_and_bad_user(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--maildir", str(tmp_path / "nope"), "--user", "a:b"]) == 2
    assert "is not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--maildir", str(tmp_path), "--user", "nocolon"])
    assert exc.value.code == 2
    assert "NAME:PASSWORD" in capsys.readouterr().err


def test_add_pop3_parser_registers_the_subcommand(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    protocols = parser.add_subparsers(dest="protocol", required=True)
    add_pop3_parser(protocols)
    args = parser.parse_args(["pop3", "--maildir", str(tmp_path), "--user", "a:b", "--user", "c:d"])
    assert (args.protocol, args.host, args.port, args.io) == ("pop3", "127.0.0.1", 8110, "sync")
    assert args.user == [("a", "b"), ("c", "d")]
