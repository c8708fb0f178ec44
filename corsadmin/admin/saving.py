"""The one way an admin form saves a change: :func:`save`.

Every change is a POST carrying its CSRF token and the version of the policy the
operator saw. :func:`save` refuses a POST without them (400), calls the store, and
then either shows the form again with what is wrong beside each field (400) or with
who changed the policy in the meantime (409, nothing overwritten, what the operator
typed kept), or flashes what was saved and redirects, so a reload never repeats it.
A busy database is not handled here: the blueprint turns it into a 503.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NamedTuple, TypeVar

from flask import flash, redirect
from werkzeug.wrappers import Response

from ..errors import StaleVersion, ValidationError
from . import queries
from .blueprint import db_session
from .forms import VersionedForm, csrf_failed, show_errors

Page = str | tuple[str, int] | Response
T = TypeVar("T")

CSRF_MESSAGE: Final = (
    "This form was not accepted: its security token is missing or expired "
    "(or it was not sent from this page). Nothing was changed; submit it again."
)
VERSION_MESSAGE: Final = (
    "This form does not say which version of the policy it changes; reload the page."
)


class Flash(NamedTuple):
    """What the page after the redirect says, and how (a flash category)."""

    message: str
    category: str = "success"


def nothing_changed(message: str) -> Flash:
    """The flash for a save that found everything as it was."""
    return Flash(message, "info")


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


def refusal(form: VersionedForm, *, versioned: bool = True) -> str | None:
    """Why a POST must not go on (no valid CSRF token, or no version), or None."""
    if csrf_failed(form):
        return CSRF_MESSAGE
    if versioned and form.expected_version() is None:
        return VERSION_MESSAGE
    return None


def save(
    form: VersionedForm,
    change: Callable[[], T],
    *,
    page: Callable[[int], Page],
    saved: Callable[[T], Flash],
    redirect_to: Callable[[T], str],
    versioned: bool = True,
) -> Page:
    """Validate the POSTed ``form``, make the ``change``, and answer.

    ``page(status)`` shows the form again (400: refused or invalid, 409: stale);
    ``saved`` and ``redirect_to`` get what ``change`` returned. ``versioned=False``
    for a form that creates a policy (there is no version to check yet).
    """
    form.validate_on_submit()
    refused = refusal(form, versioned=versioned)
    if refused is not None:
        form.form_errors.append(refused)
        return page(400)
    try:
        result = change()
    except ValidationError as error:
        show_errors(form, error)
        return page(400)
    except StaleVersion as error:
        form.form_errors.append(conflict_message(error))
        return page(409)
    notice = saved(result)
    flash(notice.message, notice.category)
    return redirect(redirect_to(result))
