"""corsadmin's outgoing HTTP: one opener that never follows a redirect.

The alerts' webhook (:mod:`corsadmin.runtime.alerts`) and the CLI's client of the
JSON API (:mod:`corsadmin.cli.client`) send secrets (a signature, a bearer token)
and bodies meant for one address: a redirect is an answer like any other non-2xx
one, never followed (a POST redirected would become a GET, and the secret would go
where it was not meant to). Proxies from the environment are used, as urllib does.
"""

from __future__ import annotations

import urllib.request
from typing import Any, Final


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


#: The opener every outgoing request of corsadmin goes through.
OPENER: Final = urllib.request.build_opener(_NoRedirects())
