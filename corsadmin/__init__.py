"""corsadmin: CORS policy as data for Flask applications.

Allowed origins, methods and headers per route pattern live in SQL tables; a
request hook decides from an in-memory snapshot and Flask-CORS writes the
headers; operators change the policy from the CLI (and the admin UI) without a
redeploy.
"""

from __future__ import annotations

from .db.drafts import DraftStore, Promotion
from .db.store import ImportReport, PolicyStore
from .db.tokens import Token, TokenStore
from .engine.alerts import verify_signature
from .engine.explain import Evaluation, Explanation, evaluate, explain
from .engine.snapshot import CorsRequest, Decision, Snapshot
from .errors import (
    CorsAdminError,
    DraftConflict,
    FieldError,
    NoActiveDraft,
    OriginRuleNotFound,
    PolicyNotFound,
    StaleDraft,
    StaleVersion,
    TokenNotFound,
    UnsupportedDatabase,
    ValidationError,
)
from .extension import CorsAdmin
from .policy.document import parse_document
from .policy.spec import OriginEntry, PolicySpec, validate_policy
from .state import CorsAdminNotInitialized

__version__ = "0.1.0"

__all__ = [
    "CorsAdmin",
    "CorsAdminError",
    "CorsAdminNotInitialized",
    "CorsRequest",
    "Decision",
    "DraftConflict",
    "DraftStore",
    "Evaluation",
    "Explanation",
    "FieldError",
    "ImportReport",
    "NoActiveDraft",
    "OriginEntry",
    "OriginRuleNotFound",
    "PolicyNotFound",
    "PolicySpec",
    "PolicyStore",
    "Promotion",
    "Snapshot",
    "StaleDraft",
    "StaleVersion",
    "Token",
    "TokenNotFound",
    "TokenStore",
    "UnsupportedDatabase",
    "ValidationError",
    "__version__",
    "evaluate",
    "explain",
    "parse_document",
    "validate_policy",
    "verify_signature",
]
