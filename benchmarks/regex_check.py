"""How long the write-time check of an ``re:`` origin rule takes on the hardest
patterns known (each is refused: "too complex to check", or the origins it would
let in).

    python benchmarks/regex_check.py [--repeat N]

Each pattern is parsed as ``origin add`` parses it (``parse_origin_rule``: RE2's
compile, then the checker), with the verdict cache emptied before every run, so
every run does the whole check. Reported per pattern: the fastest and the slowest
of N runs, in ms of wall-clock time. The target: under a second for every pattern
(the checker is bounded by work, ``MAX_REGEX_CHECK_WORK``, and by automaton size,
``MAX_REGEX_NFA_STATES``; this shows what the bounds cost in time). The test suite
shows the same patterns are refused (tests/test_origin_regex.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Final

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's corsadmin and tests.support

from corsadmin.policy import origins  # noqa: E402
from tests.support.regex_cases import PATHOLOGICAL, worst_of_the_longest_length  # noqa: E402

TARGET_SECONDS: Final = 1.0


def time_check(text: str, repeat: int) -> tuple[float, float, str]:
    """(fastest, slowest) seconds of ``repeat`` whole checks of ``text``, and the verdict."""
    times = []
    verdict = "accepted"
    for _ in range(repeat):
        origins._regex_verdict.cache_clear()
        started = time.perf_counter()
        try:
            origins.parse_origin_rule(text)
        except origins.OriginRuleError as exc:
            verdict = str(exc)
        times.append(time.perf_counter() - started)
    return min(times), max(times), verdict


def label(text: str) -> str:
    """The pattern for a Markdown table cell: shortened, its pipes escaped."""
    short = text if len(text) <= 60 else f"{text[:40]}… ({len(text)} characters)"
    return short.replace("|", "\\|")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    lines = [
        f"The write-time check of an `re:` rule, {args.repeat} runs each "
        f"(target: under {TARGET_SECONDS:.0f} s):",
        "",
        "| pattern | verdict | fastest | slowest |",
        "|---|---|---:|---:|",
    ]
    met = True
    for text in (*PATHOLOGICAL, worst_of_the_longest_length()):
        fastest, slowest, verdict = time_check(text, args.repeat)
        met &= slowest < TARGET_SECONDS
        short = "too complex" if "too complex" in verdict else verdict.split(":")[0]
        lines.append(
            f"| `{label(text)}` | {short} | {fastest * 1e3:.0f} ms | {slowest * 1e3:.0f} ms |"
        )
    print("\n".join(lines))
    if not met:
        print("The target was not met.", file=sys.stderr)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
