"""bench/bench_constrain.py runs end to end on the tiny model and prints parseable lines.

Only the shape is checked (the calls were constrained, the plain answer was not, the numbers
parse), never a speed target: timings here depend on the machine's load.
"""

from __future__ import annotations

import re


def test_bench_constrain_quick(tiny_model_dir, capsys):
    from bench import bench_constrain

    assert bench_constrain.main(["--rounds", "1", "--model", str(tiny_model_dir)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"one-time: llguidance tokenizer \d+\.\d+ s, compile \d+\.\d+ ms", out)
    calls, answer = (line for line in out.splitlines() if " ms/token, ratio " in line)
    assert calls.startswith("three tool calls") and "[no structure]" not in calls
    assert answer.startswith("plain answer") and answer.endswith("[no structure]")
    for line in (calls, answer):
        ratio = float(re.search(r"ratio (\d+\.\d+)", line)[1])
        assert ratio > 0 and re.search(r"(PASS|MISS)", line)
    assert len(re.findall(r"engine alone: \d+\.\d+ ms/token", out)) == 2
