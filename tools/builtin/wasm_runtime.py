"""Where the python tool's sandbox runtime comes from: the pinned Deno and the pinned Pyodide.

Both are checked against hashes written here before anything runs. Deno comes from PyPI
(`deno==2.9.8` in requirements.txt installs the binary); Pyodide is fetched on first use from
the npm registry's tarball (no npm needed), verified, and unpacked into the project cache.
When either cannot be had the sandbox is unavailable: code is never run any other way.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from llm.cache import cache_dir

DENO_VERSION = "2.9.8"
# SHA-256 of the deno binary inside each deno==2.9.8 wheel on PyPI (from the wheels' RECORD).
DENO_SHA256 = {
    "manylinux_2_27_x86_64": "368bca08999e02c6911b8f248167b582276b1f547db5712b6e736d7eda1dbda7",
    "manylinux_2_27_aarch64": "b484f780e5149ca05c673f1f79f7fb466f12a2295933bdad917af4a8a5c020e8",
    "macosx_10_12_x86_64": "5d206ba69742549cc161db06e86f1d93c5622e1dbc8ba9d15a618e538fbc92f4",
    "macosx_11_0_arm64": "d1e99265e5e6ee096c5780d88ff7d3e6cfdf33b1953a118b4889cab8ca6980ba",
    "win_amd64": "924397800533d3eb0ed0c889b20ad70e18b970d93acd8135bc043f425e528266",
}

PYODIDE_VERSION = "314.0.8"
PYODIDE_URL = f"https://registry.npmjs.org/pyodide/-/pyodide-{PYODIDE_VERSION}.tgz"
# The registry's `dist.integrity` for pyodide@314.0.8 (`npm view pyodide@314.0.8 dist.integrity`).
PYODIDE_INTEGRITY = (
    "sha512-74Wq1kXOC+CCEzAfxuRAO701nAcCMLjf8NrwvWpu8S41dVMXwXmLQ05dYB+F4e46AdnGo0oq7YHSVUpHsoarLQ"
    "=="
)
PYODIDE_TARBALL_BYTES = 6_487_361
# The only files the runner needs (13 MB), checked again every time the sandbox starts.
PYODIDE_FILES = {
    "pyodide.mjs": "1bb8cc14f9405aaa7cd4e00c12edd0a8539de9cc026618d6ee5a9663f367dc70",
    "pyodide.asm.mjs": "22514b8be6980e28a02c8b1d6387ce8dfe666fc4edf8d547cff5dce29ff4d972",
    "pyodide.asm.wasm": "e14d49ceca9b4a0e274ea918f3a898de2d3880b6e5573a6cfe1a2267ecc70329",
    "python_stdlib.zip": "2bd3394a145bfbbe5bbc9d9d6ab9136abbb986c6fef6c142b3a2962227aa5c28",
    "pyodide-lock.json": "5dc2fc119108bc148c7457dc86e7675b5c87e1cafd420b9c34c1eaef7b36c010",
}
PYODIDE_DIR_ENV = "QWEN_DEMO_PYODIDE_DIR"
DOWNLOAD_TIMEOUT = 60.0

_fetch_lock = threading.Lock()


class SandboxUnavailable(RuntimeError):
    """Deno or Pyodide is missing or not the pinned build; the message says how to fix it."""


@dataclass(frozen=True)
class Runtime:
    deno: Path
    pyodide_dir: Path


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=8)
def _verified_deno(path: str, size: int, mtime_ns: int) -> bool:
    del size, mtime_ns  # part of the cache key: a replaced binary is hashed again
    return _sha256_file(Path(path)) in DENO_SHA256.values()


def deno_candidates() -> list[Path]:
    """The binary the `deno` PyPI package installed, then any `deno` on PATH."""
    found: list[Path] = []
    try:
        from deno import find_deno_bin  # the PyPI package; its only job is this path

        found.append(Path(find_deno_bin()))
    except (ImportError, FileNotFoundError):
        pass
    on_path = shutil.which("deno")
    if on_path:
        found.append(Path(on_path))
    return found


def find_deno() -> Path:
    """The pinned Deno binary, or SandboxUnavailable saying why not."""
    candidates = deno_candidates()
    for path in candidates:
        st = path.stat()
        if _verified_deno(str(path.resolve()), st.st_size, st.st_mtime_ns):
            return path
    if candidates:
        raise SandboxUnavailable(
            f"{candidates[0]} is not the pinned deno {DENO_VERSION} (its SHA-256 differs); "
            f"run `pip install deno=={DENO_VERSION}`"
        )
    raise SandboxUnavailable(
        f"deno is not installed; run `pip install deno=={DENO_VERSION}` (requirements.txt has it)"
    )


def pyodide_cache_dir() -> Path:
    return cache_dir() / f"pyodide-{PYODIDE_VERSION}"


def check_pyodide_dir(folder: Path) -> str | None:
    """None if `folder` holds the pinned Pyodide files, else what is wrong with it."""
    for name, digest in PYODIDE_FILES.items():
        path = folder / name
        if not path.is_file() or path.is_symlink():
            return f"{path} is missing"
        if _sha256_file(path) != digest:
            return f"{path} is not the file of pyodide {PYODIDE_VERSION} (SHA-256 differs)"
    return None


def _verify_tarball(data: bytes) -> None:
    algo, _, expected = PYODIDE_INTEGRITY.partition("-")
    actual = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if actual != expected:
        raise SandboxUnavailable(
            f"the download of {PYODIDE_URL} does not match the pinned {algo} hash; not used"
        )


def unpack_pyodide(data: bytes, dest: Path) -> Path:
    """Verify the npm tarball and unpack only the pinned files into `dest` (atomically)."""
    _verify_tarball(data)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".pyodide-", dir=dest.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for name in PYODIDE_FILES:
                member = tar.getmember(f"package/{name}")
                if not member.isfile():
                    raise SandboxUnavailable(f"package/{name} in the tarball is not a file")
                src = tar.extractfile(member)
                assert src is not None
                (tmp / name).write_bytes(src.read())
        problem = check_pyodide_dir(tmp)
        if problem:
            raise SandboxUnavailable(problem)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def download_pyodide(dest: Path | None = None, url: str = PYODIDE_URL) -> Path:
    """Fetch the pinned tarball from the npm registry into the cache; return the folder."""
    dest = dest or pyodide_cache_dir()
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as resp:  # noqa: S310
            data = resp.read(PYODIDE_TARBALL_BYTES + 1)
    except OSError as e:
        raise SandboxUnavailable(
            f"could not download pyodide {PYODIDE_VERSION} from {url} ({e}); with network "
            f"access it is fetched on first use, or put its files in a folder and set "
            f"{PYODIDE_DIR_ENV}"
        ) from e
    return unpack_pyodide(data, dest)


def find_pyodide(download: bool = True) -> Path:
    """The verified Pyodide folder: $QWEN_DEMO_PYODIDE_DIR, else the cache (fetched if
    missing and `download`)."""
    override = os.environ.get(PYODIDE_DIR_ENV, "").strip()
    if override:
        folder = Path(override).expanduser().resolve()
        problem = check_pyodide_dir(folder)
        if problem:
            raise SandboxUnavailable(f"{PYODIDE_DIR_ENV}: {problem}")
        return folder
    folder = pyodide_cache_dir().resolve()
    with _fetch_lock:
        problem = check_pyodide_dir(folder)
        if problem is None:
            return folder
        if not download:
            raise SandboxUnavailable(f"pyodide {PYODIDE_VERSION} is not in the cache: {problem}")
        return download_pyodide(folder)


SNAPSHOT = f"snapshot-deno-{DENO_VERSION}.bin"  # kept next to the Pyodide files


def _snapshot_record(folder: Path) -> Path:
    return folder / (SNAPSHOT + ".sha256")


def cached_snapshot(folder: Path) -> str | None:
    """The snapshot's file name if one saved earlier is intact, else None."""
    path = folder / SNAPSHOT
    try:
        expected = _snapshot_record(folder).read_text().strip()
        return SNAPSHOT if path.is_file() and _sha256_file(path) == expected else None
    except OSError:
        return None


def save_snapshot(folder: Path, data: bytes) -> None:
    """Keep a fresh interpreter's memory image so the next start skips Python's start-up.
    A folder we cannot write (a read-only $QWEN_DEMO_PYODIDE_DIR) just means no cache."""
    try:
        tmp = folder / (SNAPSHOT + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, folder / SNAPSHOT)
        _snapshot_record(folder).write_text(hashlib.sha256(data).hexdigest() + "\n")
    except OSError:
        pass


def drop_snapshot(folder: Path) -> None:
    for path in (folder / SNAPSHOT, _snapshot_record(folder)):
        try:
            path.unlink()
        except OSError:
            pass


def find_runtime(download: bool = True) -> Runtime:
    """Deno and Pyodide, both verified, or SandboxUnavailable."""
    return Runtime(deno=find_deno(), pyodide_dir=find_pyodide(download))
