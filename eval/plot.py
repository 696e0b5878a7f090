"""One PNG comparing the settings of eval reports: grouped bars of the share metrics.

    python -m eval.plot eval/results/a.json [b.json ...] --out eval/results/a.png

Each bar group is one metric (answer right, junk, tool selection, args Rouge-L, false
positives, final answers), one bar per setting; several reports (runs of one model) go into
one figure with their model name in the label. matplotlib runs headless (Agg).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

METRICS: tuple[tuple[str, str, bool], ...] = (  # summary key, label, higher is better
    ("answer_right_rate", "answer right", True),
    ("junk_rate", "junk", False),
    ("tool_accuracy", "tool selection", True),
    ("arguments_rouge_l", "args Rouge-L", True),
    ("false_positive_rate", "false positives", False),
    ("final_answer_rate", "final answers", True),
)


def _rows(reports: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    several = len({r.get("model", "") for r in reports}) > 1
    rows = []
    for report in reports:
        for run in report.get("runs", []):
            label = run["label"]
            if several:
                label = f"{report.get('model', '?')}: {label}"
            seconds = run["summary"].get("mean_seconds")
            if seconds is not None:
                label += f" ({seconds:.1f} s/turn)"
            rows.append((label, run["summary"]))
    if not rows:
        raise ValueError("no runs in the report(s) to plot")
    return rows


def write_plot(reports: Sequence[dict[str, Any]], out: str | Path, title: str = "") -> Path:
    """Write the PNG; metrics a report lacks (older reports) are left out of their group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _rows(reports)
    n = len(rows)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(8.0, 1.6 * len(METRICS) + 0.25 * n), 4.8))
    for i, (label, summary) in enumerate(rows):
        xs, ys = [], []
        for j, (key, _, _) in enumerate(METRICS):
            value = summary.get(key)
            if value is not None:
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(value)
        bars = ax.bar(xs, ys, width, label=label)
        if n <= 6:
            ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(
        range(len(METRICS)),
        [f"{name}\n({'higher' if up else 'lower'} is better)" for _, name, up in METRICS],
        fontsize=8,
    )
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("share of cases")
    models = sorted({r.get("model", "") for r in reports} - {""})
    cases = sorted({len(r.get("case_ids", [])) for r in reports})
    ax.set_title(title or f"{', '.join(models)}: {'/'.join(map(str, cases))} cases", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.plot", description=__doc__.split("\n")[0])
    p.add_argument("reports", nargs="+", help="JSON reports written by python -m eval --json")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--title", default="")
    args = p.parse_args(argv)
    try:
        reports = [json.loads(Path(f).read_text(encoding="utf-8")) for f in args.reports]
        out = write_plot(reports, args.out, args.title)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
