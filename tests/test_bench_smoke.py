"""The bench scripts run end to end on the tiny model and print parseable ratio lines.

Only the output's shape and sanity are checked (numbers parse, are positive, and the token
counts add up), never whether a speed target is met: timings here depend on machine load.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

RATIO = re.compile(r"ratio (\d+\.\d+)")
NUMBER = r"(\d+(?:\.\d+)?)"


def ratio_lines(out: str) -> list[tuple[str, float]]:
    return [(line, float(m[1])) for line in out.splitlines() if (m := RATIO.search(line))]


def test_bench_kv_quick(tiny_model_dir, capsys):
    from bench import bench_kv

    assert bench_kv.main(["--quick", "--model", str(tiny_model_dir)]) == 0
    out = capsys.readouterr().out
    for fmt in ("react", "native"):
        assert f"{fmt}: outputs identical with and without reuse" in out
    lines = ratio_lines(out)
    assert len(lines) == 8  # 2 formats × 2 turns × (prefill, wall)
    for line, ratio in lines:
        assert ratio > 0 and re.search(r"(PASS|MISS)$", line), line
        if "prefill tokens" in line:
            m = re.search(rf"with reuse {NUMBER}\s+without {NUMBER}\s+\(of {NUMBER}", line)
            with_reuse, without, prompt = (float(x) for x in m.groups())
            assert 0 < with_reuse < without == prompt  # reuse saves prefill, never adds
            assert ratio == pytest.approx(with_reuse / without, abs=1e-3)


def test_bench_kv_random_7b_fails_clearly_without_cuda(capsys):
    import torch

    from bench import bench_kv

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: --random-7b would really build the 7B model")
    with pytest.raises(SystemExit, match="needs a CUDA GPU"):
        bench_kv.main(["--quick", "--random-7b"])


def test_random_qwen1_config_path_builds_a_working_backend():
    """The --random-7b code path on a scaled-down v1 config, on CPU."""
    from bench import bench_kv
    from llm.types import GenerationConfig, GenerationRequest, drain

    if not bench_kv.QWEN_TIKTOKEN.is_file():
        pytest.skip("the shared Qwen v1 tokenizer file is not here")
    small = {**bench_kv.QWEN_7B_V1_CONFIG, "hidden_size": 64, "kv_channels": 16}
    small.update(num_attention_heads=4, num_hidden_layers=1, intermediate_size=256)
    backend = bench_kv.random_qwen1_backend(small, bench_kv.QWEN_TIKTOKEN, "cpu")
    assert backend.info.family == "qwen1" and backend.model.config.vocab_size == 151936
    request = GenerationRequest(
        [{"role": "user", "content": "你好"}], config=GenerationConfig(max_new_tokens=3)
    )
    assert drain(backend.stream(request)).completion_tokens > 0


def test_bench_swap_quick(tiny_model_dir, capsys):
    from bench import bench_swap

    tiny = str(tiny_model_dir)
    assert bench_swap.main(["--quick", "--model-a", tiny, "--model-b", tiny]) == 0
    out = capsys.readouterr().out
    rss = [float(x) for x in re.findall(rf"rss\s+{NUMBER} MB", out)]
    assert len(rss) == 8 and all(x > 50 for x in rss)  # a Python process with torch: > 50 MB
    lines = ratio_lines(out)
    assert [line.split(":")[0] for line, _ in lines] == [
        "after swap, less B's own footprint / before first load",
        "after swap / B alone",
        "after unload / before first load",
        "after swap / before any load (raw, includes B)",
    ]
    assert all(ratio > 0 for _, ratio in lines)


@pytest.mark.browser
def test_bench_ttft_quick(tiny_model_dir, capsys):
    pytest.importorskip("playwright")
    from bench import bench_ttft

    if not Path(bench_ttft.CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    assert bench_ttft.main(["--quick", "--model", str(tiny_model_dir)]) == 0
    out = capsys.readouterr().out
    ms = {
        key: float(m[1])
        for key in ("browser TTFT", "service TTFT in the same turns", "service TTFT alone")
        if (m := re.search(rf"{key}.*?{NUMBER} ms", out))
    }
    assert len(ms) == 3 and all(v > 0 for v in ms.values()), out
    m = re.search(rf"difference (-?{NUMBER}) ms\s+ratio {NUMBER}\s+target", out)
    assert m, out
    difference, ratio = float(m[1]), float(m[3])
    browser, alone = ms["browser TTFT"], ms["service TTFT alone"]
    assert difference == pytest.approx(browser - alone, abs=0.2)
    assert ratio == pytest.approx(browser / alone, rel=0.01)
