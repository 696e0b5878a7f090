"""The eval's outputs: a table per setting (plain or Markdown) and the JSON report."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from eval.scoring import CaseResult, Summary, summarise
from eval.switches import EvalSetting

COLUMNS: tuple[tuple[str, str | None], ...] = (
    ("setting", None),
    ("n", "cases"),
    ("right", "answer_right_rate"),
    ("junk", "junk_rate"),
    ("fallback", "fallback_rate"),
    ("tool acc", "tool_accuracy"),
    ("args R-L", "arguments_rouge_l"),
    ("R-L|right tool", "arguments_rouge_l_selected"),
    ("false pos", "false_positive_rate"),
    ("sequence", "sequence_accuracy"),
    ("final", "final_answer_rate"),
    ("steps", "mean_steps"),
    ("s/turn", "mean_seconds"),
    ("invalid", "step_errors"),
    ("repaired", "repaired_calls"),
    ("rejected", "rejected_answers"),
)


def _cell(value: Any, key: str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if key in ("mean_steps", "mean_seconds"):
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def format_table(rows: Sequence[tuple[str, Summary]], markdown: bool = False) -> str:
    """A fixed-width (or Markdown) table, one row per setting."""
    head = [name for name, _ in COLUMNS]
    body = [[label] + [_cell(getattr(s, key), key) for _, key in COLUMNS[1:]] for label, s in rows]
    if markdown:
        lines = ["| " + " | ".join(h.replace("|", "\\|") for h in head) + " |"]
        lines += ["|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*r) for r in body]
    return "\n".join(lines)


def format_misses(runs: Sequence[tuple[EvalSetting, list[CaseResult]]]) -> str:
    """One line per case whose answer was not right: the setting, the case and why."""
    lines = []
    for setting, results in runs:
        for r in results:
            if r.answer_right is False:
                why = "; ".join(r.answer_problems) or "-"
                lines.append(f"{setting.label}  {r.id}: {why}")
    return "\n".join(lines)


def _settings_dict(setting: EvalSetting) -> dict[str, Any]:
    out = {
        k: sorted(v) if isinstance(v, frozenset) else v
        for k, v in dataclasses.asdict(setting.settings).items()
        if k != "system_prompt"
    }
    return out | {"system_prompt_variant": setting.switches.get("prompt", "default")}


def report_json(
    runs: Sequence[tuple[EvalSetting, list[CaseResult]]], meta: dict[str, Any]
) -> dict[str, Any]:
    """JSON for dashboards and plots: run metadata, then per setting its summary and every
    case (with the model's raw text)."""
    return {
        **meta,
        "runs": [
            {
                "label": setting.label,
                "switches": setting.switches,
                "settings": _settings_dict(setting),
                "summary": summarise(results).to_dict(),
                "cases": [r.to_dict() for r in results],
            }
            for setting, results in runs
        ],
    }


def ranking_key(summary: dict[str, Any]) -> tuple[float, float, float]:
    """How settings are ranked for a model's default (issue 21): answer right first, then
    fewer false positives, then less time per turn (sort ascending: the best comes first)."""
    right = summary.get("answer_right_rate")
    false_pos = summary.get("false_positive_rate")
    seconds = summary.get("mean_seconds")
    return (
        -(right if right is not None else -1.0),
        false_pos if false_pos is not None else 1.0,
        seconds if seconds is not None else float("inf"),
    )


def best_run(report: dict[str, Any]) -> dict[str, Any]:
    """The run of a JSON report that ranks best (partial runs are never chosen)."""
    runs = [r for r in report.get("runs", []) if not r["label"].endswith("(partial)")]
    if not runs:
        raise ValueError("no finished runs in the report")
    return min(runs, key=lambda r: ranking_key(r["summary"]))
