"""LoRA adapters for the local LLM: what `sovrag tune` registers and `llamacpp:BASE+lora:NAME` applies.

An adapter lives in `<data dir>/adapters/NAME/`: `adapter.gguf` (llama.cpp's LoRA format) and `adapter.json`
(its sha256 and size, the base model's name and sha256, the recipe and the evaluation). Before llama.cpp sees an
adapter, its bytes must match the recorded sha256 (a damaged file is refused, never half-applied) and its base
must be the model it is applied to: the base sha256 recorded in the adapter file itself (key
`sovrag.base_sha256`) and in the record must equal the base file's, so an adapter trained for one model is never
loaded on another, even if the architectures agree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sovrag.errors import ModelError
from sovrag.models.registry import check_gguf, sha256

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
#: Adapters shipped in the package, pinned like the bundled models (recipe: `python -m sovrag.train adapter`).
SHIPPED_SHA256 = {"sovrag-rag": "a804ead8193abfe2f6ce0a992cbb1081864fbb17fa0eefcd3f8bab64a9cf2a76"}
BASE_SHA256_KEY = "sovrag.base_sha256"


@dataclass(frozen=True)
class AdapterRecord:
    name: str
    base: str  # the base model's registry name, or its file name for a model given by path
    base_sha256: str
    sha256: str
    size: int
    rank: int
    alpha: float
    created: str
    recipe: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    #: Set when the adapter ships inside the sovrag package (path under src/sovrag/).
    shipped: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def adapters_dir(data_dir: Path) -> Path:
    return data_dir / "adapters"


def check_name(name: str) -> str:
    if not NAME.match(name or ""):
        raise ModelError(f"adapter name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', starting with "
                         "a letter or digit")
    return name


def _read(folder: Path) -> AdapterRecord | None:
    try:
        d = json.loads((folder / "adapter.json").read_text(encoding="utf-8"))
        return AdapterRecord(**{k: d[k] for k in AdapterRecord.__dataclass_fields__ if k in d})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def shipped() -> list[tuple[AdapterRecord, Path]]:
    """Adapters that ship inside the sovrag package (src/sovrag/models/adapters/NAME/)."""
    root = Path(__file__).resolve().parent / "adapters"
    out = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        rec = _read(folder)
        if rec is not None and SHIPPED_SHA256.get(rec.name) == rec.sha256:
            out.append((rec, folder / "adapter.gguf"))
    return out


def list_adapters(data_dir: Path) -> list[tuple[AdapterRecord, Path]]:
    """(record, adapter file) for every registered adapter: shipped ones, then the data directory's."""
    out = shipped()
    root = adapters_dir(data_dir)
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.is_dir() and NAME.match(folder.name):
            rec = _read(folder)
            if rec is not None and rec.name == folder.name:
                out.append((rec, folder / "adapter.gguf"))
    return out


def status(rec: AdapterRecord, path: Path) -> str:
    """'ready' or 'corrupt' (missing, or not the recorded bytes)."""
    try:
        if path.stat().st_size != rec.size:
            return "corrupt"
    except OSError:
        return "corrupt"
    return "ready" if sha256(path) == rec.sha256 else "corrupt"


def register(data_dir: Path, rec: AdapterRecord, gguf: Path) -> Path:
    """Move a written adapter into place under its name, with its record; replaces an adapter of that name.
    The folder is built beside the final one and renamed, so a reader sees the old adapter or the new, whole."""
    check_name(rec.name)
    root = adapters_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{rec.name}."))
    try:
        shutil.move(str(gguf), tmp / "adapter.gguf")
        (tmp / "adapter.json").write_text(json.dumps(rec.to_dict(), indent=2), encoding="utf-8")
        final = root / rec.name
        old = None
        if final.exists():
            old = root / f".{rec.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / "adapter.gguf"


def gguf_metadata(path: Path) -> dict[str, Any]:
    """The string and number keys of a GGUF file's header (the gguf package reads it; tensors are not loaded)."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except (ValueError, OSError, IndexError) as e:
        raise ModelError(f"adapter {path}: not a readable GGUF file ({e})") from e
    meta: dict[str, Any] = {}
    for key, f in reader.fields.items():
        if not f.types or len(f.data) != 1:
            continue
        value = f.parts[f.data[0]]
        if f.types[0] == gguf.GGUFValueType.STRING:
            meta[key] = bytes(value).decode("utf-8", "replace")
        elif value.size == 1:
            meta[key] = value.item()
    return meta


def find(data_dir: Path, name_or_path: str) -> tuple[AdapterRecord | None, Path]:
    """A registered adapter by name (its record and file), or an adapter file given by path (no record)."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix == ".gguf" or "/" in name_or_path:
        if not candidate.is_file():
            raise ModelError(f"adapter {candidate}: file not found")
        return None, candidate
    for rec, path in list_adapters(data_dir):
        if rec.name == name_or_path:
            return rec, path
    known = ", ".join(r.name for r, _ in list_adapters(data_dir)) or "none yet"
    raise ModelError(f"adapter {name_or_path!r}: not registered (adapters: {known}); train one with `sovrag tune`")


def resolve(data_dir: Path, name_or_path: str, base_sha256: str, base_label: str) -> Path:
    """The adapter file to give llama.cpp, after checking its bytes and that it was trained on this base."""
    rec, path = find(data_dir, name_or_path)
    check_gguf(path, "adapter")
    if rec is not None and status(rec, path) != "ready":
        raise ModelError(f"adapter {rec.name}: {path} does not match its recorded sha256 ({rec.sha256[:12]}…): the "
                         "file is damaged; train it again with `sovrag tune`")
    meta = gguf_metadata(path)
    if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
        raise ModelError(f"adapter {path}: not a LoRA adapter (general.type {meta.get('general.type')!r}, "
                         f"adapter.type {meta.get('adapter.type')!r})")
    trained_on = meta.get(BASE_SHA256_KEY) or (rec.base_sha256 if rec else "")
    if rec is not None and rec.base_sha256 != trained_on:
        raise ModelError(f"adapter {rec.name}: its record and its file name different base models; it is damaged")
    if trained_on and trained_on != base_sha256:
        made_for = (rec.base if rec else meta.get("sovrag.base_name")) or "another model"
        raise ModelError(f"adapter {name_or_path}: trained for {made_for} (sha256 {trained_on[:12]}…), not for "
                         f"{base_label} (sha256 {base_sha256[:12]}…); use it with its base model")
    return path
