"""A policy field declared once: ``corsadmin/policy/fields.py``'s table drives every part.

Each field of the table is checked to be everywhere it must be (the spec, its
validator, the model, the migrated table, the document and its documentation, the
admin form, the CLI's options and ``policy show``), and a policy with a value other
than the default in every field goes through every way in and out unchanged: the
document, the store and both loaders, on SQLite and PostgreSQL; the admin settings
form; the CLI. The values are made from each field's kind, so a field added to the
table is covered without touching this file.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from corsadmin import PolicyStore
from corsadmin.admin.forms import (
    SETTINGS_FIELDS,
    NewPolicyForm,
    SettingsForm,
    fill_defaults,
    fill_settings,
    policy_data,
)
from corsadmin.cli.policies import policy_add, policy_update
from corsadmin.db import operators
from corsadmin.db.loader import load_specs
from corsadmin.db.models import Policy
from corsadmin.errors import ValidationError
from corsadmin.policy.document import parse_document
from corsadmin.policy.fields import (
    CLI_FIELDS,
    FIELD,
    FIELD_NAMES,
    FIELDS,
    PAGE_FIELDS,
    PLAIN_FIELDS,
    SHOW_FIELDS,
    Kind,
    PolicyField,
    default_text,
    in_order,
)
from corsadmin.policy.spec import POLICY_FIELDS, VALIDATORS, PolicySpec, validate_policy
from corsadmin.state import state

REPO = Path(__file__).resolve().parent.parent
PREFIX = "/corsadmin"
PASSWORD = "correct horse battery"


def other_value(field: PolicyField) -> Any:
    """A valid document value of ``field`` that is not its default (by its kind)."""
    match field.kind:
        case Kind.TEXT:
            return "every-field"
        case Kind.PATH:
            return "/every/<int:id>/**"
        case Kind.MULTILINE:
            return "Line one\nline two"
        case Kind.ORIGINS:
            return ["https://app.example", {"origin": "https://b.example", "note": "ticket 9"}]
        case Kind.TOKENS:
            return ["X-Every", "X-Field"]
        case Kind.BOOL:
            return not field.default
        case Kind.INT:
            assert isinstance(field.default, int)
            return field.default + 7
        case Kind.OPTIONAL_INT:
            return 86400


#: A policy with a value other than the default in every field of the table.
EVERY_FIELD: dict[str, Any] = {f.name: other_value(f) for f in FIELDS}
#: The same policy with every field that has a default left out (so it takes it).
DEFAULTS_ONLY: dict[str, Any] = {f.name: EVERY_FIELD[f.name] for f in FIELDS if f.required}


def test_the_document_order_is_the_tables() -> None:
    assert POLICY_FIELDS == FIELD_NAMES
    assert list(validate_policy(EVERY_FIELD).to_document()) == list(FIELD_NAMES)
    assert len(set(FIELD_NAMES)) == len(FIELDS)


def test_an_older_order_puts_the_fields_it_does_not_name_last_and_refuses_a_stranger() -> None:
    newer = PolicyField("zz_newer", Kind.INT, "Newer", default=1)
    ordered = in_order((newer, *FIELDS), first=("enabled", "name"))
    assert [f.name for f in ordered[:3]] == ["enabled", "name", "zz_newer"]
    assert [f.name for f in ordered[3:]] == [n for n in FIELD_NAMES if n not in ("enabled", "name")]
    with pytest.raises(ValueError, match="not among the fields ordered: nmae"):
        in_order(FIELDS, first=("nmae",))


def test_every_field_is_an_attribute_of_the_spec_with_the_tables_default() -> None:
    attributes = {a.name: a for a in dataclasses.fields(PolicySpec)}
    assert set(attributes) == set(FIELD_NAMES)
    for field in FIELDS:
        if not field.required:
            assert attributes[field.name].default == field.default, field.name


def test_every_field_has_a_validator_that_names_it() -> None:
    assert set(VALIDATORS) == set(FIELD_NAMES)
    for field in FIELDS:
        if field.kind is not Kind.TEXT:  # a name of any value is refused for its pattern
            wrong: object = "not this" if field.kind is not Kind.MULTILINE else 7
            with pytest.raises(ValidationError) as caught:
                validate_policy({**EVERY_FIELD, field.name: wrong})
            assert {e.field.split("[")[0] for e in caught.value.errors} == {field.name}


def test_a_left_out_field_takes_the_tables_default() -> None:
    spec = validate_policy(DEFAULTS_ONLY)
    for field in FIELDS:
        if not field.required:
            assert getattr(spec, field.name) == field.default, field.name


def test_the_values_other_than_the_defaults_are_valid_and_other() -> None:
    spec = validate_policy(EVERY_FIELD)
    for field in FIELDS:
        if not field.required:
            assert getattr(spec, field.name) != field.default, field.name


def test_every_field_is_documented_in_the_policy_document_page() -> None:
    text = (REPO / "docs" / "policy-document.md").read_text(encoding="utf-8")
    section = text.split("## Fields of a policy", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (yes|no) \|", section, re.M)
    documented = {name: required == "yes" for name, required in rows}
    declared = {f.name: f.required for f in FIELDS}
    assert documented == declared, "docs/policy-document.md's table of fields is not the table's"


def test_every_plain_field_is_a_column_of_the_model_nullable_only_when_optional() -> None:
    columns = Policy.__table__.columns
    for field in PLAIN_FIELDS:
        assert field.name in columns, field.name
        assert columns[field.name].nullable == (field.kind is Kind.OPTIONAL_INT), field.name
    assert "path" in columns
    assert {f.name for f in FIELDS if not f.plain} == {"path", "origins"}


def test_every_plain_field_is_a_column_of_the_migrated_table(store: PolicyStore) -> None:
    engine = store.session.get_bind()
    migrated = {c["name"]: c for c in sa.inspect(engine).get_columns("corsadmin_policy")}
    for field in PLAIN_FIELDS:
        assert field.name in migrated, field.name
        assert migrated[field.name]["nullable"] == (field.kind is Kind.OPTIONAL_INT), field.name


def test_a_policy_with_every_field_set_goes_through_the_store_and_both_loaders(
    store: PolicyStore,
) -> None:
    expected = validate_policy(EVERY_FIELD)
    assert store.create_policy(EVERY_FIELD) == expected
    store.session.expire_all()
    assert store.spec(expected.name) == expected  # ORM object -> spec
    with store.session.get_bind().connect() as connection:
        _, loaded = load_specs(connection)  # plain rows -> spec (the snapshot's way)
    assert loaded == [expected]
    document = store.export_document()
    assert parse_document(document) == [expected]
    assert document["policies"][0]["origins"] == [
        "https://app.example",
        {"origin": "https://b.example", "note": "ticket 9"},
    ]
    assert {k: v for k, v in document["policies"][0].items() if k != "origins"} == {
        k: v for k, v in expected.to_document().items() if k != "origins"
    }


def test_an_update_of_every_plain_field_is_stored(store: PolicyStore) -> None:
    store.create_policy(DEFAULTS_ONLY)
    changes = {f.name: EVERY_FIELD[f.name] for f in FIELDS if not f.required}
    store.update_policy(DEFAULTS_ONLY["name"], changes)
    store.session.expire_all()
    assert store.spec(DEFAULTS_ONLY["name"]) == validate_policy(EVERY_FIELD)


# --- the admin settings form -------------------------------------------------------------------


@pytest.fixture
def form_context() -> Iterator[None]:
    """A request context for building forms (no database needed)."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", WTF_CSRF_ENABLED=False)
    with app.test_request_context():
        yield


KIND_OF_FORM_FIELD = {
    Kind.TEXT: "StringField",
    Kind.PATH: "StringField",
    Kind.MULTILINE: "TextAreaField",
    Kind.ORIGINS: "TextAreaField",
    Kind.TOKENS: "StringField",
    Kind.BOOL: "BooleanField",
    Kind.INT: "StringField",
    Kind.OPTIONAL_INT: "StringField",
}


@pytest.mark.usefixtures("form_context")
def test_the_settings_form_has_each_field_with_its_label_and_hint() -> None:
    form, new = SettingsForm(), NewPolicyForm()
    assert {f.name for f in SETTINGS_FIELDS} == set(FIELD_NAMES) - {"origins"}
    assert set(form._fields) == {f.name for f in SETTINGS_FIELDS} | {"version"}
    assert set(new._fields) == set(FIELD_NAMES) | {"version"}
    for field in FIELDS:
        shown = new[field.name]
        assert (shown.label.text, shown.description) == (field.label, field.hint)
        assert shown.id == field.name
        expected = "MethodsField" if field.name == "methods" else KIND_OF_FORM_FIELD[field.kind]
        assert shown.type == expected


@pytest.mark.usefixtures("form_context")
@pytest.mark.parametrize("document", [EVERY_FIELD, DEFAULTS_ONLY], ids=["set", "defaults"])
def test_the_settings_form_shows_and_reads_back_every_field(document: dict[str, Any]) -> None:
    spec = validate_policy(document)
    form = SettingsForm()
    fill_settings(form, spec.to_document(), 3)
    assert form.version.data == "3"
    assert validate_policy({**policy_data(form), "origins": list(spec.origins)}) == spec


@pytest.mark.usefixtures("form_context")
def test_a_new_policys_form_starts_from_the_defaults() -> None:
    form = NewPolicyForm()
    fill_defaults(form)
    data = policy_data(form)
    assert data.pop("origins") == []
    data.update(name="fresh", path="/fresh")
    assert validate_policy({**data, "origins": []}) == validate_policy(
        {"name": "fresh", "path": "/fresh", "origins": []}
    )


class _Inputs(HTMLParser):
    """The values a browser would send for a page's form posting to ``action``."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside, self.values = action, False, dict[str, str]()
        self.names: set[str] = set()  # every field's name, an unchecked checkbox's too
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action
        elif self.inside and tag == "input" and a.get("name"):
            self.names.add(a["name"])
            name, value = a["name"], a.get("value", "")
            if a.get("type") == "checkbox" and "checked" in a and name in self.values:
                # Checkboxes sharing a name (the methods): one comma-separated
                # value, which the server splits.
                self.values[name] += f", {value}"
            elif a.get("type") != "checkbox" or "checked" in a:
                self.values[name] = value
        elif self.inside and tag == "textarea":
            self._textarea = a["name"]
            self.names.add(a["name"])
            self.values[self._textarea] = ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.values[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self.inside = False


def _form_values(page: str, action: str) -> dict[str, str]:
    parser = _Inputs(action)
    parser.feed(page)
    return parser.values


def _form_names(page: str, action: str) -> set[str]:
    parser = _Inputs(action)
    parser.feed(page)
    return parser.names


def _logged_in(app: Flask) -> Any:
    with app.app_context():
        operators.add_operator(state(app).db.session, "alice", PASSWORD, actor="tests")
    client = app.test_client()
    login = _form_values(client.get(f"{PREFIX}/login").text, f"{PREFIX}/login")
    response = client.post(f"{PREFIX}/login", data={**login, "name": "alice", "password": PASSWORD})
    assert response.status_code == 302, response.text
    return client


def test_the_new_policy_page_has_an_input_for_every_field(app: Flask) -> None:
    client = _logged_in(app)
    page = client.get(f"{PREFIX}/new").text
    missing = set(FIELD_NAMES) - _form_names(page, f"{PREFIX}/new")
    assert not missing, f"place {missing} in templates/corsadmin/policy_form.html"


def test_the_edit_page_shows_every_field_and_saving_it_as_is_changes_nothing(app: Flask) -> None:
    with app.app_context():
        state(app).store("seed").create_policy(EVERY_FIELD)
        state(app).db.session.remove()
    client = _logged_in(app)
    action = f"{PREFIX}/policies/{EVERY_FIELD['name']}/edit"
    page = client.get(action).text
    values = _form_values(page, action)
    missing = {f.name for f in SETTINGS_FIELDS} - _form_names(page, action)
    assert not missing, f"place {missing} in templates/corsadmin/policy_form.html"
    spec = validate_policy(EVERY_FIELD)
    for field in SETTINGS_FIELDS:
        if field.kind is Kind.BOOL:
            assert (field.name in values) is getattr(spec, field.name), field.name
        else:
            assert values[field.name].strip() != "", field.name
    response = client.post(action, data=values, follow_redirects=True)
    assert response.status_code == 200
    assert "Nothing to save: the settings are as they were." in html.unescape(response.text)
    with app.app_context():
        assert state(app).store("check").spec(spec.name) == spec
        state(app).db.session.remove()


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            EVERY_FIELD,
            [
                ("Methods", "X-EVERY, X-FIELD"),
                ("Allowed request headers", "X-Every, X-Field"),
                ("Exposed response headers", "X-Every, X-Field"),
                ("Credentials", "allowed"),
                ("Private network", "answered"),
                ("Preflight cache", "86400 s"),
                ("Priority", "7"),
            ],
        ),
        (
            {**DEFAULTS_ONLY, "allow_headers": []},
            [
                ("Methods", "GET, HEAD, POST, OPTIONS, PUT, PATCH, DELETE"),
                ("Allowed request headers", "none"),
                ("Exposed response headers", "none"),
                ("Credentials", "not allowed"),
                ("Private network", "not answered"),
                ("Preflight cache", "browser default"),
                ("Priority", "0"),
            ],
        ),
    ],
    ids=["set", "defaults"],
)
def test_the_policy_page_lists_the_settings_from_the_table(
    app: Flask, document: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    with app.app_context():
        state(app).store("seed").create_policy(document)
        state(app).db.session.remove()
    page = _logged_in(app).get(f"{PREFIX}/policies/{document['name']}").text
    settings = page.split('<dl class="settings">', 1)[1].split("</dl>", 1)[0]
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", settings)
    path = validate_policy(document).path.text
    assert pairs[0] == ("Path pattern", f"<code>{html.escape(path)}</code>")
    lines = [(label, html.unescape(text)) for label, text in pairs[1:-2]]
    assert lines[: len(expected)] == expected  # then a newer field's line, if any
    assert [label for label, _ in lines] == [f.page.label for f in PAGE_FIELDS if f.page]
    assert [label for label, _ in pairs[-2:]] == ["Version", "Created"]


# --- the CLI -----------------------------------------------------------------------------------


def test_every_field_but_name_and_path_is_an_option_of_add_and_update() -> None:
    assert {f.name for f in CLI_FIELDS} == set(FIELD_NAMES) - {"name", "path"}
    for command in (policy_add, policy_update):
        options = {p.name: p for p in command.params if isinstance(p, click.Option)}
        names = [p.name for p in command.params if p.name in FIELD]
        assert names[-len(CLI_FIELDS) :] == [f.name for f in CLI_FIELDS]
        for field in CLI_FIELDS:
            assert field.cli is not None
            option = options[field.name]
            assert field.cli.spelling.split("/")[0] in option.opts
            default = default_text(field) if command is policy_add else None
            suffix = "" if default is None else f" Default: {default}."
            assert option.help == field.cli.help + suffix


def _cli_arguments(field: PolicyField, value: Any) -> list[str]:
    """``value`` as the options of ``policy add`` give it."""
    assert field.cli is not None
    on, _, off = field.cli.spelling.partition("/")
    if field.kind is Kind.BOOL:
        return [on if value else off]
    if isinstance(value, list):
        return [
            a for item in value for a in (on, item if isinstance(item, str) else item["origin"])
        ]
    return [on, str(value)]


def test_policy_add_sets_every_field_and_show_prints_each(
    runner: FlaskCliRunner, app: Flask
) -> None:
    arguments = [EVERY_FIELD["name"], EVERY_FIELD["path"]]
    for field in CLI_FIELDS:
        arguments += _cli_arguments(field, EVERY_FIELD[field.name])
    added = runner.invoke(args=["corsadmin", "policy", "add", *arguments])
    assert added.exit_code == 0, added.output
    with app.app_context():
        stored = state(app).store("check").spec(EVERY_FIELD["name"])
        state(app).db.session.remove()
    assert stored == validate_policy(
        {**EVERY_FIELD, "origins": ["https://app.example", "https://b.example"]}
    )
    shown = runner.invoke(args=["corsadmin", "policy", "show", EVERY_FIELD["name"]])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    labels = [m[1] for line in lines if (m := re.match(r"  ([a-z ]+):", line))]
    assert labels[: len(SHOW_FIELDS)] == [f.show.label for f in SHOW_FIELDS if f.show]
    assert "  description:       Line one" in lines
    assert "  review every:      97 days" in lines
    assert "  max age:           86400" in lines
