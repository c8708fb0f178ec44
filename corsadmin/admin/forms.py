"""The admin UI's forms (Flask-WTF: every POST carries its CSRF token).

The forms only carry text: every rule about what a policy may hold lives in
:mod:`corsadmin.policy.spec`, which the CLI and the import use too. A form turns its
fields into document fields (:func:`policy_data`); the store validates them;
:func:`show_errors` puts each :class:`~corsadmin.errors.FieldError` beside the
field it is about, and the form keeps what the operator typed.
"""

from __future__ import annotations

import re
from typing import Any

from flask_wtf import FlaskForm  # type: ignore[import-untyped]
from wtforms import (  # type: ignore[import-untyped]
    BooleanField,
    Field,
    HiddenField,
    PasswordField,
    StringField,
    TextAreaField,
)

from ..errors import ValidationError

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


class SettingsForm(VersionedForm):
    """A policy's settings (everything but its origin rules)."""

    name = StringField("Name", description="Lower-case letters, digits, '.', '_' and '-'.")
    path = StringField("Path pattern", description="/api/**, /files/*.json, /items/<int:id>")
    description = TextAreaField("Description")
    methods = StringField("Methods", description="Separated by commas or spaces.")
    allow_headers = StringField(
        "Allowed request headers", description="Names, or * for any. Empty allows none."
    )
    expose_headers = StringField(
        "Exposed response headers", description="Names a page may read. Empty exposes none."
    )
    credentials = BooleanField("Allow credentials (cookies, HTTP authentication)")
    private_network = BooleanField("Answer private network access preflights")
    enabled = BooleanField("Enabled")
    max_age = StringField("Preflight cache (max age)", description="Seconds; empty for none.")
    priority = StringField("Priority", description="Higher wins before specificity.")
    review_every_days = StringField("Review every (days)")


class NewPolicyForm(SettingsForm):
    origins = TextAreaField(
        "Origins", description="One origin rule a line. Empty allows nothing yet."
    )


class ConfirmForm(VersionedForm):
    """A yes to a confirmation page (disable, enable, delete, remove an origin)."""

    origin = HiddenField()


class ReviewForm(VersionedForm):
    comment = StringField("Comment", description="What you checked, what you decided.")


class AllowRefusedForm(VersionedForm):
    """Allow a refused origin into its policy, after the confirmation page."""

    note = StringField("Note", description="Who asked, which ticket.")
    expires = StringField("Expires", description="Optional: 2027-03-01 or an ISO 8601 time.")


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
    data: dict[str, Any] = {
        "name": (form.name.data or "").strip(),
        "path": (form.path.data or "").strip(),
        "description": form.description.data or "",
        "methods": split_list(form.methods.data),
        "allow_headers": split_list(form.allow_headers.data),
        "expose_headers": split_list(form.expose_headers.data),
        "credentials": bool(form.credentials.data),
        "private_network": bool(form.private_network.data),
        "enabled": bool(form.enabled.data),
        "max_age": number(form.max_age.data, empty=None),
        "priority": number(form.priority.data),
        "review_every_days": number(form.review_every_days.data),
    }
    if isinstance(form, NewPolicyForm):
        data["origins"] = [line.strip() for line in (form.origins.data or "").splitlines()]
        data["origins"] = [line for line in data["origins"] if line]
    return data


def fill_settings(form: SettingsForm, document: dict[str, Any], version: int) -> None:
    """Put a stored policy's fields in the settings form (a GET)."""
    form.name.data = document["name"]
    form.path.data = document["path"]
    form.description.data = document["description"]
    form.methods.data = ", ".join(document["methods"])
    form.allow_headers.data = ", ".join(document["allow_headers"])
    form.expose_headers.data = ", ".join(document["expose_headers"])
    form.credentials.data = document["credentials"]
    form.private_network.data = document["private_network"]
    form.enabled.data = document["enabled"]
    form.max_age.data = "" if document["max_age"] is None else str(document["max_age"])
    form.priority.data = str(document["priority"])
    form.review_every_days.data = str(document["review_every_days"])
    form.version.data = str(version)


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
