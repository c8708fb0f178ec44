"""The CLI's remote mode: every command with an API counterpart prints, through a real
HTTP server, exactly what it prints on the database; its errors are the same lines; the
commands without one refuse --url. The remote process has no database URL at all."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from tests.support.api import new_token
from tests.support.cli import CLI_TIMEOUT, REPO_ROOT
from tests.support.remote import Outcome, Remote, clean_env, local, write_json
from tests.support.servers import free_port, serve_wsgi_in_thread

DOCUMENT = {
    "corsadmin": 1,
    "policies": [
        {"name": "docs", "path": "/docs/*", "origins": ["https://d.example"]},
        {
            "name": "api",
            "path": "/api/*",
            "origins": ["https://a.example", {"origin": "https://n.example", "note": "n"}],
            "max_age": 120,
        },
    ],
}


@pytest.fixture
def remote(app: Flask, runner: FlaskCliRunner) -> Iterator[Remote]:
    """The app served on loopback, a write token, and a policy 'api' with two rules."""
    ok = local(runner, "policy", "add", "api", "/api/*", "--origin", "https://a.example")
    assert ok.code == 0, ok
    assert (
        local(runner, "origin", "add", "api", "https://b.example", "--note", "ticket 1").code == 0
    )
    with serve_wsgi_in_thread(app) as base:
        yield Remote(f"{base}/corsadmin", new_token(app, "ci", "write"))


def same(runner: FlaskCliRunner, remote: Remote, *args: str) -> Outcome:
    """Run ARGS locally and remotely on the same state: the same outcome."""
    here, there = local(runner, *args), remote.run(*args)
    assert there == here, (args, here, there)
    return here


def same_write(
    runner: FlaskCliRunner, remote: Remote, args: tuple[str, ...], undo: tuple[str, ...]
) -> Outcome:
    """Run the change ARGS locally, undo it, run it remotely: the same outcome."""
    here = local(runner, *args)
    assert here.code == 0, here
    undone = local(runner, *undo)
    assert undone.code == 0, undone
    there = remote.run(*args)
    assert there == here, (args, here, there)
    return here


def test_policy_show_of_a_large_policy_fetches_pages_and_prints_the_same(
    runner: FlaskCliRunner, remote: Remote, tmp_path: Path
) -> None:
    """1,050 rules: the first 100 from one page, and --all through the API's pages (the
    first page, then pages of MAX_ORIGIN_PAGE after it) print what the database does."""
    origins = [f"https://p{i:04}.example" for i in range(1050)]
    big = {"corsadmin": 1, "policies": [{"name": "big", "path": "/big/*", "origins": origins}]}
    path = write_json(tmp_path, "big.json", json.dumps(big))
    assert local(runner, "import", path).code == 0
    shown = same(runner, remote, "policy", "show", "big")
    assert "origins (1050):" in shown.out
    assert "... and 950 more" in shown.out
    every = same(runner, remote, "policy", "show", "big", "--all")
    assert [line.split()[0] for line in every.out.splitlines() if "(added" in line] == origins


def test_reads_print_what_the_local_commands_print(
    runner: FlaskCliRunner, remote: Remote, tmp_path: Path
) -> None:
    same(runner, remote, "policy", "list")
    shown = same(runner, remote, "policy", "show", "api")
    assert "https://b.example  (note: ticket 1; added" in shown.out
    same(runner, remote, "policy", "show", "api", "--all")
    exported = same(runner, remote, "export")
    assert json.loads(exported.out)["policies"][0]["name"] == "api"
    allowed = same(runner, remote, "check", "https://a.example", "/api/x")
    assert allowed.code == 0
    refused = same(runner, remote, "check", "https://evil.example", "/api/x", "--method", "PUT")
    assert refused.code == 2
    file = write_json(tmp_path, "doc.json", json.dumps(DOCUMENT))
    dry = same(runner, remote, "import", file, "--dry-run")
    assert dry.out.splitlines()[-1] == "dry run: nothing was written (2 policies would change)"
    same(runner, remote, "import", file, "--replace", "--dry-run")
    exported_file = write_json(tmp_path, "now.json", exported.out)
    nothing = same(runner, remote, "import", exported_file, "--dry-run")
    assert nothing.out.startswith(f"importing {exported_file} would change nothing")


def test_changes_print_what_the_local_commands_print(
    runner: FlaskCliRunner, remote: Remote, tmp_path: Path
) -> None:
    add = ("policy", "add", "web", "/web/*", "--origin", "https://w.example", "--credentials")
    same_write(runner, remote, add, ("policy", "remove", "web"))
    same_write(runner, remote, ("policy", "remove", "web"), add)
    same_write(
        runner,
        remote,
        ("policy", "update", "api", "--max-age", "60", "--priority", "3"),
        ("policy", "update", "api", "--max-age", "0", "--priority", "0"),
    )
    same(runner, remote, "policy", "list")
    same_write(
        runner,
        remote,
        ("origin", "add", "api", "https://c.example", "--note", "why", "--expires", "2099-01-01"),
        ("origin", "remove", "api", "https://c.example"),
    )
    unchanged = same(runner, remote, "origin", "add", "api", "https://c.example")
    assert "--note, --expires or --no-expires change it" in unchanged.out
    same_write(
        runner,
        remote,
        ("origin", "add", "api", "https://c.example", "--no-expires", "--note", ""),
        ("origin", "add", "api", "https://c.example", "--expires", "2099-01-01", "--note", "why"),
    )
    same_write(
        runner,
        remote,
        ("origin", "remove", "api", "https://c.example"),
        ("origin", "add", "api", "https://c.example"),
    )
    docs_only = {"corsadmin": 1, "policies": DOCUMENT["policies"][:1]}
    file = write_json(tmp_path, "doc.json", json.dumps(docs_only))
    imported = same_write(runner, remote, ("import", file), ("policy", "remove", "docs"))
    assert imported.out == f"imported {file}: 1 created, 0 updated, 0 deleted, 0 unchanged\n"
    same(runner, remote, "policy", "show", "api")


def test_drafts_print_what_the_local_commands_print(
    runner: FlaskCliRunner, remote: Remote, tmp_path: Path
) -> None:
    file = write_json(tmp_path, "draft.json", json.dumps(DOCUMENT))
    imported = remote.run("draft", "import", file, "--reason", "partner")
    assert imported.code == 0, imported
    for args in (
        ("draft", "show"),
        ("draft", "show", "--format", "json"),
        ("draft", "diff"),
        ("draft", "diff", "--format", "json"),
        ("draft", "report"),
        ("draft", "report", "--format", "json"),
    ):
        same(runner, remote, *args)
    draft = json.loads(local(runner, "draft", "show", "--format", "json").out)
    stale = same(runner, remote, "draft", "promote", "--version", str(draft["version"] + 1))
    assert stale.code == 1
    discarded = remote.run("draft", "discard", "--version", str(draft["version"]))
    assert discarded == Outcome(
        0, f"discarded draft {draft['draft']}; the live policies are unchanged\n", ""
    )
    same(runner, remote, "draft", "show")  # no draft: the same error
    assert remote.run("draft", "import", file).code == 0
    again = json.loads(local(runner, "draft", "show", "--format", "json").out)
    promoted = remote.run("draft", "promote")
    assert promoted.code == 0, promoted
    assert promoted.out.startswith(f"promoted draft {again['draft']} at revision ")
    assert promoted.out.endswith(": changed api, docs\n")


def test_errors_are_the_local_lines(
    app: Flask, runner: FlaskCliRunner, remote: Remote, tmp_path: Path
) -> None:
    missing = same(runner, remote, "policy", "show", "nope")
    assert missing.code == 1
    assert missing.err.startswith("error: ")
    same(runner, remote, "origin", "remove", "nope", "https://a.example")
    invalid = same(runner, remote, "policy", "add", "bad", "/bad/*", "--origin", "not an origin")
    assert invalid.code == 1
    assert invalid.err.startswith("error: origins[0]: ")
    broken = write_json(tmp_path, "broken.json", json.dumps({"corsadmin": 2, "policies": [{}]}))
    refused = same(runner, remote, "import", broken)
    assert len(refused.err.splitlines()) > 1
    same(runner, remote, "draft", "import", broken)
    before = local(runner, "export").out
    reader = new_token(app, "reader", "read")
    read_only = remote.run("policy", "remove", "api", token=reader)
    assert read_only == Outcome(
        1,
        "",
        "error: token 'reader' has the 'read' scope; this request needs a 'write' token "
        "(use a token with the write scope)\n",
    )
    wrong = remote.run("policy", "list", token="cors_not-a-token")
    assert wrong == Outcome(
        1,
        "",
        "error: the token is unknown, expired or revoked "
        "(check --token, --token-file or CORSADMIN_TOKEN)\n",
    )
    assert local(runner, "export").out == before


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (("db-upgrade",), "db-upgrade"),
        (("token", "create", "x", "--scope", "read"), "token create"),
        (("operator", "list"), "operator list"),
    ],
)
def test_commands_without_an_api_refuse_the_url(
    remote: Remote, args: tuple[str, ...], command: str
) -> None:
    refused = remote.run(*args)
    assert refused.code == 1
    assert refused.out == ""
    assert refused.err.startswith(f"error: `corsadmin {command}` needs the database")
    assert len(refused.err.splitlines()) == 1


def test_the_console_script_needs_a_url_and_says_what_else_to_use() -> None:
    outcome = Remote("", "").run_without_url("policy", "list")
    assert outcome.code == 1
    assert outcome.err.count("\n") == 1
    assert "`flask corsadmin` or `python manage.py corsadmin`" in outcome.err


def test_an_unreachable_instance_is_one_error_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/corsadmin"
    outcome = Remote(url, "cors_x").run("policy", "list")
    assert outcome == Outcome(
        1, "", f"error: cannot reach {url}/api/v1: [Errno 111] Connection refused\n"
    )


def test_the_token_is_read_from_a_file_and_never_printed(
    app: Flask, remote: Remote, tmp_path: Path
) -> None:
    secret = remote.token
    token_file = tmp_path / "token"
    token_file.write_text(secret + "\n", encoding="utf-8")
    by_file = remote.run("--token-file", str(token_file), "policy", "list", token="cors_wrong")
    assert by_file.code == 0, by_file
    assert secret not in by_file.out + by_file.err
    assert clean_env().keys() == {"PATH", "LANG"}


def test_manage_py_takes_the_url_and_never_opens_its_database(
    runner: FlaskCliRunner, remote: Remote, tmp_path: Path
) -> None:
    unused = tmp_path / "unused.db"
    env = clean_env(
        DATABASE_URL=f"sqlite:///{unused}", CORSADMIN_URL=remote.url, CORSADMIN_TOKEN=remote.token
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "corsadmin", "policy", "list"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, local(runner, "policy", "list").out)
    assert not unused.exists()


def test_a_url_that_is_not_the_api_is_one_error_line(remote: Remote) -> None:
    site = remote.url.removesuffix("/corsadmin")
    outcome = Remote(site, remote.token).run("policy", "list")
    assert outcome.code == 1
    assert outcome.out == ""
    assert outcome.err.startswith(f"error: {site}/api/v1 answered HTTP 404, not the corsadmin API")
    assert len(outcome.err.splitlines()) == 1
