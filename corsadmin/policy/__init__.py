"""The data contract, pure (no Flask, no database): origin rules (``origins``,
``origin_regex``), route patterns (``paths``), the table of a policy's fields
(``fields``), a policy's validated form (``spec``) and the policy document
(``document``).

Until 0.2.0 ``corsadmin.policy`` was the module now at ``corsadmin.policy.spec``;
its names are still reachable here for one release, with a DeprecationWarning.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from .._deprecated import REMOVED_IN


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    spec = importlib.import_module(".spec", __name__)
    try:
        value = getattr(spec, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    warnings.warn(
        f"corsadmin.policy.{name} is deprecated and will be removed in corsadmin {REMOVED_IN}; "
        f"import it from corsadmin.policy.spec instead",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
