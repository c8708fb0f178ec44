"""What trying a draft costs per request, counted by callgrind (repeatable).

    python benchmarks/trial_bench.py [--repo DIR] [--modes none,here,...] [--kinds get,preflight]

The request loop of ``benchmarks/instructions.py`` (bench.py's corsadmin app, the
small policy ``api`` plus a policy ``web`` on ``/web/**``, 3 origins, memo hits) run
under ``valgrind --tool=callgrind`` with 1,000 and 5,000 requests; the difference per
request is the request's own cost. Modes:

- ``none``: no draft (``--repo`` measures another checkout this way: before/after);
- ``elsewhere``: a draft changes ``web`` only (the request's policy is left alone);
- ``here``: a draft adds an origin to ``api`` (every request is tried, same answer);
- ``changed``: a draft removes every origin of ``api`` (every request is tried and
  counted as newly refused).

Targets: a draft active within 1.3x of no draft; no draft within 2% of before.
Needs Debian's valgrind.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

from instructions import callgrind_instructions

HERE = Path(__file__).resolve().parent
SHORT, LONG = 1000, 5000
MODES: Final = ("none", "elsewhere", "here", "changed")
WEB: Final = {"name": "web", "path": "/web/**", "origins": ["https://web.example"]}


def make_draft(app: Any, mode: str) -> None:
    """The mode's draft, saved in this process (so its snapshot tries it at once)."""
    if mode == "none":
        return
    from corsadmin import CorsAdmin
    from corsadmin.db.drafts import DraftStore

    with app.app_context():
        drafts = DraftStore(CorsAdmin.state(app).store("bench"))
        if mode == "elsewhere":
            drafts.add_origin("web", "https://new.example")
        elif mode == "here":
            drafts.add_origin("api", "https://new.example")
        else:
            drafts.update_policy("api", {"origins": []})
    trial = CorsAdmin.state(app).holder.current().trial
    if trial is None:
        raise SystemExit(f"{mode}: the draft is not tried")


def request_loop(repo: Path, count: int, preflight: bool, mode: str) -> None:
    """Inside valgrind: set up the app from ``repo``, warm up, then ``count`` requests."""
    sys.path[:0] = [str(repo / "benchmarks"), str(repo)]
    import bench  # the checkout's own bench.py

    with tempfile.TemporaryDirectory() as directory:
        app = bench.corsadmin_app([*bench.small_policies(), WEB], Path(directory))
        state = app.extensions["corsadmin"]
        state.holder.interval = 3600.0  # no refresh or usage flush inside the count
        state.usage_flush_interval = 3600.0
        envs = [bench.environ("/api/items/1", o, preflight) for o in bench.SMALL_ORIGINS]
        for env in envs:
            bench.check_allowed(app, env)  # the live answer, whatever the draft
        make_draft(app, mode)
        for env in envs:
            bench.check_allowed(app, env)
        bench.per_request(app, envs, 300)
        bench.per_request(app, envs, count)
        state.holder.stop()


def collected(repo: Path, count: int, kind: str, mode: str) -> int:
    args = ["--inner", str(count), "--repo", str(repo), "--modes", mode, "--kinds", kind]
    return callgrind_instructions(Path(__file__), args)


def per_request(repo: Path, kind: str, mode: str) -> int:
    return (collected(repo, LONG, kind, mode) - collected(repo, SHORT, kind, mode)) // (
        LONG - SHORT
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=HERE.parent, help="the checkout to measure")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--kinds", default="get,preflight")
    parser.add_argument("--inner", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    modes = args.modes.split(",")
    kinds = args.kinds.split(",")
    if args.inner is not None:
        request_loop(repo, args.inner, kinds[0] == "preflight", modes[0])
        return 0
    for kind in kinds:
        figures = {mode: per_request(repo, kind, mode) for mode in modes}
        base = figures.get("none")
        for mode, value in figures.items():
            ratio = f" ({value / base:.3f}x no draft)" if base and mode != "none" else ""
            print(f"{repo.name} {kind} {mode}: {value:,} instructions per request{ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
