"""The admin UI's forms (Flask-WTF: every POST carries its CSRF token).

The forms only carry text: every rule about what a policy may hold lives in
:mod:`corsadmin.policy.spec`, which the CLI and the import use too. A form turns its
fields into document fields (:func:`policy_data`); the store validates them;
:func:`show_errors` puts each :class:`~corsadmin.errors.FieldError` beside the
field it is about, and the form keeps what the operator typed.
"""

from __future__ import annotations

import re
from typing import Any, assert_never

from flask_wtf import FlaskForm  # type: ignore[import-untyped]
from wtforms import (  # type: ignore[import-untyped]
    BooleanField,
    Field,
    HiddenField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)

from ..db.tokens import READ, SCOPES
from ..errors import ValidationError
from ..policy.fields import FIELD, FIELDS, STANDARD_METHODS, Kind, PolicyField

_LIST_SPLIT = re.compile(r"[,\s]+")
_INT = re.compile(r"[+-]?[0-9]{1,12}")


class VersionedForm(FlaskForm):  # type: ignore[misc]
    """A change based on one version of a policy (refused if the policy moved on)."""

    version = HiddenField()

    def expected_version(self) -> int | None:
        text = (self.version.data or "").strip()
        return int(text) if text.isdigit() else None


class OriginForm(VersionedForm):
    """Allow one more origin (a rule the policy has is changed with :class:`EditOriginForm`)."""

    #: Set when the typed origin is allowed already: the page links to its edit form.
    existing: str | None = None

    origin = StringField(
        "Origin",
        description="https://app.partner.example, https://*.partner.example, "
        "http://localhost:*, re:..., null or *",
    )
    note = StringField("Note", description="Who asked, which ticket.")
    expires = StringField("Expires", description="Optional. A date (UTC) or an ISO 8601 time.")


class EditOriginForm(VersionedForm):
    """Change an allowed origin rule's note or expiry (the rule itself stays)."""

    origin = HiddenField()
    note = StringField("Note", description="Who asked, which ticket. Empty: no note.")
    expires = StringField(
        "Expires",
        description="A date (UTC) or an ISO 8601 time. Empty: the rule never expires.",
    )


class MethodsField(SelectMultipleField):  # type: ignore[misc]
    """The methods as checkboxes: the standard ones (:data:`STANDARD_METHODS`), and
    any other method the policy holds or the operator sent (so an edit never drops
    one set through the CLI or the API). Its data is a list of method names; the
    validation layer checks them (a typed method goes on as typed, so it names it)."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()

    def __init__(self, label: str, **kwargs: Any) -> None:
        kwargs.setdefault("choices", list(STANDARD_METHODS))
        super().__init__(label, validate_choice=False, **kwargs)

    def process_formdata(self, valuelist: list[str]) -> None:
        self.data = ticked(valuelist)

    def iter_choices(self) -> list[Any]:
        data = [str(v) for v in (self.data or ())]
        extra = [m for m in dict.fromkeys(data) if m not in STANDARD_METHODS]
        self.choices = list(STANDARD_METHODS) + extra
        return list(super().iter_choices())


def policy_form_field(field: PolicyField) -> Field:
    """The form field of a policy field: its label and hint from the table of fields."""
    if field.name == "methods":
        return MethodsField(field.label, description=field.hint)
    match field.kind:
        case Kind.BOOL:
            return BooleanField(field.label, description=field.hint)
        case Kind.MULTILINE | Kind.ORIGINS:
            return TextAreaField(field.label, description=field.hint)
        case Kind.TEXT | Kind.PATH | Kind.TOKENS | Kind.INT | Kind.OPTIONAL_INT:
            return StringField(field.label, description=field.hint)
        case _:
            assert_never(field.kind)


class SettingsForm(VersionedForm):
    """A policy's settings (everything but its origin rules): a field for each of
    :data:`corsadmin.policy.fields.FIELDS`, of the same name, added below."""


#: The policy fields the settings form has (the origin rules are changed on their own).
SETTINGS_FIELDS = tuple(f for f in FIELDS if f.kind is not Kind.ORIGINS)
for _field in SETTINGS_FIELDS:
    setattr(SettingsForm, _field.name, policy_form_field(_field))


class NewPolicyForm(SettingsForm):
    origins = policy_form_field(FIELD["origins"])


class ConfirmForm(VersionedForm):
    """A yes to a confirmation page (disable, enable, delete, remove an origin)."""

    origin = HiddenField()


class ReviewForm(VersionedForm):
    comment = StringField("Comment", description="What you checked, what you decided.")


class DraftForm(VersionedForm):
    """Promote or discard the active draft: its version is the draft's (refused if the
    draft changed since the page was loaded)."""


class DraftReasonForm(VersionedForm):
    """Why the active draft is proposed (its version is the draft's)."""

    reason = TextAreaField(
        "Reason",
        description="Why this change is proposed: the ticket, who asked, what it is for.",
    )


class AllowRefusedForm(VersionedForm):
    """Allow a refused origin into its policy, after the confirmation page."""

    note = StringField("Note", description="Who asked, which ticket.")
    expires = StringField("Expires", description="Optional: 2027-03-01 or an ISO 8601 time.")


class DismissRefusedForm(FlaskForm):  # type: ignore[misc]
    """Hide a refused origin from the report until it is refused again (a POST with
    its CSRF token; the row names the policy and the origin)."""

    policy = HiddenField()
    origin = HiddenField()
    chosen = HiddenField()  # the report's policy filter, kept after the redirect


class CheckForm(FlaskForm):  # type: ignore[misc]
    """The "check a request" inputs (a GET form: it changes nothing)."""

    class Meta:
        csrf = False

    origin = StringField("Origin")
    path = StringField("Path")
    method = StringField("Method", default="GET")
    headers = TextAreaField(
        "Request headers",
        description="One a line: a name, or 'Name: value' (a value lets Content-Type "
        "count as simple).",
    )
    private_network = BooleanField("The page reaches a private network")


class LoginForm(FlaskForm):  # type: ignore[misc]
    name = StringField("Operator name")
    password = PasswordField("Password")
    next = HiddenField()


class LogoutForm(FlaskForm):  # type: ignore[misc]
    """Only the CSRF token: logging out is a POST too."""


class TokenForm(FlaskForm):  # type: ignore[misc]
    """A new API token (the store checks every field: its messages go beside them)."""

    name = StringField(
        "Name", description="Who uses it: lower-case letters, digits, '.', '_', '-'."
    )
    scope = SelectField(
        "Scope",
        choices=list(SCOPES),
        default=READ,
        validate_choice=False,
        description="read: look only. write: change the policy too.",
    )
    expires = StringField(
        "Expires",
        description="A date (UTC) or an ISO 8601 time. Empty: it never expires.",
    )


class RevokeTokenForm(FlaskForm):  # type: ignore[misc]
    """Only the CSRF token: the yes to revoking a token."""


# --- turning fields into document fields ----------------------------------------------


def split_list(text: str | None) -> list[str]:
    """``"GET, POST PUT"`` -> ``["GET", "POST", "PUT"]``."""
    return [part for part in _LIST_SPLIT.split(text or "") if part]


def number(text: str | None, *, empty: object = "") -> object:
    """A whole number typed as text; anything else goes on to the validation layer
    as typed, which names the problem (``"" -> empty``)."""
    stripped = (text or "").strip()
    if not stripped:
        return empty
    return int(stripped) if _INT.fullmatch(stripped) else stripped


def policy_data(form: SettingsForm) -> dict[str, Any]:
    """The settings form as document fields (see docs/policy-document.md)."""
    fields = form._fields
    return {f.name: read_field(f.kind, fields[f.name].data) for f in FIELDS if f.name in fields}


def ticked(data: Any) -> list[str]:
    """The methods checkboxes' data as a document's list (a value holding commas or
    spaces, as a script may post, is split like the text field it replaces)."""
    if isinstance(data, list | tuple):
        return [part.upper() for item in data for part in split_list(str(item))]
    return split_list(data)


def read_field(kind: Kind, text: Any) -> Any:
    """What a form field of this kind holds, as a document's field (a value the
    validation layer refuses goes on as typed, so it names the problem)."""
    match kind:
        case Kind.TEXT | Kind.PATH:
            return (text or "").strip()
        case Kind.MULTILINE:
            return text or ""
        case Kind.TOKENS:
            return ticked(text)
        case Kind.BOOL:
            return bool(text)
        case Kind.INT:
            return number(text)
        case Kind.OPTIONAL_INT:
            return number(text, empty=None)
        case Kind.ORIGINS:
            return [line.strip() for line in (text or "").splitlines() if line.strip()]
        case _:
            assert_never(kind)


def fill_settings(form: SettingsForm, document: dict[str, Any], version: int) -> None:
    """Put a stored policy's fields in the settings form (a GET)."""
    for field in SETTINGS_FIELDS:
        form[field.name].data = _shown_in(form, field, document[field.name])
    form.version.data = str(version)


def fill_defaults(form: SettingsForm) -> None:
    """Put the defaults of the fields that have one in a new policy's form (a GET)."""
    for field in SETTINGS_FIELDS:
        if not field.required:
            form[field.name].data = _shown_in(form, field, field.default)


def _shown_in(form: SettingsForm, field: PolicyField, value: Any) -> Any:
    """A document's field as its form field holds it (the checkboxes: a list)."""
    if isinstance(form[field.name], MethodsField):
        return list(value)
    return shown_field(field.kind, value)


def shown_field(kind: Kind, value: Any) -> Any:
    """A document's field of this kind as its form field shows it."""
    match kind:
        case Kind.TEXT | Kind.PATH | Kind.MULTILINE | Kind.BOOL:
            return value
        case Kind.TOKENS:
            return ", ".join(value)
        case Kind.INT:
            return str(value)
        case Kind.OPTIONAL_INT:
            return "" if value is None else str(value)
        case Kind.ORIGINS:
            return "\n".join(e if isinstance(e, str) else e["origin"] for e in value)
        case _:
            assert_never(kind)


# --- errors beside their fields ---------------------------------------------------------------

_INDEX = re.compile(r"^(?P<base>[a-z_]+)(?:\[(?P<index>[0-9]+)\])?(?:\.(?P<sub>[a-z_]+))?$")


def field_for(form: FlaskForm, field_name: str) -> tuple[Field | None, str]:
    """The form field a validation error is about, and a prefix for its message.

    ``origins[2]`` on a form with an ``origins`` text area is its line 3;
    ``methods[1]`` is the methods field; ``origins[0].expires`` on the
    one-origin form is its expires field. None: a form-level error.
    """
    match = _INDEX.match(field_name)
    if match is None:
        return None, f"{field_name}: " if field_name else ""
    base, index, sub = match["base"], match["index"], match["sub"]
    fields: dict[str, Field] = dict(form._fields)
    if sub and sub in fields and base == "origins" and "origins" not in fields:
        return fields[sub], ""
    if base in fields:
        if base == "origins" and index is not None:
            return fields[base], f"line {int(index) + 1}: "
        if index is not None and sub is None:
            return fields[base], ""
        if sub is None:
            return fields[base], ""
    if base == "origins" and "origin" in fields:
        return fields["origin"], ""
    return None, f"{field_name}: "


def show_errors(form: FlaskForm, error: ValidationError) -> None:
    """Attach each problem to its field (or to the form as a whole)."""
    for problem in error.errors:
        target, prefix = field_for(form, problem.field)
        message = prefix + problem.message
        if target is None:
            form.form_errors.append(message)
        else:
            errors = list(target.errors) if isinstance(target.errors, list | tuple) else []
            errors.append(message)
            target.errors = errors


def csrf_failed(form: FlaskForm) -> bool:
    """The POST came without a valid CSRF token (missing, expired, from another site)."""
    return "csrf_token" in form.errors
