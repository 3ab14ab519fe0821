"""Sphinx configuration for the protomata documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html``: warnings are
errors, and nothing here reaches the network.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Document the source tree even when protomata is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import protomata

project = "protomata"
author = "the protomata developers"
copyright = "the protomata developers"
version = release = protomata.__version__

extensions = [
    "sphinx.ext.autodoc",
]

# intersphinx stays off: the build must work without a network.
root_doc = "index"
exclude_patterns = [
    "_build",
    "examples",
    # Pulled into coming-from-h11.rst with ``.. include::`` when present.
    "http-malformed-corpus.rst",
]
# Re-exported names are documented once, where api.rst puts them.
autodoc_default_options = {
    "member-order": "bysource",
}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autoclass_content = "both"

html_theme = "alabaster"
html_title = f"protomata {release}"
html_static_path: list[str] = []
