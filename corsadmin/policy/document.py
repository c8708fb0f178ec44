"""The policy document (format 1): reading a whole document, and writing policies as one.

Pure: validation goes through :mod:`corsadmin.policy.spec`; no Flask, no database.
``docs/policy-document.md`` describes the format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..errors import FieldError, ValidationError
from .spec import PolicySpec, field_name, validate_policy

#: The ``"corsadmin"`` key of a document this release reads and writes.
DOCUMENT_FORMAT: Final = 1


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
            parts.append(f"{key}: {old.get(key)!r} -> {new[key]!r}")
    return f"updated {after.name}: " + ("; ".join(parts) if parts else "no change")
