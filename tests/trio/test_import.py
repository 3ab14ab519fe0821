"""protomata.trio without trio installed."""

from __future__ import annotations

import subprocess
import sys

import protomata.trio


def test_missing_trio_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['trio'] = None\n"
        "try:\n"
        "    import protomata.trio\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    print('imported')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert 'pip install "protomata[trio]"' in result.stdout
    # the rest of protomata does not need trio
    code = "import sys\nsys.modules['trio'] = None\nimport protomata.http, protomata.sync\n"
    subprocess.run([sys.executable, "-c", code], timeout=30, check=True)


def test_public_names() -> None:
    for name in protomata.trio.__all__:
        assert getattr(protomata.trio, name) is not None
    assert {"HTTPClient", "HTTPServer", "ASGIServer", "open_udp", "static_handler"} <= set(
        protomata.trio.__all__
    )
