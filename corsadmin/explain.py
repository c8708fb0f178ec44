"""Deprecated alias, kept for one release: see docs/architecture.md for the new home."""

from corsadmin._deprecated import alias

alias(__name__, "corsadmin.engine.explain")
