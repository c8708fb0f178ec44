"""The policy document (format 1): reading a whole document, and writing policies as one.

Pure: validation goes through :mod:`corsadmin.policy.spec`; no Flask, no database.
``docs/policy-document.md`` describes the format.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ..errors import FieldError, ValidationError
from .spec import PolicySpec, field_name, validate_policy

#: The ``"corsadmin"`` key of a document this release reads and writes.
DOCUMENT_FORMAT: Final = 1

#: How deep ``[`` and ``{`` may nest in a document read from a file or a request (a
#: policy document needs 4: the document, its policies, a policy, an origin object).
MAX_DOCUMENT_DEPTH: Final = 32


def canonical(spec: PolicySpec) -> dict[str, Any]:
    """A spec as a document, origins sorted: equal for policies that enforce the same."""
    document = spec.to_document()
    document["origins"] = sorted(
        (e.to_document() for e in spec.origins),
        key=lambda e: e if isinstance(e, str) else e["origin"],
    )
    return document


def parse_document(document: Any) -> list[PolicySpec]:
    """Validate a whole policy document; every problem reported with its place."""
    if not isinstance(document, Mapping):
        raise ValidationError.single("", "a policy document must be a JSON object")
    errors: list[FieldError] = []
    for key in sorted(field_name(k) for k in document if k not in ("corsadmin", "policies")):
        errors.append(FieldError(key, "unknown field"))
    format_ = document.get("corsadmin")
    if type(format_) is not int or format_ != DOCUMENT_FORMAT:  # not True, not 1.0
        errors.append(
            FieldError("corsadmin", f"must be {DOCUMENT_FORMAT} (the format of this document)")
        )
    policies = document.get("policies")
    specs: list[PolicySpec] = []
    if not isinstance(policies, list):
        errors.append(FieldError("policies", "must be a list of policies"))
        policies = []
    names: dict[str, int] = {}
    paths: dict[str, int] = {}
    for i, data in enumerate(policies):
        try:
            spec = validate_policy(data)
        except ValidationError as exc:
            errors.extend(exc.prefixed(f"policies[{i}]").errors)
            continue
        if spec.name in names:
            errors.append(
                FieldError(
                    f"policies[{i}].name",
                    f"{spec.name!r} is used by policies[{names[spec.name]}] too",
                )
            )
        if spec.path.text in paths:
            errors.append(
                FieldError(
                    f"policies[{i}].path",
                    f"{spec.path.text!r} is used by policies[{paths[spec.path.text]}] too",
                )
            )
        names.setdefault(spec.name, i)
        paths.setdefault(spec.path.text, i)
        specs.append(spec)
    if errors:
        raise ValidationError(errors)
    return specs


def shown_value(value: Any) -> str:
    """A document value in a change's summary: a list as ``GET, POST`` (``(none)`` when
    empty), anything else as before (a text quoted, ``None``, a number): never a
    Python list repr."""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) if value else "(none)"
    return repr(value)


def describe_change(before: PolicySpec, after: PolicySpec) -> str:
    """A short human summary of what changed between two versions of a policy."""
    old, new = canonical(before), canonical(after)
    parts: list[str] = []
    for key in new:
        if key == "origins":
            old_o = {o if isinstance(o, str) else o["origin"] for o in old["origins"]}
            new_o = {o if isinstance(o, str) else o["origin"] for o in new["origins"]}
            added, removed = sorted(new_o - old_o), sorted(old_o - new_o)
            if added:
                parts.append("allowed " + ", ".join(added))
            if removed:
                parts.append("removed " + ", ".join(removed))
            if not added and not removed and old["origins"] != new["origins"]:
                parts.append("changed origin notes or expiry")
        elif old.get(key) != new[key]:
            parts.append(f"{key}: {shown_value(old.get(key))} -> {shown_value(new[key])}")
    return f"updated {after.name}: " + ("; ".join(parts) if parts else "no change")


def too_deep() -> str:
    """The message (after a name) for JSON nested deeper than MAX_DOCUMENT_DEPTH."""
    return f"is nested too deeply (more than {MAX_DOCUMENT_DEPTH} levels of [ and {{)"


def check_document_text(document: Any, refuse: Callable[[str], ValidationError]) -> None:
    """Refuse decoded JSON nested deeper than MAX_DOCUMENT_DEPTH, or holding a string
    that is not text (a lone surrogate escape such as \\ud800): no database stores it.
    ``refuse(message)`` makes the error (naming the file or the request body)."""
    stack: list[tuple[Any, str, int]] = [(document, "", 1)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DOCUMENT_DEPTH:
                raise refuse(too_deep())
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key, f"{where}.{key}" if where else key, refuse)
                    place = f"{where}.{key}" if where else key
                else:
                    place = f"{where}[{key}]"
                stack.append((item, place, depth + 1))
        elif isinstance(value, str):
            _check_text(value, where, refuse)


def _check_text(text: str, where: str, refuse: Callable[[str], ValidationError]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        place = where.encode("utf-8", "backslashreplace").decode("utf-8")  # (a key's own)
        raise refuse(
            f"{place or 'the document'} holds a lone surrogate escape (\\u{code:04x}), "
            "which is not text"
        ) from None
