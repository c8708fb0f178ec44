"""Saving as draft: the second submit button of every edit form.

Every form that changes a policy (a new policy, its settings, enable, disable,
delete; allowing, editing or removing an origin) has a "Save as draft" button
named :data:`DRAFT_BUTTON` beside its usual one. A POST with it goes through the
same :func:`.saving.save` (CSRF token, the version of the policy the operator saw,
errors beside their fields, the conflict banner) but writes into the active draft
with :class:`corsadmin.db.drafts.DraftStore` instead of the live policy, and then
redirects to the draft page. Live traffic is answered as before until the draft is
promoted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from flask import request, url_for

from ..db.drafts import DraftStore
from ..errors import OriginRuleNotFound, PolicyNotFound, ValidationError
from .blueprint import store
from .forms import VersionedForm
from .saving import Flash, Page, save

T = TypeVar("T")
U = TypeVar("U")

#: The name of the "Save as draft" submit button (its presence in a POST says which).
DRAFT_BUTTON: Final = "save_as_draft"


def wants_draft() -> bool:
    """This POST was sent with the "Save as draft" button."""
    return request.method == "POST" and DRAFT_BUTTON in request.form


def draft_store() -> DraftStore:
    """The draft store, acting as the operator."""
    return DraftStore(store())


def drafted(what: str) -> Flash:
    """The flash after a change was saved into the draft."""
    return Flash(
        f"Saved in the draft: {what}. Live traffic is answered as before until the draft "
        "is promoted."
    )


def in_draft(change: Callable[[], T], name: str, origin: str | None = None) -> Callable[[], T]:
    """``change`` of the draft, with "the draft has no such policy or rule" said on the
    form (the policy exists live, but the draft deletes it or removes the rule)."""

    def run() -> T:
        try:
            return change()
        except PolicyNotFound:
            raise ValidationError.single(
                "", f"The draft deletes policy {name!r}: nothing more can be proposed for it."
            ) from None
        except OriginRuleNotFound:
            raise ValidationError.single(
                "", f"The draft has no origin rule {origin!r} on policy {name!r} (it removes it)."
            ) from None

    return run


def save_or_draft(
    form: VersionedForm,
    live: Callable[[], T],
    draft: Callable[[], U],
    *,
    page: Callable[[int], Page],
    saved: Callable[[T], Flash],
    drafted_what: Callable[[U], str],
    redirect_to: Callable[[T], str],
    versioned: bool = True,
) -> Page:
    """:func:`.saving.save` of ``live``, or of ``draft`` when the operator pressed
    "Save as draft" (then the flash says what went into the draft, and the answer
    redirects to the draft page)."""
    if wants_draft():
        return save(
            form,
            draft,
            page=page,
            saved=lambda result: drafted(drafted_what(result)),
            redirect_to=lambda _: url_for(".draft"),
            versioned=versioned,
        )
    return save(form, live, page=page, saved=saved, redirect_to=redirect_to, versioned=versioned)
