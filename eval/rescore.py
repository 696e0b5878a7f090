"""Re-check the answers of saved reports against the current case file.

    python -m eval.rescore eval/results/a.json [b.json ...] [--cases eval/cases.jsonl]

A model run takes hours on a small CPU; an answer spec made stricter or fairer takes a
second to re-apply. The answers are the ones the model gave; only their scoring changes
(answer right, junk, why wrong, and each summary). Time questions are checked against when
each turn ran: its recorded start and end, or for reports from before those were recorded,
the report's start plus the turns' seconds (a few seconds off; the check allows 5 minutes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.answers import junk_kind
from eval.answers import Window, check_answer
from eval.cases import Case, CaseFileError, load_cases
from eval.scoring import CaseResult, summarise


def _windows(report: dict[str, Any]) -> dict[tuple[int, int], Window]:
    """Each case's run time, by (run index, case index)."""
    clock = dt.datetime.fromisoformat(report["date"])
    out = {}
    for i, run in enumerate(report["runs"]):
        for j, case in enumerate(run["cases"]):
            start = dt.datetime.fromisoformat(case["started"]) if case.get("started") else clock
            end = (
                dt.datetime.fromisoformat(case["ended"])
                if case.get("ended")
                else start + dt.timedelta(seconds=case["seconds"])
            )
            out[i, j] = Window(start, end)
            clock = end
    return out


def rescore(report: dict[str, Any], cases: Sequence[Case]) -> dict[str, Any]:
    """The report with every answer checked again (a new dict; the input is not changed)."""
    by_id = {c.id: c for c in cases}
    missing = sorted({c["id"] for r in report["runs"] for c in r["cases"]} - set(by_id))
    if missing:
        raise CaseFileError(f"cases not in the case file: {missing}")
    windows = _windows(report)
    out = json.loads(json.dumps(report))
    for i, run in enumerate(out["runs"]):
        results = []
        for j, data in enumerate(run["cases"]):
            spec = by_id[data["id"]].answer
            final = data["final_answer"]
            answer = data.get("answer", "") if final else ""
            data["junk"] = junk_kind(answer)
            if spec is not None:
                check = check_answer(spec, answer, windows[i, j])
                data["answer_right"] = check.right
                data["answer_problems"] = (
                    list(check.problems) if final else [f"no final answer ({data['outcome']})"]
                )
            results.append(CaseResult.from_dict(data))
        run["summary"] = summarise(results).to_dict()
    out["rescored"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.rescore", description=__doc__.split("\n")[0])
    p.add_argument("reports", nargs="+", help="JSON reports, rewritten in place")
    p.add_argument("--cases", default=str(Path(__file__).with_name("cases.jsonl")))
    args = p.parse_args(argv)
    try:
        cases = load_cases(args.cases)
        for name in args.reports:
            path = Path(name)
            report = rescore(json.loads(path.read_text(encoding="utf-8")), cases)
            path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
            rights = [r["summary"]["answer_right_rate"] for r in report["runs"]]
            print(f"rescored {path}: answer right {rights}", file=sys.stderr)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
