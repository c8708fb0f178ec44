"""The documentation site (docs/, Sphinx): it builds with warnings as errors, its
reference pages are generated from the code and complete, and a broken internal
link, a missing page or a page left out of the navigation fails the build.

``make docs`` runs the same build (``DOCS_BUILD`` below); CI runs it through
``make test`` and this file.
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import click
import pytest
from docutils.nodes import make_id
from flask.testing import FlaskCliRunner

from corsadmin import standalone
from corsadmin.cli import corsadmin_cli
from corsadmin.config import DEFAULT_CONFIG, describe
from tests.support.cli import REPO_ROOT, invoke
from tests.support.standalone import standalone_app

pytestmark = pytest.mark.slow

#: The build ``make docs`` runs: warnings (broken references included) are errors,
#: every warning is reported before it fails, and the environment is fresh.
DOCS_BUILD: Final = ("-W", "--keep-going", "-q", "-E")
#: What the site is built from: docs/ and the files its pages include or link to.
SITE_INPUTS: Final = ("docs", "README.md", "benchmarks/RESULTS.md", "examples")
#: No build of the site may take longer than this (seconds; it takes about 10).
BUILD_TIMEOUT: Final = 300
#: The built configuration reference (the table ``describe()`` renders).
CONFIG_PAGE: Final = "reference/configuration.html"
#: The built command-line reference (sphinx-click's pages of ``corsadmin_cli``).
CLI_PAGE: Final = "reference/cli.html"


def sphinx(srcdir: Path, outdir: Path, builder: str = "html") -> subprocess.CompletedProcess[str]:
    """Build ``srcdir`` as ``make docs`` does, with this checkout's corsadmin."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "sphinx", *DOCS_BUILD, "-b", builder, str(srcdir), str(outdir)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=BUILD_TIMEOUT,
        check=False,
    )


def page_text(path: Path) -> str:
    """A built page's text, tags dropped and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def commands(group: click.Command, prefix: str = "corsadmin") -> Iterator[str]:
    """Every command's full name (``corsadmin policy add``), the groups too."""
    yield prefix
    if isinstance(group, click.Group):
        for name, command in group.commands.items():
            yield from commands(command, f"{prefix} {name}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once from the checkout's docs/."""
    outdir = tmp_path_factory.mktemp("site")
    result = sphinx(REPO_ROOT / "docs", outdir)
    assert result.returncode == 0, result.stdout + result.stderr
    return outdir


def test_the_site_builds_with_warnings_as_errors(site: Path) -> None:
    for page in ("index", "tutorial", "manual", "architecture", "policy-document"):
        assert (site / f"{page}.html").is_file(), page
    for page in ("reference/api", "howto/embed", "howto/gunicorn", "howto/alerts"):
        assert (site / f"{page}.html").is_file(), page
    # The included pages are the files themselves, not copies.
    manual = page_text(site / "manual.html")
    assert "Trying a change first" in manual
    assert "The corsadmin policy document" in page_text(site / "policy-document.html")


def test_the_configuration_reference_lists_every_key(site: Path) -> None:
    source = (site / CONFIG_PAGE).read_text(encoding="utf-8")
    text = page_text(site / CONFIG_PAGE)
    keys = [key for key, _, _ in describe()]
    assert keys == list(DEFAULT_CONFIG)
    for key, default, meaning in describe():
        assert f'id="{make_id(key)}"' in source, key  # a link target per key
        row = re.search(rf"{key}\s+{re.escape(repr(default))}\s+(.*)", text)
        assert row is not None, f"{key} and its default {default!r} not in {CONFIG_PAGE}"
        assert row.group(1).startswith(meaning.replace("`", "")[:40]), key


def test_the_cli_reference_lists_every_command(site: Path) -> None:
    lines = page_text(site / CLI_PAGE).splitlines()
    names = list(commands(corsadmin_cli))
    assert "corsadmin draft promote" in names
    for name in names:
        assert any(line.startswith(f"{name} [OPTIONS]") for line in lines), name
        command: click.Command = corsadmin_cli
        for part in name.split()[1:]:
            assert isinstance(command, click.Group)
            command = command.commands[part]
        summary = (command.help or "").split("\n", 1)[0].strip()
        assert summary in "\n".join(lines), (name, summary)


def copy_of_the_site(root: Path) -> Path:
    """A copy of what the site is built from, under ``root``; returns its docs/."""
    for name in SITE_INPUTS:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("_build"))
        else:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    return root / "docs"


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def break_link_to_a_page(docs: Path) -> str:
    append(docs / "tutorial.md", "\nSee [the guide](howto/no-such-guide.md).\n")
    return "howto/no-such-guide.md"


def break_link_to_a_heading(docs: Path) -> str:
    append(docs / "howto" / "embed.md", "\nSee [it](../manual.md#no-such-section).\n")
    return "no-such-section"


def break_role_to_a_page(docs: Path) -> str:
    append(docs / "howto" / "tokens.md", "\nSee {doc}`../reference/no-such-page`.\n")
    return "no-such-page"


def list_a_missing_page(docs: Path) -> str:
    index = docs / "index.md"
    text = index.read_text(encoding="utf-8").replace("howto/alerts\n", "howto/alerts\nhowto/gone\n")
    index.write_text(text, encoding="utf-8")
    return "howto/gone"


def leave_a_page_out(docs: Path) -> str:
    (docs / "howto" / "forgotten.md").write_text("# Forgotten\n\nText.\n", encoding="utf-8")
    return "forgotten"


#: Each way to break the site, applied together to one copy (one build, not five).
BREAKAGES: Final = (
    break_link_to_a_page,
    break_link_to_a_heading,
    break_role_to_a_page,
    list_a_missing_page,
    leave_a_page_out,
)


def test_a_broken_internal_link_or_a_missing_page_fails_the_build(tmp_path: Path) -> None:
    docs = copy_of_the_site(tmp_path)
    targets = [breakage(docs) for breakage in BREAKAGES]
    result = sphinx(docs, tmp_path / "out", builder="dummy")
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert result.returncode != 0, result.stderr
    # One warning per breakage, naming it, and no other: the copy builds otherwise,
    # and -W makes each of them alone an error.
    assert len(warnings) == len(BREAKAGES), result.stderr
    for target in targets:
        assert sum(target in line for line in warnings) == 1, (target, warnings)


#: The pages whose shell examples are checked against the commands (the README has
#: its own tests; the site's pages are written here).
WRITTEN_PAGES: Final = ("tutorial.md", "howto/*.md", "reference/*.md")
#: A fenced shell block of a page.
SHELL_BLOCK: Final = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)


def shell_commands(page: Path) -> Iterator[list[str]]:
    """Each ``corsadmin`` command line of a page's sh blocks, as words after it."""
    for block in SHELL_BLOCK.findall(page.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split(" #", 1)[0], posix=True)
            if "corsadmin" in words:
                yield words[words.index("corsadmin") + 1 :]


def resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """The command the words name, and the option names given to it or its groups."""
    command: click.Command = corsadmin_cli
    options = {name for param in corsadmin_cli.params for name in param.opts}
    given = []
    for word in words:
        if word.startswith("--"):
            given.append(word.split("=", 1)[0])
        elif isinstance(command, click.Group) and word in command.commands:
            command = command.commands[word]
        elif isinstance(command, click.Group) and not given:
            raise AssertionError(f"no command {word!r} in {command.name}: {words}")
    options |= {name for param in command.params for name in param.opts}
    return command, [name for name in given if name not in options | {"--help"}]


def test_every_command_a_page_shows_exists_with_its_options() -> None:
    seen = set()
    for pattern in WRITTEN_PAGES:
        for page in sorted((REPO_ROOT / "docs").glob(pattern)):
            for words in shell_commands(page):
                command, unknown = resolve(words)
                assert not isinstance(command, click.Group), (page.name, words)
                assert not unknown, (page.name, words, unknown)
                seen.add(command.name)
    assert {"add", "check", "export", "import", "promote", "report", "create"} <= seen


#: The tutorial's one manual step, done as the reader does it: after the export, remove
#: "DELETE" from the policy's methods.
TUTORIAL_EXPORT: Final = "cors.json"
#: The password the test gives the tutorial's ``operator add``.
TUTORIAL_PASSWORD: Final = "a long enough password for the tutorial"
#: A tutorial block and the output block right after it.
BLOCK_AND_OUTPUT: Final = re.compile(r"^```sh\n(.*?)^```\n+(?:^```text\n(.*?)^```)?", re.M | re.S)
#: Output lines that hold the day the tutorial was written, or the reader's login name.
VARIES: Final = re.compile(r"\d{4}-\d{2}-\d{2}T?|cli:")


def run_tutorial_line(runner: FlaskCliRunner, line: str, cwd: Path) -> str:
    words = shlex.split(line.split(" #", 1)[0])
    args = words[words.index("corsadmin") + 1 :]
    target = None
    if ">" in args:
        target, args = cwd / args[args.index(">") + 1], args[: args.index(">")]
    args = [str(cwd / arg) if arg == TUTORIAL_EXPORT else arg for arg in args]
    typed = None
    if args[0] == "operator":  # the reader types it twice on a terminal; the test pipes it
        args, typed = [*args, "--password-stdin"], f"{TUTORIAL_PASSWORD}\n"
    result = invoke(runner, *args, input=typed)
    assert result.exit_code in (0, 2), (line, result.output)  # check: 2 is "refused"
    if target is not None:
        target.write_text(result.output, encoding="utf-8")
        document = json.loads(result.output)
        document["policies"][0]["methods"].remove("DELETE")
        target.write_text(json.dumps(document, indent=2), encoding="utf-8")
        return ""
    return result.output


def test_the_tutorial_shows_what_the_commands_print(tmp_path: Path) -> None:
    text = (REPO_ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    checked = 0
    with standalone_app(f"sqlite:///{tmp_path / 'tutorial.sqlite'}") as app:
        output = "\n".join(standalone.prepare_database(app))
        runner = app.test_cli_runner()
        for block, shown in BLOCK_AND_OUTPUT.findall(text):
            for line in block.replace("\\\n", " ").splitlines():
                if "manage.py corsadmin" in line:
                    output += run_tutorial_line(runner, line, tmp_path)
            for expected in shown.splitlines():
                if expected.strip() != "..." and not VARIES.search(expected):
                    assert expected in output.splitlines(), (expected, output)
                    checked += 1
            output = ""
    assert checked > 30
