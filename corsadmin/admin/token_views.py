"""API tokens: the list, a new token (its secret shown once, on the answer to the
POST that created it, and never again), and revoking one after a confirmation.

Every form carries its CSRF token; the access check is the blueprint's, as for every
admin page. The secret is never put in a flash, a redirect or a log: the page that
shows it is the response to the POST (``Cache-Control: no-store``, as every admin
page), so reloading it asks to send the form again, which is refused (the name is
taken) and shows no secret.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..db.tokens import Token, TokenStore
from ..errors import ValidationError
from ..state import state
from .blueprint import bp, store
from .forms import RevokeTokenForm, TokenForm, csrf_failed, show_errors
from .saving import CSRF_MESSAGE

Page = str | tuple[str, int] | Response


def tokens() -> TokenStore:
    """The token store, acting as the operator."""
    return TokenStore(store())


@bp.get("/tokens")
def tokens_list() -> Page:
    """Every API token: scope, status, who made it and when, expiry, last use."""
    return render_template("corsadmin/tokens.html", tokens=tokens().list())


def _new_token_page(form: TokenForm, status: int = 200) -> Page:
    return render_template("corsadmin/token_form.html", form=form), status


@bp.route("/tokens/new", methods=["GET", "POST"])
def new_token() -> Page:
    """Create an API token; the answer shows its secret, once."""
    form = TokenForm()
    if request.method == "GET":
        return _new_token_page(form)
    form.validate_on_submit()
    if csrf_failed(form):
        form.form_errors.append(CSRF_MESSAGE)
        return _new_token_page(form, 400)
    try:
        token, secret = tokens().create(
            (form.name.data or "").strip(),
            form.scope.data or "",
            expires=(form.expires.data or "").strip() or None,
        )
    except ValidationError as error:
        show_errors(form, error)
        return _new_token_page(form, 400)
    page = render_template(
        "corsadmin/token_created.html",
        token=token,
        secret=secret,
        api_url=request.host_url.rstrip("/") + state().admin_prefix + "/api/v1/",
    )
    return page, 201


def _revoke_page(token: Token, form: RevokeTokenForm, status: int = 200) -> Page:
    page = render_template("corsadmin/token_revoke.html", token=token, form=form)
    return page, status


@bp.route("/tokens/<name>/revoke", methods=["GET", "POST"])
def revoke_token(name: str) -> Page:
    """Revoke an API token, after a confirmation (404 for an unknown name)."""
    token = tokens().get(name)
    if request.method == "GET":
        return _revoke_page(token, RevokeTokenForm(formdata=None))
    form = RevokeTokenForm()
    form.validate_on_submit()
    if csrf_failed(form):
        form.form_errors.append(CSRF_MESSAGE)
        return _revoke_page(token, form, 400)
    if token.revoked_at is not None:
        flash(f"API token {name} was revoked already.", "info")
    else:
        tokens().revoke(name)
        flash(f"Revoked API token {name}: requests with it are refused from now on.", "success")
    return redirect(url_for(".tokens_list"))
