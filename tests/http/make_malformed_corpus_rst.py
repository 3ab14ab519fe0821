"""Regenerate docs/http-malformed-corpus.rst from the corpus in test_smuggling.py.

Run from anywhere: ``python tests/http/make_malformed_corpus_rst.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def main() -> None:
    path = Path(__file__).with_name("test_smuggling.py")
    spec = importlib.util.spec_from_file_location("_malformed_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.RST_PATH.write_text(module.render_rst(), encoding="utf-8")
    print(f"wrote {module.RST_PATH}")


if __name__ == "__main__":
    main()
