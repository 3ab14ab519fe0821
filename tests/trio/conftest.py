"""The trio adapter's tests need the optional trio dependency; skip them without it."""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("trio") is None:
    collect_ignore_glob = ["test_*.py", "_util.py"]
