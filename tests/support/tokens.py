"""Reading a host's API tokens straight from its database (CLI and admin token tests)."""

from __future__ import annotations

from flask import Flask

from corsadmin.db.tokens import Token, TokenStore, authenticate
from tests.support.host import host_of


def listed_tokens(app: Flask) -> list[Token]:
    """Every token of ``app``'s database, as ``TokenStore.list`` returns them."""
    with app.app_context():
        try:
            return TokenStore(host_of(app).cors.store("inspector", app)).list()
        finally:
            host_of(app).db.session.remove()


def authenticated(app: Flask, secret: str) -> Token | None:
    """The token ``secret`` authenticates as in ``app``'s database, or None."""
    with app.app_context():
        try:
            return authenticate(host_of(app).db.session, secret)
        finally:
            host_of(app).db.session.remove()
