"""Run every benchmark: ``python bench/run.py [--quick]``.

Each benchmark runs protomata and the peer libraries side by side in one
process and prints speed ratios; absolute times vary with the machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asgi_inprocess
import http_bench
import smtp_bench

BENCHMARKS = [http_bench.main, asgi_inprocess.main, smtp_bench.main]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return max(bench(argv) for bench in BENCHMARKS)


if __name__ == "__main__":
    sys.exit(main())
