"""Run every fuzz harness in fuzz/ for a bounded time with atheris.

A harness is a ``fuzz/NAME.py`` with a seed corpus in ``fuzz/seeds/NAME/``
(http_server, http_client, smtp_server, smtp_client, pop3_server,
pop3_client; ``fuzz/_harness.py`` is shared code, not a harness).
Each run copies the seeds into a fresh work corpus (new inputs go there,
never into fuzz/seeds), fuzzes for ``--seconds``, and reports the number of
executions.  The exit status is non-zero if any harness crashed; the
crashing input's path and the command that replays it are printed.

    python fuzz/run.py                        # every harness, 30 s each
    python fuzz/run.py --seconds 300 http_server
    python fuzz/run.py --keep-going           # collect distinct failures
    python fuzz/run.py -- -max_len=8192       # extra libFuzzer flags
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

FUZZ_DIR = os.path.dirname(os.path.abspath(__file__))
SEEDS_DIR = os.path.join(FUZZ_DIR, "seeds")
_FAILURE_PREFIXES = ("crash-", "timeout-", "oom-", "leak-")
_EXECS_RE = re.compile(rb"stat::number_of_executed_units:\s*(\d+)")
_DONE_RE = re.compile(rb"Done (\d+) runs in")


def discover() -> list[str]:
    """Names of the harnesses: fuzz/NAME.py files that have fuzz/seeds/NAME/."""
    names = []
    for entry in sorted(os.listdir(FUZZ_DIR)):
        name, ext = os.path.splitext(entry)
        if ext == ".py" and os.path.isdir(os.path.join(SEEDS_DIR, name)):
            names.append(name)
    return names


class Result:
    def __init__(self, name: str) -> None:
        self.name = name
        self.executions = 0
        self.failures: list[str] = []
        self.collected: list[str] = []
        self.returncode = 0
        self.log = ""
        self.seconds = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures and not self.collected and self.returncode == 0


def run_harness(
    name: str, seconds: int, workdir: str, keep_going: bool, extra: list[str]
) -> Result:
    result = Result(name)
    base = os.path.join(workdir, name)
    corpus = os.path.join(base, "corpus")
    artifacts = os.path.join(base, "artifacts")
    collected = os.path.join(base, "collected")
    shutil.copytree(os.path.join(SEEDS_DIR, name), corpus)
    os.makedirs(artifacts)
    result.log = os.path.join(base, "fuzz.log")
    cmd = [
        sys.executable,
        os.path.join(FUZZ_DIR, name + ".py"),
        corpus,
        f"-max_total_time={seconds}",
        f"-artifact_prefix={artifacts}{os.sep}",
        "-timeout=20",  # seconds per input: a hang is a crash too
        "-rss_limit_mb=2048",
        "-max_len=4096",
        "-print_final_stats=1",
        *extra,
    ]
    env = dict(os.environ)
    if keep_going:
        env["PROTOMATA_FUZZ_COLLECT"] = collected
    started = time.monotonic()
    with open(result.log, "wb") as log:
        proc = subprocess.run(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=base, check=False
        )
    result.seconds = time.monotonic() - started
    result.returncode = proc.returncode
    with open(result.log, "rb") as f:
        output = f.read()
    found = _EXECS_RE.findall(output) or _DONE_RE.findall(output)
    if found:
        result.executions = int(found[-1])
    result.failures = sorted(
        os.path.join(artifacts, entry)
        for entry in os.listdir(artifacts)
        if entry.startswith(_FAILURE_PREFIXES)
    )
    if os.path.isdir(collected):
        result.collected = sorted(os.path.join(collected, d) for d in os.listdir(collected))
    return result


def _tail(path: str, lines: int = 25) -> str:
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def report(result: Result) -> None:
    harness = os.path.relpath(os.path.join(FUZZ_DIR, result.name + ".py"))
    status = "ok" if result.ok else "FAILED"
    print(
        f"{result.name}: {status}, {result.executions} executions "
        f"in {result.seconds:.0f} s (log: {result.log})"
    )
    for path in result.failures:
        print(f"  crashing input: {path}")
        print(f"  reproduce: python {harness} --replay {path}")
    for folder in result.collected:
        with open(os.path.join(folder, "SIGNATURE")) as f:
            signature = f.readline().strip()
        inputs = sorted(e for e in os.listdir(folder) if e.startswith("input-"))
        print(f"  failure: {signature}")
        for entry in inputs:
            print(f"    input: {os.path.join(folder, entry)}")
    if result.returncode != 0 and not result.failures:
        print(f"  libFuzzer exited with status {result.returncode}; last lines of the log:")
        print(_tail(result.log))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("harnesses", nargs="*", help="harness names (default: all)")
    parser.add_argument("--seconds", type=int, default=30, help="fuzzing time per harness")
    parser.add_argument(
        "--workdir", help="keep work corpora, logs and crashes here (default: a temp dir)"
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="save failures (a few per distinct signature) and keep fuzzing",
    )
    parser.add_argument("libfuzzer_args", nargs=argparse.REMAINDER, help="after --: for libFuzzer")
    args = parser.parse_args(argv)
    extra = [a for a in args.libfuzzer_args if a != "--"]
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed (pip install atheris)", file=sys.stderr)
        return 2
    available = discover()
    names = args.harnesses or available
    unknown = sorted(set(names) - set(available))
    if unknown:
        parser.error(f"unknown harness(es) {unknown}; available: {available}")
    workdir = args.workdir or tempfile.mkdtemp(prefix="protomata-fuzz-")
    os.makedirs(workdir, exist_ok=True)
    results = []
    for name in names:
        print(f"fuzzing {name} for {args.seconds} s ...", flush=True)
        result = run_harness(name, args.seconds, workdir, args.keep_going, extra)
        report(result)
        results.append(result)
    failed = [r for r in results if not r.ok]
    total = sum(r.executions for r in results)
    print(f"total: {total} executions, {len(failed)} of {len(results)} harnesses failed")
    if not failed and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    elif failed:
        print(f"work directory kept: {workdir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
