"""The HTTP client of the CLI's remote mode: the JSON API of a running corsadmin.

Standard library only (``urllib``), TLS certificates verified (the default context),
every request bounded by :data:`REMOTE_TIMEOUT_SECONDS`. An API refusal (RFC 9457
problem details) becomes the error the local command raises: a
:class:`~corsadmin.errors.ValidationError` with the same fields and messages, or a
:class:`RemoteError` with the problem's detail; a network failure is one
:class:`RemoteError` line. The token is sent only in the ``Authorization`` header and
never appears in a message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..errors import CorsAdminError, FieldError, ValidationError
from ..runtime.http import OPENER

#: Seconds a request to the remote instance may take (connecting, then each read).
REMOTE_TIMEOUT_SECONDS: Final = 30.0
#: Where the API sits under the URL given (the site root and the admin prefix).
API_ROOT: Final = "/api/v1"
#: ``If-Match`` for a change made as the local command makes it: whatever version is
#: stored (the local commands do not check versions either).
ANY_VERSION: Final = "*"
#: The most bytes of a problem's body read to explain a refusal.
MAX_PROBLEM_BYTES: Final = 64 * 1024


class RemoteError(CorsAdminError):
    """The remote instance refused a request, or could not be reached."""


@dataclass(frozen=True)
class Reply:
    """A successful answer: its status, headers and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


def api_base(url: str) -> str:
    """The API's root for the URL an operator gives: the site and the admin prefix
    (``https://app.example.com/corsadmin``), or the API root itself."""
    base = url.strip().rstrip("/")
    parsed = urllib.parse.urlsplit(base)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise RemoteError(
            f"--url must be an http(s) URL such as https://app.example.com/corsadmin, not {url!r}"
        )
    return base if base.endswith(API_ROOT) else base + API_ROOT


class ApiClient:
    """Requests to one instance's API with one token."""

    def __init__(self, url: str, token: str, *, timeout: float = REMOTE_TIMEOUT_SECONDS):
        self.base = api_base(url)
        self._token = token.strip()
        if not (self._token.isascii() and self._token.isprintable()) or " " in self._token:
            raise RemoteError("the API token holds characters no token has (check it)")
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        if_match: str | None = None,
    ) -> Reply:
        """Send one request; the reply of a 2xx, else the refusal raised as an error."""
        url = self.base + urllib.parse.quote(path, safe="/")
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if if_match is not None:
            headers["If-Match"] = if_match
        # The scheme is http or https (api_base checked it).
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with OPENER.open(request, timeout=self.timeout) as response:
                return Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            raise refusal(error.code, error.read(MAX_PROBLEM_BYTES), self.base) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            raise RemoteError(f"cannot reach {self.base}: {reason}") from None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs).json()

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("POST", path, {} if body is None else body, **kwargs).json()


def refusal(status: int, raw: bytes, base: str) -> CorsAdminError:
    """The error a refusal of the API stands for, as the local command words it."""
    try:
        problem = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        problem = None
    if not isinstance(problem, dict) or "detail" not in problem:
        return RemoteError(
            f"{base} answered HTTP {status}, not the corsadmin API (check --url or "
            "CORSADMIN_URL: the site and the admin prefix, e.g. https://app.example.com/corsadmin)"
        )
    detail = str(problem["detail"])
    if status == 401:
        return RemoteError(f"{detail} (check --token, --token-file or CORSADMIN_TOKEN)")
    if status == 403:
        return RemoteError(f"{detail} (use a token with the write scope)")
    errors = problem.get("errors") or []
    if status == 400 and errors:
        return ValidationError(
            FieldError(str(e.get("field", "")), str(e.get("message", ""))) for e in errors
        )
    return RemoteError(detail)
