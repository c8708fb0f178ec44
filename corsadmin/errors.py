"""Errors a host application may want to handle.

They subclass Werkzeug's HTTP exceptions (as Flask-WTF's ``CSRFError(BadRequest)``
does), so an admin view or an API can let them propagate and still answer with
a sensible status code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from werkzeug.exceptions import BadRequest, Conflict, NotFound


class CorsAdminError(Exception):
    """Base class of every error corsadmin raises on purpose."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field: ``policies[2].origins[0]: a path is not allowed``."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ValidationError(CorsAdminError, BadRequest):
    """The input breaks a rule of the policy document; nothing was written."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        super().__init__(description=str(self))

    def __str__(self) -> str:
        return "; ".join(str(e) for e in self.errors)

    @classmethod
    def single(cls, field: str, message: str) -> ValidationError:
        return cls([FieldError(field, message)])

    def prefixed(self, prefix: str) -> ValidationError:
        """The same errors with ``prefix`` put before every field name."""
        return ValidationError(
            FieldError(f"{prefix}.{e.field}" if e.field else prefix, e.message) for e in self.errors
        )


class PolicyNotFound(CorsAdminError, NotFound):
    """No policy has that name."""

    def __init__(self, name: str) -> None:
        self.policy = name
        super().__init__(description=str(self))

    def __str__(self) -> str:
        return f"no policy named {self.policy!r}"


class OriginRuleNotFound(CorsAdminError, NotFound):
    """The policy has no such origin rule."""

    def __init__(self, policy: str, origin: str) -> None:
        self.policy = policy
        self.origin = origin
        super().__init__(description=str(self))

    def __str__(self) -> str:
        return f"policy {self.policy!r} has no origin rule {self.origin!r}"


class StaleVersion(CorsAdminError, Conflict):
    """The change was based on an old version of the policy; nothing was overwritten."""

    def __init__(self, name: str, expected: int, actual: int) -> None:
        self.policy = name
        self.expected = expected
        self.actual = actual
        super().__init__(description=str(self))

    def __str__(self) -> str:
        return (
            f"policy {self.policy!r} was changed by someone else since you loaded it "
            f"(your version {self.expected}, now {self.actual}); reload and apply your change again"
        )


class NoActiveDraft(CorsAdminError, NotFound):
    """There is no active draft (nothing to show, promote or discard)."""

    def __str__(self) -> str:
        return "there is no active draft"


class DraftConflict(CorsAdminError, Conflict):
    """Promoting the draft was refused: a live policy it changes changed since the
    draft was made; nothing was written. ``change`` names that change."""

    def __init__(self, policy: str, change: str) -> None:
        self.policy = policy
        self.change = change
        super().__init__(description=str(self))

    def __str__(self) -> str:
        return (
            f"policy {self.policy!r} changed since the draft was made ({self.change}); "
            "nothing was promoted: save the draft's change to it again, or discard the draft"
        )


class StaleDraft(CorsAdminError, Conflict):
    """The draft changed since the caller read it (a form loaded before another save
    into it): nothing was promoted or discarded."""

    def __init__(self, draft: int, expected: int, actual: int) -> None:
        self.draft = draft
        self.expected = expected
        self.actual = actual
        super().__init__(description=str(self))

    def __str__(self) -> str:
        return (
            f"draft {self.draft} changed since you read it (your version {self.expected}, "
            f"now {self.actual}); look at it again before promoting or discarding it"
        )


class TokenNotFound(CorsAdminError, NotFound):
    """No API token has that name."""

    def __init__(self, name: str) -> None:
        self.token = name
        super().__init__(description=str(self))

    def __str__(self) -> str:
        return f"no API token named {self.token!r}"


class UnsupportedDatabase(CorsAdminError):
    """corsadmin's tables cannot live in this database (raised before any is created)."""
