"""The import boundary: protocol code never touches sockets, threads, clocks or files.

Every module under src/protomata is parsed with ``ast`` (nothing is
imported or run), except the adapter packages, which exist precisely to do
I/O.  A violation names the file, line and what was used.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import protomata

PACKAGE_ROOT = Path(protomata.__file__).resolve().parent
#: top-level entries of the package that may do I/O
ADAPTERS = frozenset({"sync", "asyncio", "trio", "cli", "__main__"})
FORBIDDEN_MODULES = frozenset(
    {"socket", "ssl", "asyncio", "trio", "selectors", "threading", "time"}
)
#: modules whose ``open`` is file (or descriptor) I/O
OPEN_PROVIDERS = frozenset({"builtins", "io", "os", "codecs", "gzip", "bz2", "lzma", "tarfile"})


def _forbidden(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in FORBIDDEN_MODULES


def violations_in_source(source: str, filename: str = "<string>") -> list[str]:
    """Every forbidden import and file-opening call in *source*."""
    found: list[str] = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and _forbidden(node.module):
                found.append(f"{where}: from {node.module} import ...")
            elif node.level == 0 and node.module in OPEN_PROVIDERS:
                found += [
                    f"{where}: from {node.module} import open"
                    for a in node.names
                    if a.name == "open"
                ]
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "open":
                found.append(f"{where}: open()")
            elif (
                isinstance(func, ast.Attribute)
                and func.attr in ("open", "fdopen")
                and isinstance(func.value, ast.Name)
                and func.value.id in OPEN_PROVIDERS
            ):
                found.append(f"{where}: {func.value.id}.{func.attr}()")
            elif (
                isinstance(func, ast.Attribute)
                and func.attr in ("open", "read_text", "read_bytes", "write_text", "write_bytes")
                and isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name)
                and func.value.func.id == "Path"
            ):
                found.append(f"{where}: Path(...).{func.attr}()")
            elif _is_dynamic_import(func) and node.args:
                first = node.args[0]
                if (
                    isinstance(first, ast.Constant)
                    and isinstance(first.value, str)
                    and _forbidden(first.value)
                ):
                    found.append(f"{where}: dynamic import of {first.value}")
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def protocol_modules(root: Path = PACKAGE_ROOT) -> list[Path]:
    modules = []
    for path in sorted(root.rglob("*.py")):
        top = path.relative_to(root).parts[0]
        if top.removesuffix(".py") in ADAPTERS:
            continue
        modules.append(path)
    return modules


def test_protocol_packages_stay_pure() -> None:
    checked = protocol_modules()
    problems: list[str] = []
    for path in checked:
        rel = path.relative_to(PACKAGE_ROOT.parent)
        problems += violations_in_source(path.read_text(encoding="utf-8"), str(rel))
    assert not problems, "import boundary violated:\n" + "\n".join(problems)

    # The walk really looked at the protocol code (an empty walk passes trivially).
    relative = {path.relative_to(PACKAGE_ROOT).as_posix() for path in checked}
    assert "http/_connection.py" in relative
    assert "http/_readers.py" in relative
    assert "_core/_receivebuffer.py" in relative
    assert "__init__.py" in relative
    assert not any(part.split("/")[0].removesuffix(".py") in ADAPTERS for part in relative)


@pytest.mark.parametrize(
    "source",
    [
        "import socket",
        "import os, ssl",
        "import asyncio.subprocess",
        "from trio import lowlevel",
        "from selectors import DefaultSelector",
        "from threading import Lock",
        "import time as clock",
        "def f():\n    import time\n",
        "open('x')",
        "with open('x', 'rb') as f:\n    pass",
        "io.open('x')",
        "os.open('x', 0)",
        "os.fdopen(3)",
        "from io import open",
        "Path('x').read_bytes()",
        "__import__('socket')",
        "importlib.import_module('asyncio')",
    ],
)
def test_checker_catches_violations(source: str) -> None:
    assert violations_in_source(source)


@pytest.mark.parametrize(
    "source",
    [
        "import re",
        "import enum, typing",
        "from .time_utils import x",  # relative import, not the stdlib module
        "from . import socket",  # a sibling module that happens to share a name
        "import timeit_like",
        "buf.open()",
        "conn.send(b'x')",
        "from collections.abc import Iterable",
    ],
)
def test_checker_allows_pure_code(source: str) -> None:
    assert violations_in_source(source) == []


def test_adapters_are_skipped(tmp_path: Path) -> None:
    for name in (
        "__init__.py",
        "__main__.py",
        "sync/__init__.py",
        "asyncio/_runner.py",
        "trio/__init__.py",
        "cli/main.py",
        "http/_sync_helpers.py",
        "smtp/asyncio.py",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("import socket\n")
    found = {p.relative_to(tmp_path).as_posix() for p in protocol_modules(tmp_path)}
    # Only top-level adapter packages are exempt, not look-alike names deeper down.
    assert found == {"__init__.py", "http/_sync_helpers.py", "smtp/asyncio.py"}
