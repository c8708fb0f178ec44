"""The draft page: the active draft, what it changes, what it would do, and the
decision (promote or discard).

Who proposed the draft, when and why; its diff against the live policies, field by
field and rule by rule (:mod:`.draft_diff`); its impact from history (the origins
the usage counts saw, replayed against it) and from live traffic (what the workers
counted while it was active); Promote and Discard, each a POST with its CSRF token
and the draft's version (refused if the draft changed since the page was loaded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from flask import render_template, url_for
from werkzeug.wrappers import Response

from ..db.drafts import Promotion, read_draft
from ..db.impact import history_impact, traffic_report
from ..engine.impact import NEWLY_REFUSED, Impact, SeenOrigin, TrafficReport
from ..engine.snapshot import Snapshot
from ..errors import DraftConflict, NoActiveDraft, StaleDraft
from ..policy.draft import MAX_DRAFT_REASON_LENGTH, Draft
from ..policy.spec import PolicySpec
from ..state import state
from . import queries
from .blueprint import bp, db_session, saved_message
from .draft_diff import draft_changes
from .drafting import draft_store
from .forms import DraftForm, DraftReasonForm, VersionedForm
from .saving import Flash, save

Page = str | tuple[str, int] | Response
T = TypeVar("T")

#: Origins the review screen lists of those the active draft would refuse (the most
#: seen first; the draft page lists them all, as the impact API bounds them).
REVIEW_DRAFT_ORIGINS: Final = 10

STALE_DRAFT_MESSAGE = (
    "Not done: the draft changed since you loaded this page (you saw version {expected}, "
    "it is now at version {actual}). Nothing was promoted or discarded. The draft as it is "
    "now is shown below: look at it again, then decide."
)
NO_DRAFT_MESSAGE = (
    "There is no active draft any more: someone promoted or discarded it. Nothing was done."
)


# --- what the page reads ------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftImpact:
    """What the draft would do: to the origins the usage counts saw (``history``), and
    to live traffic while it is active (``traffic``, as the workers flushed it)."""

    history: Impact
    traffic: TrafficReport


def live_snapshot() -> Snapshot:
    """This process's snapshot of the live policies, brought up to date (only what
    changed since it was loaded is read): the diff and the impact both use it."""
    return state().load()


def live_specs(draft: Draft, snapshot: Snapshot) -> dict[str, PolicySpec]:
    """The live policies the draft touches."""
    return {spec.name: spec for spec in snapshot.specs if spec.name in draft.policies}


def draft_impact(draft: Draft, snapshot: Snapshot) -> DraftImpact:
    """The draft's impact (bounded reads: :mod:`corsadmin.db.impact`)."""
    session = db_session()
    return DraftImpact(
        history=history_impact(session, draft, snapshot),
        traffic=traffic_report(session, draft.id),
    )


# --- the page -------------------------------------------------------------------------------------


def render_draft(
    *,
    reason_form: DraftReasonForm | None = None,
    decision_form: DraftForm | None = None,
    status: int = 200,
) -> Page:
    """The draft page (with the forms given: what the operator sent, and why not)."""
    session = db_session()
    found = read_draft(session)
    if found is None:
        page = render_template("corsadmin/draft.html", draft=None, decision_form=decision_form)
        return page, status
    version = str(found.version)
    # The page shows the draft as it is now: its forms carry that version.
    if reason_form is None:
        reason_form = DraftReasonForm(formdata=None, reason=found.reason)
    if decision_form is None:
        decision_form = DraftForm(formdata=None)
    reason_form.version.data = version
    decision_form.version.data = version
    snapshot = live_snapshot()
    changes = draft_changes(
        found, live_specs(found, snapshot), queries.live_versions(session, found.policies)
    )
    html = render_template(
        "corsadmin/draft.html",
        draft=found,
        changes=changes,
        moved=[c for c in changes if c.moved],
        impact=draft_impact(found, snapshot),
        reason_form=reason_form,
        decision_form=decision_form,
        max_reason=MAX_DRAFT_REASON_LENGTH,
    )
    return html, status


@bp.get("/draft")
def draft() -> Page:
    """The active draft: who, when, why, its diff, its impact, promote or discard."""
    return render_draft()


def decide(
    form: VersionedForm,
    change: Callable[[], T],
    *,
    page: Callable[[int], Page],
    saved: Callable[[T], Flash],
    redirect_to: Callable[[T], str],
) -> Page:
    """:func:`.saving.save` of a change of the draft itself: a draft that changed since
    the page was loaded, a promotion refused by a conflicting live change, or no draft
    left, each said above the page (nothing done)."""
    try:
        return save(form, change, page=page, saved=saved, redirect_to=redirect_to)
    except StaleDraft as error:
        form.form_errors.append(
            STALE_DRAFT_MESSAGE.format(expected=error.expected, actual=error.actual)
        )
        return page(409)
    except DraftConflict as error:
        form.form_errors.append(f"Not promoted: {error}.")
        return page(409)
    except NoActiveDraft:
        form.form_errors.append(NO_DRAFT_MESSAGE)
        return page(404)


@bp.post("/draft/promote")
def promote_draft() -> Page:
    """Make the draft live: one transaction, refused if a live policy it changes
    changed since it was saved."""
    form = DraftForm()
    return decide(
        form,
        lambda: draft_store().promote(expected_version=form.expected_version()),
        page=lambda status: render_draft(decision_form=form, status=status),
        saved=promoted_message,
        redirect_to=lambda done: (
            url_for(".policy", name=done.policies[0])
            if len(done.policies) == 1 and _is_live(done.policies[0])
            else url_for(".policies")
        ),
    )


def promoted_message(done: Promotion) -> Flash:
    changed = ", ".join(done.policies) or "nothing (the draft matched the live policies)"
    return Flash(saved_message(f"Promoted draft {done.draft_id}: changed {changed}."))


def _is_live(name: str) -> bool:
    return bool(queries.live_versions(db_session(), [name]))


@bp.post("/draft/discard")
def discard_draft() -> Page:
    """Drop the draft: no live policy is touched."""
    form = DraftForm()
    return decide(
        form,
        lambda: draft_store().discard(expected_version=form.expected_version()),
        page=lambda status: render_draft(decision_form=form, status=status),
        saved=lambda draft_id: Flash(
            f"Discarded draft {draft_id}: the live policies are as they were.", "info"
        ),
        redirect_to=lambda _: url_for(".draft"),
    )


@bp.post("/draft/reason")
def draft_reason() -> Page:
    """Say why the draft is proposed."""
    form = DraftReasonForm()

    def change() -> None:
        found = read_draft(db_session())
        if found is None:
            raise NoActiveDraft()
        expected = form.expected_version()
        if expected is not None and expected != found.version:
            raise StaleDraft(found.id, expected, found.version)
        draft_store().set_reason(form.reason.data or "")

    return decide(
        form,
        change,
        page=lambda status: render_draft(reason_form=form, status=status),
        saved=lambda _: Flash("Saved the draft's reason."),
        redirect_to=lambda _: url_for(".draft"),
    )


# --- the review screen's section --------------------------------------------------------------


@dataclass(frozen=True)
class DraftSummary:
    """The active draft as the review screen lists it: what it would break."""

    draft: Draft
    impact: DraftImpact

    @property
    def newly_refused(self) -> tuple[SeenOrigin, ...]:
        """The origins seen on its policies that it would refuse, the most seen first."""
        return self.impact.history.newly_refused

    @property
    def traffic_refused(self) -> int:
        """Requests of live traffic the draft would have refused, as the workers counted."""
        return sum(t.requests for t in self.impact.traffic.totals if t.outcome == NEWLY_REFUSED)


def draft_summary() -> DraftSummary | None:
    """The review screen's section: the active draft and what it would break, or None."""
    found = read_draft(db_session())
    if found is None:
        return None
    return DraftSummary(found, draft_impact(found, live_snapshot()))
