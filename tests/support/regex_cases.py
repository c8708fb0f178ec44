"""The hardest ``re:`` origin rules the write-time check is given: the test suite
shows each is refused (tests/test_origin_regex.py), and benchmarks/regex_check.py
measures how long the refusal takes."""

from __future__ import annotations

from typing import Final

from corsadmin.policy.origins import MAX_REGEX_LENGTH

#: Patterns whose automata or searches blow up without the checker's bounds.
PATHOLOGICAL: Final = (
    "re:(a|b)*a(a|b){30}",
    r"re:https://(a|b)*a(a|b){30}\.example",
    r"re:https://[a-z]{1000}\.com",
    "re:https://" + "(a|b)*a(a|b){20}" * 8,
    "re:https://" + r"[a-z]{0,999}\." * 8 + "com",
)


def worst_of_the_longest_length() -> str:
    """The worst found: nested alternations under counted repeats up to the length bound."""
    unit = "(a|b)*a(a|b){9}"
    return "re:^https://" + unit * ((MAX_REGEX_LENGTH - 10) // len(unit))
