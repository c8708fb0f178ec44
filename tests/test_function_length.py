"""Short functions: no function of the package is longer than a screen.

A function's length is counted from its ``def`` line to its last line, docstring,
comments and blank lines included (decorators not). Every module of ``corsadmin/``
is checked; the deprecated alias modules define no function of their own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "corsadmin"

#: The longest a function may be, in lines.
MAX_FUNCTION_LINES = 50

#: The modules checked, each as the paths it may have under ``corsadmin/`` (the first
#: that exists is read): where it is now, and where the restructuring moves it.
CHECKED_MODULES: tuple[str, ...] = tuple(
    str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py"))
)


def function_lengths(source: str) -> dict[str, int]:
    """Every function and method of ``source`` by qualified name, with its length in lines."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                assert child.end_lineno is not None
                lengths[name] = child.end_lineno - child.lineno + 1
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return lengths


def test_the_whole_package_is_checked() -> None:
    assert "policy/spec.py" in CHECKED_MODULES
    assert "db/store.py" in CHECKED_MODULES
    assert "extension.py" in CHECKED_MODULES


def test_function_lengths_are_counted_from_def_to_last_line() -> None:
    source = (
        "class A:\n"
        "    @staticmethod\n"
        "    def f() -> None:\n"
        '        """Doc."""\n'
        "\n"
        "        def inner() -> int:\n"
        "            return 1\n"
        "\n"
        "def g(): pass\n"
    )
    assert function_lengths(source) == {"A.f": 5, "A.f.inner": 2, "g": 1}


@pytest.mark.parametrize("module", CHECKED_MODULES)
def test_no_function_is_longer_than_a_screen(module: str) -> None:
    path = PACKAGE / module
    lengths = function_lengths(path.read_text(encoding="utf-8"))
    offenders = [
        f"{name} ({length} lines)"
        for name, length in sorted(lengths.items())
        if length > MAX_FUNCTION_LINES
    ]
    assert not offenders, (
        f"{path.relative_to(PACKAGE.parent)}: functions longer than {MAX_FUNCTION_LINES} lines: "
        + ", ".join(offenders)
        + "; split them into smaller functions that each do one job"
    )
