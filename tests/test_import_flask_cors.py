"""``corsadmin import-flask-cors``: a Flask-CORS application moves in one command.

For each example of ``tests/support/flask_cors_apps.py`` (the classic example and
Flask-CORS's documented ones) the command reads the Flask-CORS app and imports the
document (``--apply``) into a twin application with the same routes and corsadmin
instead of Flask-CORS (on SQLite and PostgreSQL). Then both answer a grid of
requests (origins allowed, refused, malformed, ``null`` and none; covered and
uncovered paths; simple requests and preflights with and without request headers)
and their CORS headers must be equal, but for the deliberate differences, each
asserted as such (:func:`expected_from_flask_cors`):

- a ``'*'`` policy: Flask-CORS echoes the origin unless ``send_wildcard``; corsadmin
  answers ``*`` (without credentials the same for a browser);
- a request without ``Origin`` (not a CORS request) to a policy listing origins:
  Flask-CORS's ``always_send`` lists the origins, corsadmin sends nothing;
- a ``@cross_origin`` view's path is answered for every method, also one the route
  refuses (405), where Flask-CORS's decorator never runs;
- ``Vary: Origin``: corsadmin sends it whenever its answer depends on the origin
  (refusals included) and never for ``*``; Flask-CORS only when several origins or
  a regex could match.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from werkzeug.test import TestResponse

from corsadmin import CorsAdmin
from tests.support.cli import REPO_ROOT, invoke, user_error
from tests.support.flask_cors_apps import EXAMPLES, create_app
from tests.support.host import REFRESH_INTERVAL, TEST_SECRET_KEY, Host, close_host

APPS: Final = "tests.support.flask_cors_apps"

#: Origins of the grid: allowed by some example, refused by all but '*', not an
#: origin at all, ``null``, and none.
ORIGINS: Final = (
    "https://app.example.com",
    "http://localhost:3000",
    "http://localhost:8080",
    "https://a.b.example.com",
    "https://evil.example",
    "https://app.example.com.evil.example",
    "not an origin",
    "https://app.example.com/",
    "null",
    None,
)
PATHS: Final = (
    "/",
    "/api/v1/users/",
    "/api/v1/users/create",
    "/api/v1/user/create",
    "/api/items/7",
    "/public/page",
    "/elsewhere",
)
#: (method, Access-Control-Request-Method, Access-Control-Request-Headers,
#: Access-Control-Request-Private-Network: true)
REQUESTS: Final = (
    ("GET", None, None, False),
    ("POST", None, None, False),
    ("OPTIONS", "GET", None, False),
    ("OPTIONS", "PUT", "content-type", False),
    ("OPTIONS", "POST", "authorization, content-type, x-custom", False),
    ("OPTIONS", "PATCH", None, False),
    ("OPTIONS", "GET", None, True),
)


def make_twin(database_url: str, example: str, *, flask_cors: bool = False) -> Host:
    """The example's routes without Flask-CORS (unless ``flask_cors``: the app moving
    in, before Flask-CORS is taken out), with corsadmin (schema migrated)."""
    app = Flask(f"corsadmin_twin_{example}")
    app.config.update(
        TESTING=True,
        SECRET_KEY=TEST_SECRET_KEY,
        SQLALCHEMY_DATABASE_URI=database_url,
        CORSADMIN_REFRESH_INTERVAL=REFRESH_INTERVAL,
    )
    db = SQLAlchemy()
    cors = CorsAdmin(db=db)
    db.init_app(app)
    cors.init_app(app)
    EXAMPLES[example](app, flask_cors)
    with app.app_context():
        cors.upgrade_schema(app)
    return Host(app=app, db=db, cors=cors)


@pytest.fixture
def twins(database_url: str, request: pytest.FixtureRequest) -> Iterator[tuple[Flask, Host]]:
    example: str = request.param
    host = make_twin(database_url, example)
    try:
        yield create_app(example), host
    finally:
        close_host(host)


def cors_headers(response: TestResponse) -> dict[str, list[str]]:
    """The Access-Control-* headers of a response, values in order."""
    found: dict[str, list[str]] = {}
    for name, value in response.headers.items():
        if name.lower().startswith("access-control-"):
            found.setdefault(name.lower(), []).append(value)
    return found


def varies_on_origin(response: TestResponse) -> bool:
    return "origin" in {v.strip().lower() for v in response.headers.get("Vary", "").split(",")}


def send(
    app: Flask,
    path: str,
    method: str,
    origin: str | None,
    acrm: str | None,
    acrh: str | None,
    private: bool = False,
) -> TestResponse:
    headers = {"Origin": origin} if origin is not None else {}
    if private:
        headers["Access-Control-Request-Private-Network"] = "true"
    if acrm is not None:
        headers["Access-Control-Request-Method"] = acrm
    if acrh is not None:
        headers["Access-Control-Request-Headers"] = acrh
    return app.test_client().open(path, method=method, headers=headers)


def expected_from_flask_cors(
    before: dict[str, list[str]], origin: str | None, any_origin: bool
) -> dict[str, list[str]]:
    """What corsadmin must answer, given Flask-CORS's answer (the module's differences)."""
    expected = {k: list(v) for k, v in before.items()}
    allow = expected.get("access-control-allow-origin")
    if any_origin and origin is not None and allow == [origin]:
        expected["access-control-allow-origin"] = ["*"]  # echo -> '*'
    if origin is None and not any_origin:
        expected = {}  # always_send: corsadmin sends nothing for a non-CORS request
    return expected


def import_example(twin: Flask, example: str) -> dict[str, Any]:
    """Run the command on the twin (``--apply``) and return the document it wrote."""
    runner = twin.test_cli_runner()
    app_arg = f'{APPS}:create_app("{example}")'
    result = invoke(runner, "import-flask-cors", "--app", app_arg)
    assert result.exit_code == 0, (result.output, result.exception)
    document: dict[str, Any] = json.loads(result.stdout)
    applied = invoke(runner, "import-flask-cors", "--app", app_arg, "--apply")
    assert applied.exit_code == 0, (applied.output, applied.exception)
    assert "imported from Flask-CORS:" in applied.stdout
    return document


def _from_view(policy: Any) -> bool:
    return policy is not None and "@cross_origin" in policy.spec.description


@pytest.mark.parametrize("twins", list(EXAMPLES), indirect=True)
def test_headers_before_and_after_are_the_same(twins: tuple[Flask, Host]) -> None:
    flask_cors_app, host = twins
    twin = host.app
    document = import_example(twin, flask_cors_app.name.removeprefix("flask_cors_"))
    assert document["policies"]
    snapshot = CorsAdmin.state(twin).holder
    compared = 0
    for path in PATHS:
        with twin.app_context():
            policy = snapshot.current().policy_for(path)
        for origin in ORIGINS:
            for method, acrm, acrh, private in REQUESTS:
                before = send(flask_cors_app, path, method, origin, acrm, acrh, private)
                if before.status_code == 405 and _from_view(policy):
                    # The route does not serve the method: Flask-CORS's decorator does
                    # not run, corsadmin answers the path as for the method it serves.
                    before = send(flask_cors_app, path, "GET", origin, acrm, acrh, private)
                after = send(twin, path, method, origin, acrm, acrh, private)
                any_origin = policy is not None and policy.any_origin
                where = (path, origin, method, acrm, acrh, private)
                assert cors_headers(after) == expected_from_flask_cors(
                    cors_headers(before), origin, any_origin
                ), where
                answered = "access-control-allow-origin" in cors_headers(after)
                assert varies_on_origin(after) == (policy is not None and not any_origin), where
                if varies_on_origin(before) and not any_origin:
                    assert varies_on_origin(after), where
                compared += answered
    assert compared > 0  # the grid has allowed requests, not only refusals


# --- what cannot be expressed ------------------------------------------------------------

UNSUPPORTED_APP: Final = f"{APPS}:unsupported_app"


def test_unsupported_options_are_named_and_nothing_is_written(runner: Any) -> None:
    lines = user_error(runner, "import-flask-cors", "--app", UNSUPPORTED_APP)
    assert lines[-1].startswith("error: nothing was written: fix these in the application")
    errors = "\n".join(lines)
    assert (
        "error: cannot express resource r'/api/v1/.*': origins: '*' with supports_credentials:"
        in errors
    )
    assert (
        "error: cannot express resource r'/api/items/.*': allow_headers: the regex 'X-.*': "
        "corsadmin allows header names or '*' only" in errors
    )
    assert "error: cannot express resource r'/public/.*/x': path: the regex" in errors
    vary = [line for line in lines if ": vary_header: False: corsadmin always sends Vary" in line]
    assert len(vary) == 3  # one per resource, each named
    assert all(
        line.endswith("(--skip-unsupported: the policy is written without it)") for line in vary
    )


def test_skip_unsupported_writes_the_rest_never_wider(runner: Any, tmp_path: Path) -> None:
    out = tmp_path / "policy.json"
    args = ("import-flask-cors", "--app", UNSUPPORTED_APP, "--skip-unsupported", "-o", str(out))
    result = invoke(runner, *args)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    document = json.loads(out.read_text("utf-8"))
    [policy] = document["policies"]  # the credentials '*' and the middle-'.*' path left out
    assert (policy["path"], policy["origins"]) == ("/api/items/**", ["https://a.example"])
    assert policy["allow_headers"] == ["Content-Type"]  # the regex left off, not '*'
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 6  # 3 vary_header, allow_headers, the path, the origins
    assert result.stderr.splitlines()[-1] == "1 policies from Flask-CORS"


def test_apply_dry_run_prints_the_changes_and_writes_nothing(app: Flask, runner: Any) -> None:
    args = ("import-flask-cors", "--app", f'{APPS}:create_app("seed")', "--apply", "--dry-run")
    result = invoke(runner, *args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "+ policy flask-cors-api (1 rule added)" in lines
    assert "+ policy flask-cors-hello_world (1 rule added)" in lines
    assert lines[-1] == "dry run: nothing was written (2 policies would change)"
    with app.app_context():
        assert CorsAdmin.state(app).store("test").policies() == []


def test_apply_twice_changes_nothing_the_second_time(app: Flask, runner: Any) -> None:
    args = ("import-flask-cors", "--app", f'{APPS}:create_app("credentials")', "--apply")
    first = invoke(runner, *args)
    assert first.stdout.splitlines()[-1] == (
        "imported from Flask-CORS: 1 created, 0 updated, 0 deleted, 0 unchanged"
    )
    second = invoke(runner, *args)
    assert second.stdout.splitlines() == [
        "importing from Flask-CORS would change nothing",
        "imported from Flask-CORS: 0 created, 0 updated, 0 deleted, 1 unchanged",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--dry-run",),
            "error: --dry-run goes with --apply (without --apply nothing is written anyway)",
        ),
        (
            ("--app", "tests.support.no_such_module:app"),
            "error: --app tests.support.no_such_module:app: ",
        ),
        (
            ("--app", f"{APPS}:plain_app"),
            "error: no Flask-CORS configuration in the application 'flask_cors_plain': no "
            "CORS(app) and no @cross_origin view (is --app the application that uses "
            "Flask-CORS?)",
        ),
    ],
    ids=["dry-run-alone", "no-such-app", "no-flask-cors"],
)
def test_usage_mistakes_are_one_line_errors(
    runner: Any, args: tuple[str, ...], message: str
) -> None:
    lines = user_error(runner, "import-flask-cors", *args)
    assert lines[0].startswith(message)


# --- the translations, form by form --------------------------------------------------------

RULES: Final = ("/api/v1/users/", "/api/items/<int:item_id>", "/static/<path:filename>")


@pytest.mark.parametrize(
    ("resource", "rules", "pattern", "noted"),
    [
        (r"/api/*", RULES, "/api/**", True),  # '/apix' is served by no route
        (r"/api/*", (*RULES, "/apiary"), "/api*/**", False),  # it is: the exact form
        (r"/api/*", (*RULES, "/<page>"), "/api*/**", False),  # a variable may serve '/apix'
        (r"/api/.*", RULES, "/api/**", True),  # also '/api' itself, served by no route
        (r"/api/.*", (*RULES, "/api"), "/api/*/**", False),
        (r"^/api/v1/users/$", RULES, "/api/v1/users/", False),
        (r"/api/v1/users/\Z", RULES, "/api/v1/users/", False),
        ("/api/v1/users/", RULES, "/api/v1/users/", False),  # a literal: the whole path
        (r"/files\.json$", RULES, "/files.json", False),
        (r"/*", RULES, "/**", False),
        (r".*", RULES, "/**", False),
        ("*", RULES, "/**", False),
    ],
)
def test_resource_forms_become_route_patterns(
    resource: str, rules: tuple[str, ...], pattern: str, noted: bool
) -> None:
    from corsadmin.cli.flask_cors_paths import translate_resource

    fixed = ".*" if resource == "*" else resource  # as Flask-CORS's re_fix gives it
    translated = translate_resource(fixed, rules)
    assert translated.pattern == pattern
    assert bool(translated.note) == noted


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        (r"/api/.*/export", "has '.' at 5"),
        (r"/api/(v1|v2)/*", "has '(' at 5"),
        (r"/items/\d+", "has '\\\\' at 7"),
        (re.compile("/API/*", re.IGNORECASE), "a case-insensitive path regex"),
        ("/items/<id>", "holds '<', '>' or '*'"),
        (r"api/*", "does not start with '/'"),
    ],
)
def test_resource_forms_refused_with_the_reason(resource: Any, reason: str) -> None:
    from corsadmin.cli.flask_cors_paths import PathTranslationError, translate_resource

    with pytest.raises(PathTranslationError, match=re.escape(reason)):
        translate_resource(resource, RULES)


@pytest.mark.parametrize(
    ("origin", "rules", "narrowed"),
    [
        ("https://App.Example.com", ["https://app.example.com"], False),
        ("null", ["null"], False),
        (re.compile(r"https://.*\.example\.com$"), ["https://*.example.com"], False),
        (
            re.compile(r"^https?://.*\.example\.com"),
            ["http://*.example.com", "https://*.example.com"],
            True,
        ),
        (re.compile(r"http://localhost:\d+$"), ["http://localhost:*"], False),
        (
            re.compile(r"https://(app|www)\.example\.com$"),
            [r"re:^https://(app|www)\.example\.com$"],
            False,
        ),
    ],
)
def test_origin_forms_become_rules(origin: Any, rules: list[str], narrowed: bool) -> None:
    from corsadmin.cli.flask_cors_origins import translate_origins

    translated = translate_origins([origin])
    assert (translated.rules, translated.refused) == (rules, [])
    assert bool(translated.notes) == narrowed


@pytest.mark.parametrize(
    ("origin", "reason"),
    [
        ("example.com", "must start with a scheme"),
        (re.compile(r"https://.*"), "which are not under a site it names"),
        (re.compile(r"https://(?!evil).*\.example\.com$"), "lookaround"),
    ],
)
def test_origin_forms_refused_with_the_reason(origin: Any, reason: str) -> None:
    from corsadmin.cli.flask_cors_origins import translate_origins

    translated = translate_origins([origin])
    assert translated.rules == []
    [(given, why)] = translated.refused
    assert given == (origin.pattern if isinstance(origin, re.Pattern) else origin)
    assert reason in why


def test_blueprint_cors_is_named_as_unsupported() -> None:
    from flask import Blueprint
    from flask_cors import CORS

    from corsadmin.cli.flask_cors_reader import read_flask_cors
    from corsadmin.cli.flask_cors_translate import translate

    app = Flask("blueprint_app")
    bp = Blueprint("partner", __name__)
    bp.add_url_rule("/partner/x", "x", lambda: "x")
    CORS(bp, origins="https://a.example")
    app.register_blueprint(bp)
    translation = translate(read_flask_cors(app))
    assert translation.policies == []
    [item] = translation.unsupported
    assert (item.place, item.option, item.drops_policy) == (
        "CORS(blueprint 'partner')",
        "resources",
        True,
    )


def test_without_app_the_command_reads_the_application_it_runs_in(database_url: str) -> None:
    host = make_twin(database_url, "seed", flask_cors=True)
    try:
        result = invoke(host.app.test_cli_runner(), "import-flask-cors")
        assert result.exit_code == 0, (result.output, result.exception)
        document = json.loads(result.stdout)
        paths = {p["path"]: p["origins"] for p in document["policies"]}
        assert paths == {"/": ["*"], "/api/**": ["*"]}
    finally:
        close_host(host)


# --- the deliberate differences, one by one ---------------------------------------------------


@pytest.mark.parametrize("twins", ["seed"], indirect=True)
def test_paths_only_flask_cors_covered_are_404s_and_said_so(twins: tuple[Flask, Host]) -> None:
    flask_cors_app, host = twins
    runner = host.app.test_cli_runner()
    result = invoke(runner, "import-flask-cors", "--app", f'{APPS}:create_app("seed")', "--apply")
    assert result.exit_code == 0, result.output
    assert (
        "note: resource r'/api/*': path: Flask-CORS also covered paths merely starting with "
        "'/api' (as '/apix'); no route serves one, so they are left out"
    ) in result.stderr.splitlines()
    origin = "https://app.example.com"
    before = send(flask_cors_app, "/apiary", "GET", origin, None, None)
    after = send(host.app, "/apiary", "GET", origin, None, None)
    assert (before.status_code, after.status_code) == (404, 404)
    assert cors_headers(before) == {"access-control-allow-origin": [origin]}
    assert cors_headers(after) == {}


@pytest.mark.parametrize("twins", ["credentials"], indirect=True)
def test_a_request_without_origin_gets_no_listed_origins(twins: tuple[Flask, Host]) -> None:
    flask_cors_app, host = twins
    import_example(host.app, "credentials")
    before = send(flask_cors_app, "/api/v1/users/", "GET", None, None, None)
    after = send(host.app, "/api/v1/users/", "GET", None, None, None)
    # Flask-CORS's always_send: the listed origins, sorted (its MultiDict keeps the first)
    assert before.headers.getlist("Access-Control-Allow-Origin") == ["http://localhost:3000"]
    assert cors_headers(after) == {}
    assert varies_on_origin(after)


@pytest.mark.parametrize("twins", ["seed"], indirect=True)
def test_any_origin_is_answered_with_a_star_instead_of_the_echo(twins: tuple[Flask, Host]) -> None:
    flask_cors_app, host = twins
    document = import_example(host.app, "seed")
    assert {p["name"]: p["priority"] for p in document["policies"]} == {
        "flask-cors-hello_world": 1,  # the decorated view wins, as in Flask-CORS
        "flask-cors-api": 0,
    }
    origin = "https://anyone.example"
    before = send(flask_cors_app, "/api/v1/users/", "GET", origin, None, None)
    after = send(host.app, "/api/v1/users/", "GET", origin, None, None)
    assert before.headers.getlist("Access-Control-Allow-Origin") == [origin]
    assert varies_on_origin(before)
    assert after.headers.getlist("Access-Control-Allow-Origin") == ["*"]
    assert not varies_on_origin(after)


def test_two_cors_extensions_keep_flask_cors_order_and_say_what_differs() -> None:
    from flask_cors import CORS

    from corsadmin.cli.flask_cors_reader import read_flask_cors
    from corsadmin.cli.flask_cors_translate import translate

    app = Flask("two_extensions")
    CORS(app, resources={r"/a/.*": {"origins": "https://first.example"}})
    CORS(app, resources={r"/b/.*": {"origins": "https://second.example"}})
    translation = translate(read_flask_cors(app))
    # Flask runs after_request functions last registered first: the second CORS(app) first.
    assert [(p["path"], p["priority"]) for p in translation.policies] == [
        ("/b/**", 1),
        ("/a/**", 0),
    ]
    assert translation.notes[-1].startswith("CORS(app) was called 2 times:")


def test_a_path_imported_twice_is_named_and_the_first_wins() -> None:
    from flask_cors import CORS, cross_origin

    from corsadmin.cli.flask_cors_reader import read_flask_cors
    from corsadmin.cli.flask_cors_translate import translate

    app = Flask("same_path")

    @app.get("/report")
    @cross_origin(origins="https://view.example")
    def report() -> str:
        return "report"

    CORS(app, resources={"/report": {"origins": "https://resource.example"}})
    translation = translate(read_flask_cors(app))
    assert [(p["path"], p["origins"]) for p in translation.policies] == [
        ("/report", ["https://view.example"])
    ]
    [item] = translation.unsupported
    assert str(item) == (
        "resource r'/report': path: '/report' is already imported from view 'report' "
        "(@cross_origin), which wins in Flask-CORS too (--skip-unsupported: the policy is "
        "left out)"
    )


@pytest.mark.parametrize("twins", ["credentials"], indirect=True)
def test_an_origin_not_as_browsers_send_it_is_refused(twins: tuple[Flask, Host]) -> None:
    flask_cors_app, host = twins
    import_example(host.app, "credentials")
    origin = "https://APP.example.com"  # Flask-CORS compares literals case-insensitively
    before = send(flask_cors_app, "/api/v1/users/", "GET", origin, None, None)
    after = send(host.app, "/api/v1/users/", "GET", origin, None, None)
    assert before.headers.getlist("Access-Control-Allow-Origin") == [origin]
    assert cors_headers(after) == {}
    assert varies_on_origin(after)


def test_manage_py_imports_in_one_command(tmp_path: Path) -> None:
    """The standalone app's entry point, in a subprocess: import, then export."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLASK_", "CORSADMIN_")) and k != "DATABASE_URL"
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'moved.sqlite'}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = (sys.executable, "manage.py", *args)
        return subprocess.run(
            command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    assert run("db", "upgrade").returncode == 0
    app_arg = f'{APPS}:create_app("app_based")'
    moved = run("corsadmin", "import-flask-cors", "--app", app_arg, "--apply")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.splitlines()[-1] == (
        "imported from Flask-CORS: 1 created, 0 updated, 0 deleted, 0 unchanged"
    )
    exported = run("corsadmin", "export")
    [policy] = json.loads(exported.stdout)["policies"]
    assert (policy["name"], policy["path"], policy["origins"], policy["allow_headers"]) == (
        "flask-cors-api",
        "/api/**",
        ["*"],
        ["Content-Type"],
    )


def test_apply_with_url_imports_through_the_api(app: Flask, runner: Any) -> None:
    """``corsadmin --url ... import-flask-cors --app ... --apply``: the console script
    (no database, no app of its own) reads the Flask-CORS app and imports through the
    API; the lines are the local command's."""
    from tests.support.api import new_token
    from tests.support.remote import Remote
    from tests.support.servers import serve_wsgi_in_thread

    app_arg = f'{APPS}:create_app("view_based")'
    with serve_wsgi_in_thread(app) as base:
        remote = Remote(f"{base}/corsadmin", new_token(app, "ci", "write"))
        dry = remote.run("import-flask-cors", "--app", app_arg, "--apply", "--dry-run")
        assert dry.code == 0, dry
        assert dry.out.splitlines()[-1] == "dry run: nothing was written (2 policies would change)"
        done = remote.run("import-flask-cors", "--app", app_arg, "--apply")
        again = remote.run("import-flask-cors", "--app", app_arg, "--apply")
        no_app = remote.run("import-flask-cors")
    assert done.out.splitlines()[-1] == (
        "imported from Flask-CORS: 2 created, 0 updated, 0 deleted, 0 unchanged"
    )
    assert "+ policy flask-cors-hello_world (1 rule added)" in done.out.splitlines()
    assert again.out.splitlines() == [
        "importing from Flask-CORS would change nothing",
        "imported from Flask-CORS: 0 created, 0 updated, 0 deleted, 2 unchanged",
    ]
    assert (no_app.code, no_app.err) == (
        1,
        "error: with --url, name the application using Flask-CORS: --app module:app\n",
    )
    with app.app_context():
        names = {p.name for p in CorsAdmin.state(app).store("test").policies()}
    assert names == {"flask-cors-hello_world", "flask-cors-cross_origin_json_post"}


@pytest.mark.parametrize(
    ("max_age", "expected", "refused"),
    [
        (600, 600, False),
        ("600", 600, False),
        (timedelta(minutes=5), 300, False),
        (0, None, False),  # Flask-CORS sends no falsy max_age: the browser's default
        ("ten minutes", None, True),
    ],
)
def test_max_age_forms(max_age: Any, expected: int | None, refused: bool) -> None:
    from flask_cors import CORS

    from corsadmin.cli.flask_cors_reader import read_flask_cors
    from corsadmin.cli.flask_cors_translate import translate

    app = Flask("max_age")
    CORS(app, origins="https://a.example", max_age=max_age)
    translation = translate(read_flask_cors(app))
    [policy] = translation.policies
    assert policy["max_age"] == expected
    assert [u.option for u in translation.unsupported] == (["max_age"] if refused else [])
