"""Old module paths kept for one release: a module that re-exports its new home's names.

``corsadmin.store`` became ``corsadmin.db.store`` (and ``corsadmin.db.loader``,
``corsadmin.policy.document``), and so on; see ``docs/architecture.md``. Each old
module calls :func:`alias` once, which copies the public names of its new homes
and warns (``DeprecationWarning``) naming the importer's line, not importlib's.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from types import FrameType

#: Deprecated since 0.2.0, removed in the release after it.
REMOVED_IN = "0.3.0"


def _importer_stacklevel() -> int:
    """The ``stacklevel`` that makes the warning name the module importing the alias.

    Above the alias module's body are importlib's frames: ``warnings.warn`` skips
    its ``_bootstrap`` frames by itself, but counts others (``import_module``).
    """
    frame: FrameType | None = sys._getframe(3)  # above _importer_stacklevel, alias, the body
    level = 3
    while frame is not None:
        filename = frame.f_code.co_filename
        if not str(frame.f_globals.get("__name__", "")).startswith("importlib"):
            break
        if not ("importlib" in filename and "_bootstrap" in filename):
            level += 1  # a frame warnings.warn counts
        frame = frame.f_back
    return level


def alias(name: str, *homes: str) -> None:
    """Make module ``name`` a deprecated alias of ``homes`` (public names, first home wins)."""
    module = sys.modules[name]
    exported: list[str] = []
    for home in reversed(homes):
        new = importlib.import_module(home)
        names = getattr(new, "__all__", None) or [n for n in vars(new) if not n.startswith("_")]
        for attribute in names:
            setattr(module, attribute, getattr(new, attribute))
            if attribute not in exported:
                exported.append(attribute)
    module.__all__ = sorted(exported)  # type: ignore[attr-defined]
    warnings.warn(
        f"{name} is deprecated and will be removed in corsadmin {REMOVED_IN}; "
        f"import from {' or '.join(homes)} instead",
        DeprecationWarning,
        stacklevel=_importer_stacklevel(),
    )
