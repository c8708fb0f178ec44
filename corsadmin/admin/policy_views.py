"""Policies: the list, one policy, its origin rules and settings, and the changes.

Every change goes through :func:`.saving.save`: a POST with its CSRF token and the
version of the policy the operator saw, refused if the policy moved on since
(nothing is overwritten), then a redirect that says when every worker enforces it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flask import abort, render_template, request, url_for
from werkzeug.wrappers import Response

from ..db import review as review_reads
from ..db.export import settings_spec
from ..db.models import OriginRuleRow, Policy, utcnow
from ..engine.review import (
    expiry_state,
    is_stale,
    policy_risks,
    review_status,
    rule_risks,
)
from ..errors import OriginRuleNotFound, PolicyNotFound, StaleVersion, ValidationError
from ..policy.fields import PAGE_FIELDS, Kind, value_text
from ..policy.spec import (
    EMPTY_ORIGINS,
    OriginEntry,
    PolicySpec,
    apply_changes,
    format_time,
    parse_origin_entry,
)
from . import queries
from .blueprint import bp, db_session, saved_message, store
from .drafting import draft_store, in_draft, save_or_draft
from .forms import (
    ConfirmForm,
    EditOriginForm,
    NewPolicyForm,
    OriginForm,
    ReviewForm,
    SettingsForm,
    fill_defaults,
    fill_settings,
    policy_data,
)
from .saving import Flash, nothing_changed, refusal, save
from .settings import review_settings

Page = str | tuple[str, int] | Response


def load_policy(name: str) -> Policy:
    """The policy's row (404 if there is none); its origin rules are read only if used."""
    policy = queries.policy_row(db_session(), name)
    if policy is None:
        abort(404, description=str(PolicyNotFound(name)))
    return policy


# --- the list ---------------------------------------------------------------------------------


@bp.get("/")
def policies() -> Page:
    """Every policy: path, origins, flags, last change and review status; a search box.
    No origin rule is loaded: counts are a GROUP BY, the search a query, and only the
    rules not plainly safe by their text are read to flag risky policies."""
    query = request.args.get("q", "").strip()
    now = utcnow()
    session = db_session()
    everything = queries.policy_rows(session)
    wanted = queries.matching_policy_ids(session, query) if query else None
    counts = queries.rule_counts(session)
    risky = queries.risky_policy_ids(session)
    rows = []
    for policy in everything:
        if wanted is not None and policy.id not in wanted:
            continue
        facts = review_reads.policy_facts(policy)
        rows.append(
            {
                "policy": policy,
                "origins": counts.get(policy.id, 0),
                "review": review_status(facts, now),
                "risky": bool(policy_risks(facts)) or policy.id in risky,
            }
        )
    return render_template("corsadmin/policies.html", rows=rows, query=query, total=len(everything))


# --- one policy ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleQuery:
    """What the policy page's search box and paging links ask for, checked."""

    search: str = ""
    after: str | None = None
    before: str | None = None
    error: str | None = None


def _bad_text(text: str, limit: int) -> str | None:
    if len(text) > limit:
        return f"is longer than {limit} characters ({len(text)})"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) <= 0xDFFF for c in text):
        return "must not contain control characters"
    return None


def rule_query() -> RuleQuery:
    """The search (``q``) and the page (``after`` or ``before``) of the request; text
    that cannot be searched for is refused with a message (400), never a 500."""
    search = request.args.get("q", "").strip()
    why = _bad_text(search, queries.MAX_SEARCH_LENGTH)
    if why is not None:
        return RuleQuery(error=f"Search: {why}.")
    cursors = {}
    for key in ("after", "before"):
        value = request.args.get(key) or None
        if value is not None and _bad_text(value, queries.MAX_CURSOR_LENGTH) is not None:
            return RuleQuery(search, error="That page link is not valid: showing the first page.")
        cursors[key] = value
    return RuleQuery(search, cursors["after"], cursors["before"])


def render_policy(
    policy: Policy,
    *,
    origin_form: OriginForm | None = None,
    review_form: ReviewForm | None = None,
    status: int = 200,
) -> Page:
    now = utcnow()
    settings = review_settings()
    facts = review_reads.policy_facts(policy)
    if origin_form is None:
        origin_form = OriginForm(formdata=None, version=str(policy.version))
    asked = rule_query()
    if asked.error is not None and status == 200:
        status = 400
    page = queries.origin_rule_page(
        db_session(), policy, search=asked.search, after=asked.after, before=asked.before
    )
    rules = []
    for row in page.rows:
        rule = review_reads.rule_facts(row)
        rules.append(
            {
                "row": row,
                "expiry": expiry_state(rule, now, settings.expiring_within_days),
                "stale": policy.enabled and is_stale(rule, now, settings.stale_after_days),
                "risks": rule_risks(rule.origin, credentials=policy.credentials),
            }
        )
    html = render_template(
        "corsadmin/policy.html",
        policy=policy,
        settings=settings_lines(settings_spec(policy)),
        rules=rules,
        page=page,
        asked=asked,
        page_size=queries.ORIGIN_PAGE_SIZE,
        max_search=queries.MAX_SEARCH_LENGTH,
        review=review_status(facts, now),
        policy_risks=policy_risks(facts),
        origin_form=origin_form,
        review_form=review_form or ReviewForm(formdata=None, version=str(policy.version)),
        recent=queries.audit_page(db_session(), policy=policy.name, size=5).events,
        drafted=queries.drafted_action(db_session(), policy.name),
    )
    return html, status


def settings_lines(spec: PolicySpec) -> list[tuple[str, str]]:
    """The policy page's Settings list after the path: (label, value) per field."""
    lines = []
    for field in PAGE_FIELDS:
        assert field.page is not None
        value = getattr(spec, field.name)
        if field.kind is Kind.BOOL:
            text = field.page.true if value else field.page.false
        else:
            text = value_text(field.kind, value)
            text = text + field.page.unit if text else field.page.empty
        lines.append((field.page.label, text))
    return lines


@bp.get("/policies/<name>")
def policy(name: str) -> Page:
    """One policy: its settings, its origin rules, the add-an-origin form."""
    return render_policy(load_policy(name))


@bp.post("/policies/<name>/origins")
def add_origin(name: str) -> Page:
    """Allow one more origin on the policy (a rule it has already is left as it is)."""
    load_policy(name)
    form = OriginForm()
    return save_or_draft(
        form,
        lambda: store().allow_origin(
            name,
            (form.origin.data or "").strip(),
            note=form.note.data or "",
            expires=(form.expires.data or "").strip() or None,
            expected_version=form.expected_version(),
            new_only=True,
        ),
        in_draft(lambda: _draft_add_origin(name, form), name),
        page=lambda status: _add_origin_page(name, form, status),
        saved=lambda done: Flash(
            saved_message(f"Saved: {done.entry.rule.text} is allowed on {name}.")
        ),
        drafted_what=lambda entry: f"allow {entry.rule.text} on {name}",
        redirect_to=lambda _: url_for(".policy", name=name),
    )


def _draft_add_origin(name: str, form: OriginForm) -> OriginEntry:
    return draft_store().add_origin(
        name,
        (form.origin.data or "").strip(),
        note=form.note.data or "",
        expires=(form.expires.data or "").strip() or None,
        expected_version=form.expected_version(),
    )


def _add_origin_page(name: str, form: OriginForm, status: int) -> Page:
    policy = load_policy(name)
    if status == 400 and refusal(form) is None:  # the store refused what was typed
        # A rule the policy has already: the form links to that rule's edit form.
        form.existing = _existing_rule(policy, form.origin.data or "")
    return render_policy(policy, origin_form=form, status=status)


def _existing_rule(policy: Policy, typed: str) -> str | None:
    """The stored rule the typed origin is (as stored or normalized), if the policy has it."""
    if _rule(policy, typed.strip()) is not None:
        return typed.strip()
    try:
        text = parse_origin_entry(typed.strip()).rule.text
    except ValidationError:
        return None
    return text if _rule(policy, text) is not None else None


def _rule(policy: Policy, origin: str | None) -> OriginRuleRow | None:
    """The policy's stored rule ``origin`` (one row read, not the policy's every rule)."""
    if not origin:
        return None
    return queries.origin_rule(db_session(), policy, origin)


def _no_rule(name: str, origin: str | None) -> str:
    return f"Policy {name!r} has no origin rule {origin!r}."


def _edit_origin_page(policy: Policy, origin: str, form: EditOriginForm, status: int = 200) -> Page:
    return (
        render_template(
            "corsadmin/edit_origin.html", policy=policy, rule=_rule(policy, origin), form=form
        ),
        status,
    )


@bp.route("/policies/<name>/origins/edit", methods=["GET", "POST"])
def edit_origin(name: str) -> Page:
    """Change an allowed origin rule's note or expiry (never adds a rule)."""
    policy = load_policy(name)
    if request.method == "GET":
        origin = request.args.get("origin", "")
        rule = _rule(policy, origin)
        if rule is None:
            abort(404, description=_no_rule(name, origin))
        form = EditOriginForm(formdata=None)
        form.origin.data = rule.origin
        form.note.data = rule.note or ""
        form.expires.data = format_time(rule.expires_at) if rule.expires_at else ""
        form.version.data = str(policy.version)
        return _edit_origin_page(policy, origin, form)
    form = EditOriginForm()
    origin = form.origin.data or request.args.get("origin", "")
    try:
        return save_or_draft(
            form,
            lambda: store().change_origin(
                name,
                origin,
                note=form.note.data or "",
                expires=(form.expires.data or "").strip(),  # empty: never expires
                expected_version=form.expected_version(),
            ),
            in_draft(lambda: _draft_change_origin(name, origin, form), name, origin),
            page=lambda status: _edit_origin_page(load_policy(name), origin, form, status),
            saved=lambda done: (
                Flash(saved_message(f"Saved: {origin} on {name}: {done.details()}."))
                if done.outcome != "unchanged"
                else nothing_changed(f"Nothing to save: {origin} on {name} is as it was.")
            ),
            drafted_what=lambda entry: f"the note and expiry of {entry.rule.text} on {name}",
            redirect_to=lambda _: url_for(".policy", name=name),
        )
    except OriginRuleNotFound:
        abort(404, description=_no_rule(name, origin))


def _draft_change_origin(name: str, origin: str, form: EditOriginForm) -> OriginEntry:
    return draft_store().change_origin(
        name,
        origin,
        note=form.note.data or "",
        expires=(form.expires.data or "").strip(),  # empty: never expires
        expected_version=form.expected_version(),
    )


# --- settings ------------------------------------------------------------------------------------


def _policy_form_page(form: SettingsForm, policy: Policy | None, status: int = 200) -> Page:
    drafted = queries.drafted_action(db_session(), policy.name) if policy is not None else None
    page = render_template("corsadmin/policy_form.html", form=form, policy=policy, drafted=drafted)
    return page, status


@bp.route("/new", methods=["GET", "POST"])
def new_policy() -> Page:
    """Add a policy: settings and its first origins."""
    form = NewPolicyForm()
    if request.method == "GET":
        fill_defaults(form)
        return _policy_form_page(form, None)
    return save_or_draft(
        form,
        lambda: store().create_policy(policy_data(form)),
        lambda: draft_store().create_policy(policy_data(form)),
        page=lambda status: _policy_form_page(form, None, status),
        saved=lambda spec: Flash(
            saved_message(f"Saved: policy {spec.name} covers {spec.path.text}.")
        ),
        drafted_what=lambda spec: f"a new policy {spec.name} covering {spec.path.text}",
        redirect_to=lambda spec: url_for(".policy", name=spec.name),
        versioned=False,
    )


@bp.route("/policies/<name>/edit", methods=["GET", "POST"])
def edit_policy(name: str) -> Page:
    """Change a policy's settings (its origin rules are changed on its page)."""
    policy = load_policy(name)
    form = SettingsForm()
    if request.method == "GET":
        fill_settings(form, settings_spec(policy).to_document(), policy.version)
        return _policy_form_page(form, policy)
    # Settings only: the form does not change origins, and update_policy of settings
    # returns none.
    before = settings_spec(policy)
    return save_or_draft(
        form,
        lambda: store().update_policy(
            name, policy_data(form), expected_version=form.expected_version()
        ),
        in_draft(
            lambda: draft_store().update_policy(
                name, _edited_settings(form, before), expected_version=form.expected_version()
            ),
            name,
        ),
        page=lambda status: _policy_form_page(form, load_policy(name), status),
        saved=lambda after: (
            Flash(saved_message())
            if replace(after, origins=EMPTY_ORIGINS) != before
            else nothing_changed("Nothing to save: the settings are as they were.")
        ),
        drafted_what=lambda _: f"the settings of {name}",
        redirect_to=lambda after: url_for(".policy", name=after.name),
    )


def _edited_settings(form: SettingsForm, shown: PolicySpec) -> dict[str, Any]:
    """The settings the operator changed on the form, which showed ``shown`` (the live
    ones), each compared as validated (what is refused is said beside its field):
    "Save as draft" proposes those on top of what the draft proposes already, so an
    earlier draft change to another setting is kept."""
    typed = policy_data(form)
    before, after = shown.to_document(), apply_changes(shown, typed).to_document()
    edited = {name: value for name, value in typed.items() if after[name] != before[name]}
    if not edited:
        raise ValidationError.single(
            "", "Nothing to save in the draft: no setting differs from the live policy."
        )
    return edited


# --- confirmed changes: enable, disable, delete, remove an origin ---------------------------------

ACTIONS: dict[str, dict[str, str]] = {
    "enable": {"title": "Enable policy", "button": "Enable", "drafted": "enabling"},
    "disable": {"title": "Disable policy", "button": "Disable", "drafted": "disabling"},
    "delete": {"title": "Delete policy", "button": "Delete for good", "drafted": "deleting"},
}


def _confirm_page(policy: Policy, action: str, form: ConfirmForm, status: int = 200) -> Page:
    listed, count = queries.first_rules(db_session(), policy, queries.ORIGIN_PAGE_SIZE)
    return (
        render_template(
            "corsadmin/confirm.html",
            policy=policy,
            listed=listed,
            count=count,
            action=action,
            labels=ACTIONS[action],
            form=form,
        ),
        status,
    )


def _confirmed_change(name: str, action: str) -> Page:
    policy = load_policy(name)
    if request.method == "GET":
        return _confirm_page(
            policy, action, ConfirmForm(formdata=None, version=str(policy.version))
        )
    form = ConfirmForm()

    def change() -> None:
        if action == "delete":
            store().delete_policy(name, expected_version=form.expected_version())
        else:
            store().set_enabled(name, action == "enable", expected_version=form.expected_version())

    def draft() -> None:
        if action == "delete":
            draft_store().delete_policy(name, expected_version=form.expected_version())
        else:
            draft_store().update_policy(
                name, {"enabled": action == "enable"}, expected_version=form.expected_version()
            )

    if action == "delete":
        done, target = f"Deleted policy {name}.", url_for(".policies")
    else:
        done, target = f"Saved: policy {name} is {action}d.", url_for(".policy", name=name)
    return save_or_draft(
        form,
        change,
        in_draft(draft, name),
        page=lambda status: _confirm_page(load_policy(name), action, form, status),
        saved=lambda _: Flash(saved_message(done)),
        drafted_what=lambda _: f"{ACTIONS[action]['drafted']} policy {name}",
        redirect_to=lambda _: target,
    )


@bp.route("/policies/<name>/enable", methods=["GET", "POST"])
def enable_policy(name: str) -> Page:
    """Enable a policy, after a confirmation."""
    return _confirmed_change(name, "enable")


@bp.route("/policies/<name>/disable", methods=["GET", "POST"])
def disable_policy(name: str) -> Page:
    """Disable a policy (it then matches nothing), after a confirmation."""
    return _confirmed_change(name, "disable")


@bp.route("/policies/<name>/delete", methods=["GET", "POST"])
def delete_policy(name: str) -> Page:
    """Delete a policy and its origin rules, after a confirmation."""
    return _confirmed_change(name, "delete")


def _remove_origin_page(
    policy: Policy, origin: str | None, form: ConfirmForm, status: int = 200
) -> Page:
    return (
        render_template(
            "corsadmin/remove_origin.html",
            policy=policy,
            rule=_rule(policy, origin),
            origin=origin,
            form=form,
        ),
        status,
    )


@bp.route("/policies/<name>/origins/remove", methods=["GET", "POST"])
def remove_origin(name: str) -> Page:
    """Stop allowing one origin rule, after a confirmation."""
    policy = load_policy(name)
    if request.method == "GET":
        origin = request.args.get("origin", "")
        if _rule(policy, origin) is None:
            abort(404, description=_no_rule(name, origin))
        form = ConfirmForm(formdata=None, origin=origin, version=str(policy.version))
        return _remove_origin_page(policy, origin, form)
    form = ConfirmForm()
    origin = form.origin.data

    def change() -> None:
        try:
            store().remove_origin(name, origin or "", expected_version=form.expected_version())
        except (OriginRuleNotFound, ValidationError):
            abort(404, description=_no_rule(name, origin))

    def draft() -> None:
        try:
            draft_store().remove_origin(
                name, origin or "", expected_version=form.expected_version()
            )
        except ValidationError as error:  # not an origin rule at all: said on the form
            raise ValidationError.single("", _no_rule(name, origin)) from error

    return save_or_draft(
        form,
        change,
        in_draft(draft, name, origin),
        page=lambda status: _remove_origin_page(load_policy(name), origin, form, status),
        saved=lambda _: Flash(saved_message(f"Saved: {origin} is no longer allowed on {name}.")),
        drafted_what=lambda _: f"stop allowing {origin} on {name}",
        redirect_to=lambda _: url_for(".policy", name=name),
    )


# --- review ---------------------------------------------------------------------------------------


@bp.post("/policies/<name>/review")
def mark_reviewed(name: str) -> Page:
    """Record that the operator reviewed the policy, with a comment (an audit event)."""
    policy = load_policy(name)
    form = ReviewForm()
    back = request.form.get("back")

    def change() -> None:
        expected = form.expected_version()
        if expected != policy.version:  # stale: refused before taking the write lock
            raise StaleVersion(name, expected or 0, policy.version)
        store().mark_reviewed(name, (form.comment.data or "").strip(), expected_version=expected)

    return save(
        form,
        change,
        page=lambda status: render_policy(load_policy(name), review_form=form, status=status),
        saved=lambda _: Flash(f"Marked {name} as reviewed."),
        redirect_to=lambda _: (
            url_for(".review") if back == "review" else url_for(".policy", name=name)
        ),
    )
