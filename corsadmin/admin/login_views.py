"""The built-in login and logout pages (``CORSADMIN_BUILTIN_LOGIN``, the standalone app).

Both are POSTs with a CSRF token. A wrong name and a wrong password get the
same answer, in the same time.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from . import access, operators
from .blueprint import bp, db_session
from .forms import LoginForm, LogoutForm

Page = str | tuple[str, int] | Response

LOGIN_FAILED = "Unknown operator name or wrong password."


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
    session = db_session()
    operator = operators.authenticate(
        session, (form.name.data or "").strip(), form.password.data or ""
    )
    if operator is None:
        form.form_errors.append(LOGIN_FAILED)
        form.password.data = ""
        return render_template("corsadmin/login.html", form=form), 401
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
