"""The built-in login and logout pages (``CORSADMIN_BUILTIN_LOGIN``, the standalone app).

Both are POSTs with a CSRF token. A wrong name and a wrong password get the
same answer, in the same time. Failed attempts are throttled per client
address (and name): ``CORSADMIN_LOGIN_ATTEMPTS`` failures within
``CORSADMIN_LOGIN_WINDOW`` seconds, then 429 until the window has passed.

A login starts a server-side session (:func:`.access.log_in`); logout deletes it,
so a copy of the cookie is refused from then on.
"""

from __future__ import annotations

import time

from flask import (
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from ..db import operators
from ..state import state
from . import access
from .blueprint import bp, db_session
from .forms import LoginForm, LogoutForm
from .throttle import LoginThrottle

Page = str | tuple[str, int] | Response

LOGIN_FAILED = "Unknown operator name or wrong password."


def login_throttles() -> tuple[LoginThrottle, LoginThrottle]:
    """This application's login throttles (per process): per address and name, and per
    address alone with four times the allowance (guessing across names)."""
    throttles = current_app.extensions.get("corsadmin_login_throttles")
    if not isinstance(throttles, tuple):
        config = state().config
        limit, window = config.login_attempts, config.login_window
        throttles = (LoginThrottle(limit, window), LoginThrottle(4 * limit, window))
        current_app.extensions["corsadmin_login_throttles"] = throttles
    return throttles


@bp.route("/login", methods=["GET", "POST"])
def login() -> Page:
    """Log in as a built-in operator."""
    if not access.builtin_login_enabled():
        abort(404)
    form = LoginForm()
    if request.method == "GET":
        form.next.data = access.safe_next(request.args.get("next"))
        return render_template("corsadmin/login.html", form=form)
    if not form.validate_on_submit():
        form.form_errors.append(
            "This form was not accepted: its security token is missing or expired. Log in again."
        )
        return render_template("corsadmin/login.html", form=form), 400
    name = (form.name.data or "").strip()
    by_name, by_address = login_throttles()
    name_key, address_key = [f"{request.remote_addr}|{name.lower()}"], [str(request.remote_addr)]
    now = time.monotonic()
    wait = max(by_name.retry_after(name_key, now), by_address.retry_after(address_key, now))
    if wait > 0:
        form.form_errors.append(
            f"Too many failed attempts. Try again in {max(1, round(wait / 60))} minute(s)."
        )
        form.password.data = ""
        response = make_response(render_template("corsadmin/login.html", form=form), 429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    session = db_session()
    operator = operators.authenticate(session, name, form.password.data or "")
    if operator is None:
        by_name.failed(name_key, now)
        by_address.failed(address_key, now)
        form.form_errors.append(LOGIN_FAILED)
        form.password.data = ""
        return render_template("corsadmin/login.html", form=form), 401
    by_name.succeeded(name_key)
    operators.record_login(session, operator)
    access.log_in(operator)
    return redirect(access.safe_next(form.next.data) or url_for(".policies"))


@bp.post("/logout")
def logout() -> Page:
    """End the login session."""
    if not access.builtin_login_enabled():
        abort(404)
    form = LogoutForm()
    if not form.validate_on_submit():
        abort(400, description="Logging out needs the form's security token; use the button.")
    access.log_out()
    flash("Logged out.", "info")
    return redirect(url_for(".login"))
