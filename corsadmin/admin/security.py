"""Security headers on every admin response.

No inline script or style anywhere in the admin (the one stylesheet is a static
file), so the Content-Security-Policy can be strict; framing is forbidden twice
(``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``) and nothing is cached.
"""

from __future__ import annotations

from werkzeug.wrappers import Response

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def add_security_headers(response: Response) -> Response:
    """Set (replace) the admin's security headers on ``response``."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response
