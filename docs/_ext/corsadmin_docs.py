"""Sphinx directives that render corsadmin's reference from the code.

``.. corsadmin-config::`` (``{corsadmin-config}`` in MyST) renders every
``CORSADMIN_*`` key of :func:`corsadmin.config.describe` as a table: key, default,
meaning. The table is the code's, so it cannot drift from it.

The page ``manual`` is the README itself: the line ``<!-- corsadmin:readme -->`` in
``docs/manual.md`` is replaced, as the page is read, by ``README.md`` without its
title, its links made relative to ``docs/`` (``docs/x`` becomes ``x``, a file the
site shows as a page its page, any other relative link ``../x``: a download). The
README stays the one copy of its text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx

from corsadmin.config import describe

#: The README, from the checkout this extension sits in (docs/_ext/ -> the root).
README: Final = Path(__file__).resolve().parents[2] / "README.md"
#: The page that shows the README, and the line in it that the README replaces.
MANUAL_DOC: Final = "manual"
README_MARKER: Final = "<!-- corsadmin:readme -->"
#: A Markdown link or image target that is a relative path (not a URL, not an anchor).
RELATIVE_LINK: Final = re.compile(r"(\]\()(?![a-z][a-z0-9+.-]*:|#|/)([^)\s]+)")

#: README links to files outside docs/ that the site shows as pages of its own.
SITE_PAGES: Final = {"benchmarks/RESULTS.md": "benchmarks.md"}

#: The configuration table's column titles and relative widths.
CONFIG_COLUMNS: tuple[tuple[str, int], ...] = (("key", 3), ("default", 2), ("meaning", 7))


def _row(cells: list[list[nodes.Node]]) -> nodes.row:
    row = nodes.row()
    for content in cells:
        paragraph = nodes.paragraph()
        paragraph.extend(content)
        entry = nodes.entry()
        entry += paragraph
        row += entry
    return row


class ConfigTable(Directive):  # type: ignore[misc]  # docutils is untyped
    """Every CORSADMIN_* key with its default and meaning, from ``describe()``.

    Each key is also a target (``#corsadmin-refresh-interval``), so pages link to it.
    """

    has_content = False

    def run(self) -> list[nodes.Node]:
        table = nodes.table(classes=["corsadmin-config"])
        group = nodes.tgroup(cols=len(CONFIG_COLUMNS))
        table += group
        for _, width in CONFIG_COLUMNS:
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        head += _row([[nodes.Text(title)] for title, _ in CONFIG_COLUMNS])
        group += head
        body = nodes.tbody()
        for key, default, meaning in describe():
            target = nodes.target("", "", ids=[nodes.make_id(key)], names=[nodes.make_id(key)])
            self.state.document.note_explicit_target(target)
            default_text = repr(default)
            body += _row(
                [
                    [target, nodes.literal(key, key)],
                    [nodes.literal(default_text, default_text)],
                    _inline(meaning),
                ]
            )
        group += body
        return [table]


def _inline(text: str) -> list[nodes.Node]:
    """Plain text with its `backquoted` parts as literals (the config docs' only markup)."""
    parts = text.split("`")
    return [
        nodes.literal(part, part) if index % 2 else nodes.Text(part)
        for index, part in enumerate(parts)
        if part
    ]


def _relative_to_docs(match: re.Match[str]) -> str:
    target = match.group(2)
    if target in SITE_PAGES:
        return match.group(1) + SITE_PAGES[target]
    if target.startswith("docs/"):
        return match.group(1) + target.removeprefix("docs/")
    return match.group(1) + "../" + target


def readme_as_page() -> str:
    """README.md without its title, its relative links made relative to docs/."""
    text = README.read_text(encoding="utf-8")
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    return RELATIVE_LINK.sub(_relative_to_docs, body)


def _include_readme(app: Sphinx, docname: str, source: list[str]) -> None:
    if docname != MANUAL_DOC or README_MARKER not in source[0]:
        return
    app.env.note_dependency(str(README))
    source[0] = source[0].replace(README_MARKER, readme_as_page())


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives (a Sphinx extension's entry point)."""
    app.add_directive("corsadmin-config", ConfigTable)
    app.connect("source-read", _include_readme)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
