"""Sphinx configuration of corsadmin's documentation site (``make docs``).

Built with warnings as errors (``sphinx-build -W --keep-going``) and ``nitpicky``, so
a broken internal link, a missing page or an unresolved reference fails the build
(``tests/test_docs.py`` proves it). External links are not checked: the build is
offline.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))

import corsadmin  # noqa: E402  (after the path: the checkout's copy)

project = "corsadmin"
author = "corsadmin developers"
copyright = "corsadmin developers"
release = corsadmin.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx_click",
    "corsadmin_docs",
]

root_doc = "index"
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
# notes/ holds the engineers' hand-over notes, screenshots/take.py a script: not pages.
exclude_patterns = ["_build", "notes", "screenshots/*.py", "Thumbs.db", ".DS_Store"]

# Every reference must resolve: a broken one is a warning, and -W makes it an error.
# That holds for every link between pages, headings and anchors (myst, std, doc) and
# for references to the documented Python names.
nitpicky = True
# Python references the site does not document on purpose: the libraries corsadmin
# builds on (no intersphinx: the build stays offline), names written short in type
# hints or docstrings for code readers (Flask, Session, decide...), and the internal
# layers (policy, engine, db, runtime, state: docs/architecture.md describes them).
nitpick_ignore_regex = [
    (r"py:.*", r"(flask|werkzeug|sqlalchemy|flask_sqlalchemy|blinker|click)(\..*)?"),
    (r"py:.*", r"prometheus_client(\..*)?"),
    (r"py:.*", r"(collections\.abc|typing|datetime|re|pathlib|enum)\..*"),
    (r"py:.*", r"corsadmin\.(policy|engine|db|runtime|state)(\..*)?"),
    (r"py:.*", r"[A-Za-z_]+|fields\.FIELDS"),
]

myst_enable_extensions = ["colon_fence", "deflist"]
# "#admin-ui" style anchors for headings down to ###, as GitHub makes them.
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}

html_theme = "furo"
html_title = f"corsadmin {release}"
html_static_path: list[str] = []

# benchmarks/RESULTS.md (a page) skips heading levels; that is style, not a broken
# reference, so it does not fail the build.
suppress_warnings = ["myst.header"]
# Text as written (no curly quotes): the reference pages quote the code's own strings.
smartquotes = False
