"""HTTP server throughput: protomata against uvicorn, measured with wrk and curl.

    python bench/http_server_bench.py [--duration 10] [--rounds 1] [--skip-static]

Each server runs alone, one process with one worker on 127.0.0.1, serving
the same ASGI hello-world (bench_asgi_app.py, a 13-byte body): protomata
with --io asyncio and --io trio, uvicorn with h11 and with httptools.  After a
warm-up, ``wrk -t1 -c50`` loads it over keep-alive connections; the table
gives requests/s and the ratios protomata/uvicorn (targets: >= 2x the
pure-Python h11 server, >= 0.7x the C httptools one).  Then static files:
``protomata serve http --root`` (each I/O adapter) and ``python -m
http.server`` serve a 100 MB file that curl downloads to /dev/null.

Needs wrk and curl (apt-get install wrk curl) and uvicorn with httptools
(pip install uvicorn httptools).  A missing peer is reported and skipped.
Absolute numbers depend on the machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                response.read()
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start in {timeout} s")


@contextlib.contextmanager
def server_process(command: list[str], url: str, start_timeout: float = 20) -> Iterator[None]:
    """Run *command* (a server) until the block ends; its stderr is shown if it fails."""
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=errors
        )
        try:
            wait_until_serving(url, process, start_timeout)
            yield
        except RuntimeError:
            process.kill()
            process.wait()
            errors.seek(0)
            sys.stderr.write(errors.read().decode(errors="replace")[-2000:])
            raise
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wrk(url: str, seconds: float) -> tuple[float, str]:
    """(requests/s, notes about errors) from one wrk run."""
    done = subprocess.run(
        ["wrk", "-t1", "-c50", f"-d{seconds:g}s", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    match = re.search(r"Requests/sec:\s*([\d.]+)", done.stdout)
    if match is None:
        raise RuntimeError(f"cannot parse wrk output:\n{done.stdout}")
    notes = [
        line.strip()
        for line in done.stdout.splitlines()
        if "Non-2xx" in line or "Socket errors" in line
    ]
    return float(match.group(1)), "; ".join(notes)


FALLBACK = (
    "import asyncio, sys; from bench_asgi_app import app; "
    "from protomata.asyncio import serve_asgi; "
    "asyncio.run(serve_asgi(app, sys.argv[1], int(sys.argv[2]), lifespan='off', access_log=False))"
)


def asgi_servers(port: int) -> dict[str, list[list[str]]]:
    """Each server's name and the commands to try, in order, to start it."""
    cli = [
        PY, "-m", "protomata", "serve", "http", "--host", HOST, "--port", str(port),
        "--app", "bench_asgi_app:app", "--interface", "asgi", "--io", "asyncio",
        "--no-access-log",
    ]  # fmt: skip
    # Without the CLI (or when it fails), serve_asgi directly, lifespan off.
    servers = {
        "protomata asyncio": [cli, [PY, "-c", FALLBACK, HOST, str(port)]],
        "protomata trio": [[*cli[:-2], "trio", "--no-access-log"]],
    }
    if _importable("uvicorn"):
        uvicorn = [
            PY, "-m", "uvicorn", "bench_asgi_app:app", "--host", HOST, "--port", str(port),
            "--workers", "1", "--loop", "asyncio", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        servers["uvicorn h11"] = [[*uvicorn, "--http", "h11"]]
        if _importable("httptools"):
            servers["uvicorn httptools"] = [[*uvicorn, "--http", "httptools"]]
        else:
            print("httptools is not installed: skipping uvicorn --http httptools")
    else:
        print("uvicorn is not installed: skipping the uvicorn servers")
    return servers


def _importable(name: str) -> bool:
    return (
        subprocess.run([PY, "-c", f"import {name}"], capture_output=True, check=False).returncode
        == 0
    )


def bench_asgi(duration: float, rounds: int) -> dict[str, float]:
    port = free_port()
    url = f"http://{HOST}:{port}/"
    servers = asgi_servers(port)
    best = {name: 0.0 for name in servers}
    for round_ in range(rounds):
        for name, commands in servers.items():
            for i, command in enumerate(commands):
                try:
                    with server_process(command, url, start_timeout=10):
                        wrk(url, 2)  # warm-up
                        rate, notes = wrk(url, duration)
                    break
                except RuntimeError as exc:
                    if i + 1 == len(commands):
                        raise
                    print(f"  {name}: {' '.join(command[:6])} ... failed ({exc}); next way")
            best[name] = max(best[name], rate)
            print(f"  round {round_ + 1}: {name:20} {rate:10.0f} req/s {notes}", flush=True)
    print()
    print(f"{'server':24}{'requests/s':>12}")
    for name, rate in best.items():
        print(f"{name:24}{rate:12.0f}")
    for ours in ("protomata asyncio", "protomata trio"):
        for peer, target in (("uvicorn h11", 2.0), ("uvicorn httptools", 0.7)):
            if best.get(ours) and best.get(peer):
                ratio = best[ours] / best[peer]
                verdict = "meets" if ratio >= target else "misses"
                print(f"{ours} / {peer:18} {ratio:5.2f}x  ({verdict} the >= {target}x target)")
    return best


def curl_speed(url: str) -> float:
    done = subprocess.run(
        ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{speed_download}", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(done.stdout)


def bench_static(size_mb: int = 100, tries: int = 3) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "index.html").write_bytes(b"<p>bench</p>")
        with open(Path(root) / "big.bin", "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(size_mb):
                f.write(block)
        port = free_port()
        base = f"http://{HOST}:{port}/"
        serve = [PY, "-m", "protomata", "serve", "http", "--host", HOST, "--port", str(port)]
        servers = {
            f"protomata {io}": [*serve, "--root", root, "--io", io, "--no-access-log"]
            for io in ("sync", "asyncio", "trio")
        }
        servers["python -m http.server"] = [
            PY, "-m", "http.server", "--bind", HOST, "--directory", root, str(port),
        ]  # fmt: skip
        for name, command in servers.items():
            try:
                with server_process(command, base):
                    speed = max(curl_speed(base + "big.bin") for _ in range(tries))
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                print(f"  {name}: failed ({exc})")
                continue
            results[name] = speed
            print(f"  {name:24} {speed / 1e6:9.1f} MB/s", flush=True)
    if "python -m http.server" in results:
        stdlib = results["python -m http.server"]
        for name, speed in results.items():
            if name.startswith("protomata"):
                print(f"{name} / http.server: {speed / stdlib:5.2f}x")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=1, help="runs per server (best counts)")
    parser.add_argument("--skip-static", action="store_true", help="skip the 100 MB download")
    args = parser.parse_args(argv)
    missing = [tool for tool in ("wrk", "curl") if shutil.which(tool) is None]
    if missing:
        print(f"missing {', '.join(missing)}: apt-get install {' '.join(missing)}")
        return 1
    print(f"ASGI hello-world, wrk -t1 -c50 -d{args.duration:g}s, one worker each")
    bench_asgi(args.duration, args.rounds)
    if not args.skip_static:
        print("\nstatic file: 100 MB over loopback with curl (best of 3)")
        bench_static()
    return 0


if __name__ == "__main__":
    sys.exit(main())
