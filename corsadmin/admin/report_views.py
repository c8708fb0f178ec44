"""The review screen, refused origins, the audit log and "check a request"."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..db import review as review_reads
from ..db.models import utcnow
from ..engine.explain import Explanation, explain
from ..engine.review import allowing_rule
from ..errors import ValidationError
from ..policy.spec import parse_origin_entry
from ..runtime.usage import (
    MAX_USAGE_ORIGINS_PER_POLICY,
    NOT_AN_ORIGIN,
    OTHER_ALLOWED,
    OTHER_REFUSED,
    rule_for_refused_origin,
)
from ..state import state
from . import audit, queries
from .blueprint import Formatting, bp, db_session, operator, saved_message, store
from .draft_views import REVIEW_DRAFT_ORIGINS, draft_summary
from .forms import AllowRefusedForm, CheckForm, DismissRefusedForm, ReviewForm
from .policy_views import load_policy
from .queries import AnySession
from .saving import CSRF_MESSAGE, Flash, save
from .settings import review_settings

Page = str | tuple[str, int] | Response


# --- review -------------------------------------------------------------------------------------


@bp.get("/review")
def review() -> Page:
    """What needs a decision: the active draft and what it would break, reviews due,
    expiring, stale and risky rules (each list bounded, with its count)."""
    report, totals = review_reads.review_report(db_session(), utcnow(), review_settings())
    forms = {
        due.policy.name: ReviewForm(formdata=None, version=str(due.policy.version))
        for due in report.due
    }
    return render_template(
        "corsadmin/review.html",
        draft=draft_summary(),
        report=report,
        review_forms=forms,
        settings=review_settings(),
        totals=totals,
        total=totals.policies,
        limit=review_reads.REVIEW_LIST_LIMIT,
        limit_draft=REVIEW_DRAFT_ORIGINS,
    )


# --- refused origins ---------------------------------------------------------------------------


@bp.get("/refused")
def refused() -> Page:
    """Which origins were refused on which policy, how often, first and last seen."""
    session = db_session()
    chosen = request.args.get("policy", "").strip() or None
    return render_template(
        "corsadmin/refused.html",
        items=refused_items(session, chosen),
        chosen=chosen,
        policy_names=queries.refused_policy_names(session),
        max_origins=MAX_USAGE_ORIGINS_PER_POLICY,
        dismissed=queries.dismissed_count(session, policy=chosen),
        dismiss_form=DismissRefusedForm(formdata=None),
    )


#: Said after a dismissal (the refused-origins page).
DISMISSED_MESSAGE = "Dismissed {origin} on {policy}: hidden until it is refused again."


@bp.post("/refused/dismiss")
def dismiss_refused() -> Page:
    """Hide a refused origin (noise: a scanner, a retired page) until it is refused
    again after now; recorded on its row (who and when), nothing else changes."""
    form = DismissRefusedForm()
    chosen = (form.chosen.data or "").strip() or None
    back = url_for(".refused", policy=chosen)
    if not form.validate_on_submit():
        flash(CSRF_MESSAGE, "error")
        return redirect(back)
    policy, origin = form.policy.data or "", form.origin.data or ""
    found = queries.dismiss_refused(db_session(), policy, origin, actor=operator(), now=utcnow())
    if not found:
        flash(f"Nothing dismissed: {origin} is not a refused origin of {policy}.", "error")
    else:
        flash(DISMISSED_MESSAGE.format(origin=origin, policy=policy))
    return redirect(back)


@dataclass(frozen=True, slots=True)
class RefusedItem:
    """A row of the refused-origins report: the usage row, whether its policy still
    exists, what kind of value it counts (:func:`_refused_kind`), and the rule that
    allows the origin now, if an operator allowed it since."""

    row: queries.RefusedOrigin
    exists: bool
    kind: str
    now_allowed_by: str | None


def refused_items(session: AnySession, chosen: str | None) -> list[RefusedItem]:
    """The refused-origins report (of the policy ``chosen``, else of every policy), the
    most recently seen first, at most ``queries.REFUSED_LIMIT`` rows (the screen and
    the API show the same)."""
    rows = queries.refused_origins(session, policy=chosen)
    policies = {p.name: p for p in queries.policy_rows(session)}
    rules = {row.origin: rule_for_refused_origin(row.origin) for row in rows}
    candidates = queries.rules_that_may_allow(
        session,
        (policies[row.policy].id for row in rows if row.policy in policies),
        (rule.text for rule in rules.values() if rule is not None),
    )
    now = utcnow()
    items = []
    for row in rows:
        policy = policies.get(row.policy)
        rule = rules[row.origin]
        allowed_by = None
        if policy is not None and rule is not None:
            allowed_by = allowing_rule(candidates[policy.id], row.origin, now)
        items.append(
            RefusedItem(
                row, policy is not None, _refused_kind(row.origin, rule is not None), allowed_by
            )
        )
    return items


def _refused_kind(origin: str, allowable: bool) -> str:
    """How the report shows a row: an origin, one of the buckets, or junk.

    Only a serialized origin (as a browser sends it) gets an "Allow…" link; the
    buckets and any other value are shown as what they are, never as a rule.
    """
    if allowable:
        return "origin"
    if origin in (OTHER_REFUSED, OTHER_ALLOWED):
        return "other"
    if origin == NOT_AN_ORIGIN:
        return "junk"
    return "stored junk"  # a value no browser sends, stored verbatim by an older version


#: The longest check-page address the allow confirmation returns to (a check's origin,
#: path and headers, URL-encoded); a longer one returns to the refused-origins report.
MAX_BACK_LENGTH: Final = 8192

#: Shown when "Allow" is asked for a value that is not one serialized origin.
NOT_ALLOWABLE_MESSAGE = (
    "cannot be allowed as it is: only a serialized origin as a browser sends it "
    "(scheme://host or scheme://host:port, lower-case, no path, or null) can be allowed "
    "from the refused-origins report. Patterns (re:, *, *., :*) are added on the policy's "
    "page, after thinking about everything they let in."
)


@bp.route("/refused/allow", methods=["GET", "POST"])
def allow_refused() -> Page:
    """Allow a refused origin into its policy, after a confirmation of exactly what changes.

    Reached from the refused-origins report, or from the check page (``back`` names
    that check): the confirmation then returns to it, where the same request now shows
    as allowed."""
    name = request.values.get("policy", "")
    origin = request.values.get("origin", "")
    back = _back_to_check(request.values.get("back", ""))
    policy = load_policy(name)
    if rule_for_refused_origin(origin) is None:
        # A forged request naming a pattern or a bucket: refused, nothing written.
        return (
            render_template(
                "corsadmin/allow.html",
                policy=policy,
                origin=origin,
                not_allowable=NOT_ALLOWABLE_MESSAGE,
                back=back,
            ),
            400,
        )
    usage = queries.refused_origin(db_session(), name, origin)
    if request.method == "GET":
        form = AllowRefusedForm(formdata=None, version=str(policy.version))
        if usage is not None:
            times = Formatting.count(usage.count, "time")
            form.note.data = f"refused {times} until {usage.last_seen:%Y-%m-%d}"
        return _allow_page(name, origin, usage, form, back=back)
    form = AllowRefusedForm()
    return save(
        form,
        lambda: store().add_origin(
            name,
            origin,
            note=form.note.data or "",
            expires=(form.expires.data or "").strip() or None,
            expected_version=form.expected_version(),
        ),
        page=lambda status: _allow_page(name, origin, usage, form, status, back=back),
        saved=lambda entry: Flash(saved_message(f"Saved: {entry.rule.text} is allowed on {name}.")),
        redirect_to=lambda _: back or url_for(".refused"),
    )


def _back_to_check(value: str) -> str | None:
    """``value`` when it is this admin's check page (a local path, its query kept),
    else None: never a redirect anywhere else."""
    if len(value) > MAX_BACK_LENGTH:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path != url_for(".check") or "\\" in value:
        return None
    return value


def _allow_page(
    name: str,
    origin: str,
    usage: queries.RefusedOrigin | None,
    form: AllowRefusedForm,
    status: int = 200,
    *,
    back: str | None = None,
) -> Page:
    """The confirmation: what will change, computed with the same validation the save uses."""
    policy = load_policy(name)
    session = db_session()
    listed, count = queries.first_rules(session, policy, queries.ORIGIN_PAGE_SIZE)
    entry_error = None
    new_rule = None
    already = False
    after_origins = listed
    try:
        # A serialized origin: the policy's other rules cannot make it invalid (only a
        # '*' with credentials could, and no stored policy has that), so the rule alone
        # is validated, and the policy's rules are not read beyond the first page.
        new_rule = parse_origin_entry(origin).rule.text
        already = queries.origin_rule(session, policy, new_rule) is not None
        after_origins = sorted({*listed, new_rule})
    except ValidationError as error:
        entry_error = "; ".join(e.message for e in error.errors)
    return (
        render_template(
            "corsadmin/allow.html",
            policy=policy,
            origin=origin,
            usage=usage,
            form=form,
            new_rule=new_rule,
            already=already,
            entry_error=entry_error,
            before_origins=listed,
            after_origins=after_origins,
            before_count=count,
            after_count=count if already or new_rule is None else count + 1,
            command="corsadmin origin add "
            + shlex.join([name, new_rule or origin, "--note", form.note.data or ""]),
            back=back,
        ),
        status,
    )


# --- audit -------------------------------------------------------------------------------------


@bp.get("/audit")
def audit_log() -> Page:
    """Every change, who and when, with before and after; by policy and by operator."""
    session = db_session()
    policy = request.args.get("policy", "").strip() or None
    actor = request.args.get("actor", "").strip() or None
    before_text = request.args.get("before", "")
    before = int(before_text) if before_text.isdigit() else None
    page = queries.audit_page(session, policy=policy, actor=actor, before=before)
    policies, actors = queries.audit_filters(session)
    return render_template(
        "corsadmin/audit.html",
        page=page,
        policy=policy,
        actor=actor,
        policies=policies,
        actors=actors,
        changes=audit.changes,
        pretty=audit.pretty,
    )


# --- check a request ----------------------------------------------------------------------------


@bp.get("/check")
def check() -> Page:
    """Origin, path, method and headers in; the same explanation as `corsadmin check` out."""
    form = CheckForm(request.args)
    explanation = None
    command = None
    origin = (form.origin.data or "").strip()
    path = (form.path.data or "").strip()
    if origin or path:
        method = (form.method.data or "GET").strip().upper() or "GET"
        headers = [h.strip() for h in (form.headers.data or "").splitlines() if h.strip()]
        if not origin:
            form.origin.errors = ["is required (the page's origin)"]
        elif not path.startswith("/"):
            form.path.errors = ["must start with '/' (the request path)"]
        else:
            snapshot = state().load()  # the database's policy: what changed since this
            # process's snapshot is read, not every rule again
            explanation = explain(
                snapshot,
                origin,
                path,
                method,
                headers,
                private_network=bool(form.private_network.data),
            )
            args = ["corsadmin", "check", origin, path, "--method", method]
            for header in headers:
                args += ["--header", header]
            if form.private_network.data:
                args.append("--private-network")
            command = shlex.join(args)
    return render_template(
        "corsadmin/check.html",
        form=form,
        explanation=explanation,
        command=command,
        allow_url=_allow_url(explanation),
    )


def _allow_url(explanation: Explanation | None) -> str | None:
    """The "Allow this origin…" confirmation for a checked request refused because no
    rule allows its origin (a serialized origin only, as on the refused-origins page)."""
    if explanation is None or explanation.policy is None:
        return None
    decision = explanation.actual.decision
    if decision.code != "no-rule" or rule_for_refused_origin(explanation.origin) is None:
        return None
    return url_for(
        ".allow_refused",
        policy=explanation.policy.name,
        origin=explanation.origin,
        back=f"{url_for('.check')}?{request.query_string.decode('latin-1')}",
    )
