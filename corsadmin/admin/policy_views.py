"""Policies: the list, one policy, its origin rules and settings, and the changes.

Every change is a POST carrying its CSRF token and the version of the policy
the operator saw; the store refuses a change based on an older version
(:class:`~corsadmin.errors.StaleVersion`) and nothing is overwritten. After a
change the view redirects (a reload never repeats it) and says when every
worker enforces it.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..db.loader import spec_of
from ..db.models import OriginRuleRow, Policy, utcnow
from ..errors import OriginRuleNotFound, PolicyNotFound, StaleVersion, ValidationError
from ..policy.spec import format_time, parse_origin_entry
from . import queries
from .blueprint import bp, db_session, saved_message, store
from .forms import (
    ConfirmForm,
    EditOriginForm,
    NewPolicyForm,
    OriginForm,
    ReviewForm,
    SettingsForm,
    VersionedForm,
    csrf_failed,
    fill_settings,
    policy_data,
    show_errors,
)
from .review import (
    expiry_state,
    is_stale,
    policy_risks,
    review_status,
    rule_risks,
)
from .settings import review_settings

Page = str | tuple[str, int] | Response

CSRF_MESSAGE = (
    "This form was not accepted: its security token is missing or expired "
    "(or it was not sent from this page). Nothing was changed; submit it again."
)
VERSION_MESSAGE = "This form does not say which version of the policy it changes; reload the page."


def load_policy(name: str) -> Policy:
    try:
        return store().policy(name)
    except PolicyNotFound:
        abort(404, description=f"There is no policy named {name!r}.")


def conflict_message(error: StaleVersion) -> str:
    """The stale-version refusal, with who changed the policy last."""
    last = queries.last_change(db_session(), error.policy)
    message = (
        f"Not saved: someone changed policy {error.policy!r} after you opened this page "
        f"(you saw version {error.expected}, it is now at version {error.actual}). "
        "Nothing was overwritten. What you typed is kept below; open the policy again "
        "to see the current version, then apply your change to it."
    )
    if last is not None:
        message += f" Last change: {last.summary} (by {last.actor}, {last.at:%Y-%m-%d %H:%M} UTC)."
    return message


def version_missing(form: VersionedForm) -> bool:
    if form.expected_version() is None:
        form.form_errors.append(VERSION_MESSAGE)
        return True
    return False


def refused_post(form: VersionedForm) -> bool:
    """True when the POST must not go on: no CSRF token, or no version."""
    if csrf_failed(form):
        form.form_errors.append(CSRF_MESSAGE)
        return True
    return version_missing(form)


# --- the list ---------------------------------------------------------------------------------


def _matches(policy: Policy, needle: str) -> bool:
    if not needle:
        return True
    haystack = [policy.name, policy.path, policy.description or ""]
    for rule in policy.origin_rules:
        haystack.extend((rule.origin, rule.note or ""))
    return any(needle in text.lower() for text in haystack)


@bp.get("/")
def policies() -> Page:
    """Every policy: path, origins, flags, last change and review status; a search box."""
    query = request.args.get("q", "").strip()
    now = utcnow()
    everything = store().policies()
    rows = []
    for policy in everything:
        if not _matches(policy, query.lower()):
            continue
        facts = queries.facts_of(policy)
        rows.append(
            {
                "policy": policy,
                "review": review_status(facts, now),
                "risky": bool(policy_risks(facts))
                or any(rule_risks(r.origin, credentials=policy.credentials) for r in facts.rules),
            }
        )
    return render_template("corsadmin/policies.html", rows=rows, query=query, total=len(everything))


# --- one policy ---------------------------------------------------------------------------------


def render_policy(
    policy: Policy,
    *,
    origin_form: OriginForm | None = None,
    review_form: ReviewForm | None = None,
    status: int = 200,
) -> Page:
    now = utcnow()
    settings = review_settings()
    facts = queries.facts_of(policy)
    if origin_form is None:
        origin_form = OriginForm(formdata=None, version=str(policy.version))
    rules = [
        {
            "row": row,
            "expiry": expiry_state(rule, now, settings.expiring_within_days),
            "stale": policy.enabled and is_stale(rule, now, settings.stale_after_days),
            "risks": rule_risks(rule.origin, credentials=policy.credentials),
        }
        for row, rule in zip(policy.origin_rules, facts.rules, strict=True)
    ]
    page = render_template(
        "corsadmin/policy.html",
        policy=policy,
        spec=spec_of(policy),
        rules=rules,
        review=review_status(facts, now),
        policy_risks=policy_risks(facts),
        origin_form=origin_form,
        review_form=review_form or ReviewForm(formdata=None, version=str(policy.version)),
        recent=queries.audit_page(db_session(), policy=policy.name, size=5).events,
    )
    return page, status


@bp.get("/policies/<name>")
def policy(name: str) -> Page:
    """One policy: its settings, its origin rules, the add-an-origin form."""
    return render_policy(load_policy(name))


@bp.post("/policies/<name>/origins")
def add_origin(name: str) -> Page:
    """Allow one more origin on the policy. A rule it has already is not touched: the
    form says so and links to that rule's edit form."""
    policy = load_policy(name)
    form = OriginForm()
    form.validate_on_submit()
    if refused_post(form):
        return render_policy(policy, origin_form=form, status=400)
    try:
        change = store().allow_origin(
            name,
            (form.origin.data or "").strip(),
            note=form.note.data or "",
            expires=(form.expires.data or "").strip() or None,
            expected_version=form.expected_version(),
            new_only=True,
        )
    except ValidationError as error:
        show_errors(form, error)
        policy = load_policy(name)
        form.existing = _existing_rule(policy, form.origin.data or "")
        return render_policy(policy, origin_form=form, status=400)
    except StaleVersion as error:
        form.form_errors.append(conflict_message(error))
        return render_policy(load_policy(name), origin_form=form, status=409)
    flash(saved_message(f"Saved: {change.entry.rule.text} is allowed on {name}."), "success")
    return redirect(url_for(".policy", name=name))


def _existing_rule(policy: Policy, typed: str) -> str | None:
    """The stored rule the typed origin is (as stored or normalized), if the policy has it."""
    stored = {r.origin for r in policy.origin_rules}
    if typed.strip() in stored:
        return typed.strip()
    try:
        text = parse_origin_entry(typed.strip()).rule.text
    except ValidationError:
        return None
    return text if text in stored else None


def _edit_origin_page(
    policy: Policy, rule: OriginRuleRow | None, form: EditOriginForm, status: int = 200
) -> Page:
    return (
        render_template("corsadmin/edit_origin.html", policy=policy, rule=rule, form=form),
        status,
    )


@bp.route("/policies/<name>/origins/edit", methods=["GET", "POST"])
def edit_origin(name: str) -> Page:
    """Change an allowed origin rule's note or expiry (never adds a rule)."""
    policy = load_policy(name)
    form = EditOriginForm() if request.method == "POST" else EditOriginForm(formdata=None)
    origin = (form.origin.data if request.method == "POST" else None) or request.args.get(
        "origin", ""
    )
    rule = next((r for r in policy.origin_rules if r.origin == origin), None)
    missing = f"Policy {name!r} has no origin rule {origin!r}."
    if request.method == "GET":
        if rule is None:
            abort(404, description=missing)
        form.origin.data = rule.origin
        form.note.data = rule.note or ""
        form.expires.data = format_time(rule.expires_at) if rule.expires_at else ""
        form.version.data = str(policy.version)
        return _edit_origin_page(policy, rule, form)
    form.validate_on_submit()
    if refused_post(form):
        return _edit_origin_page(policy, rule, form, 400)
    try:
        change = store().change_origin(
            name,
            origin,
            note=form.note.data or "",
            expires=(form.expires.data or "").strip(),  # empty: never expires
            expected_version=form.expected_version(),
        )
    except ValidationError as error:
        show_errors(form, error)
        return _edit_origin_page(policy, rule, form, 400)
    except StaleVersion as error:
        form.form_errors.append(conflict_message(error))
        policy = load_policy(name)
        rule = next((r for r in policy.origin_rules if r.origin == origin), None)
        return _edit_origin_page(policy, rule, form, 409)
    except OriginRuleNotFound:
        abort(404, description=missing)
    if change.outcome == "unchanged":
        flash(f"Nothing to save: {origin} on {name} is as it was.", "info")
    else:
        flash(saved_message(f"Saved: {origin} on {name}: {change.details()}."), "success")
    return redirect(url_for(".policy", name=name))


# --- settings ------------------------------------------------------------------------------------


@bp.route("/new", methods=["GET", "POST"])
def new_policy() -> Page:
    """Add a policy: settings and its first origins."""
    form = NewPolicyForm()
    if request.method == "GET":
        form.methods.data = "GET, HEAD, POST, OPTIONS, PUT, PATCH, DELETE"
        form.allow_headers.data = "*"
        form.enabled.data = True
        form.priority.data = "0"
        form.review_every_days.data = "90"
        return render_template("corsadmin/policy_form.html", form=form, policy=None)
    form.validate_on_submit()
    if csrf_failed(form):
        form.form_errors.append(CSRF_MESSAGE)
        return render_template("corsadmin/policy_form.html", form=form, policy=None), 400
    try:
        spec = store().create_policy(policy_data(form))
    except ValidationError as error:
        show_errors(form, error)
        return render_template("corsadmin/policy_form.html", form=form, policy=None), 400
    flash(saved_message(f"Saved: policy {spec.name} covers {spec.path.text}."), "success")
    return redirect(url_for(".policy", name=spec.name))


@bp.route("/policies/<name>/edit", methods=["GET", "POST"])
def edit_policy(name: str) -> Page:
    """Change a policy's settings (its origin rules are changed on its page)."""
    policy = load_policy(name)
    form = SettingsForm()
    if request.method == "GET":
        fill_settings(form, spec_of(policy).to_document(), policy.version)
        return render_template("corsadmin/policy_form.html", form=form, policy=policy)
    form.validate_on_submit()
    if refused_post(form):
        return render_template("corsadmin/policy_form.html", form=form, policy=policy), 400
    before = spec_of(policy)
    try:
        after = store().update_policy(
            name, policy_data(form), expected_version=form.expected_version()
        )
    except ValidationError as error:
        show_errors(form, error)
        return render_template("corsadmin/policy_form.html", form=form, policy=policy), 400
    except StaleVersion as error:
        form.form_errors.append(conflict_message(error))
        return render_template("corsadmin/policy_form.html", form=form, policy=policy), 409
    if after == before:
        flash("Nothing to save: the settings are as they were.", "info")
    else:
        flash(saved_message(), "success")
    return redirect(url_for(".policy", name=after.name))


# --- confirmed changes: enable, disable, delete, remove an origin ---------------------------------

ACTIONS: dict[str, dict[str, str]] = {
    "enable": {"title": "Enable policy", "button": "Enable"},
    "disable": {"title": "Disable policy", "button": "Disable"},
    "delete": {"title": "Delete policy", "button": "Delete for good"},
}


def _confirm_page(policy: Policy, action: str, form: ConfirmForm, status: int = 200) -> Page:
    return (
        render_template(
            "corsadmin/confirm.html",
            policy=policy,
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
    form.validate_on_submit()
    if refused_post(form):
        return _confirm_page(policy, action, form, 400)
    try:
        if action == "delete":
            store().delete_policy(name, expected_version=form.expected_version())
        else:
            store().set_enabled(name, action == "enable", expected_version=form.expected_version())
    except StaleVersion as error:
        form.form_errors.append(conflict_message(error))
        return _confirm_page(load_policy(name), action, form, 409)
    if action == "delete":
        flash(saved_message(f"Deleted policy {name}."), "success")
        return redirect(url_for(".policies"))
    flash(saved_message(f"Saved: policy {name} is {action}d."), "success")
    return redirect(url_for(".policy", name=name))


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


@bp.route("/policies/<name>/origins/remove", methods=["GET", "POST"])
def remove_origin(name: str) -> Page:
    """Stop allowing one origin rule, after a confirmation."""
    policy = load_policy(name)
    form = ConfirmForm() if request.method == "POST" else ConfirmForm(formdata=None)
    origin = form.origin.data if request.method == "POST" else request.args.get("origin", "")
    rule = next((r for r in policy.origin_rules if r.origin == origin), None)
    status = 200
    if request.method == "GET":
        if rule is None:
            abort(404, description=f"Policy {name!r} has no origin rule {origin!r}.")
        form.origin.data = origin
        form.version.data = str(policy.version)
    else:
        form.validate_on_submit()
        if refused_post(form):
            status = 400
        else:
            try:
                store().remove_origin(name, origin or "", expected_version=form.expected_version())
            except StaleVersion as error:
                form.form_errors.append(conflict_message(error))
                policy, status = load_policy(name), 409
            except (OriginRuleNotFound, ValidationError):
                abort(404, description=f"Policy {name!r} has no origin rule {origin!r}.")
            else:
                flash(saved_message(f"Saved: {origin} is no longer allowed on {name}."), "success")
                return redirect(url_for(".policy", name=name))
    return (
        render_template(
            "corsadmin/remove_origin.html", policy=policy, rule=rule, origin=origin, form=form
        ),
        status,
    )


# --- review ---------------------------------------------------------------------------------------


@bp.post("/policies/<name>/review")
def mark_reviewed(name: str) -> Page:
    """Record that the operator reviewed the policy, with a comment (an audit event)."""
    policy = load_policy(name)
    form = ReviewForm()
    form.validate_on_submit()
    back = request.form.get("back")
    if not refused_post(form) and form.expected_version() != policy.version:
        form.form_errors.append(
            conflict_message(StaleVersion(name, form.expected_version() or 0, policy.version))
        )
        return render_policy(policy, review_form=form, status=409)
    if form.form_errors:
        return render_policy(policy, review_form=form, status=400)
    try:
        store().mark_reviewed(
            name, (form.comment.data or "").strip(), expected_version=form.expected_version()
        )
    except StaleVersion as exc:  # changed between the check above and the write
        form.form_errors.append(conflict_message(exc))
        return render_policy(load_policy(name), review_form=form, status=409)
    flash(f"Marked {name} as reviewed.", "success")
    if back == "review":
        return redirect(url_for(".review"))
    return redirect(url_for(".policy", name=name))
