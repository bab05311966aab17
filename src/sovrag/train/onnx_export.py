"""From fine-tuned torch weights to the ONNX files sovrag runs: fp32, and int8 weights (dynamic quantization).

onnxruntime's transformer fusions (onnxruntime.transformers.optimizer) were measured and left out: on this CPU
the session's own graph optimizations already fuse what matters, and the fused int8 graph was no faster.
"""

from __future__ import annotations

import json
from pathlib import Path

from sovrag.errors import SovragError
from sovrag.train.crossencoder import export_onnx, load_parts


def model_folder(weights: Path, base: Path, name: str, work: Path) -> tuple[Path, dict]:
    """(a save_pretrained folder, what the fit recorded) from a `fit` output folder or from carried parts."""
    weights = Path(weights)
    if (weights / "torch" / "config.json").is_file():
        info = weights / "dev.json"
        return weights / "torch", json.loads(info.read_text()) if info.is_file() else {}
    names = sorted(p.name[: -len(".part0.safetensors")] for p in weights.glob("*.part0.safetensors"))
    if name in names or len(names) == 1:
        name = name if name in names else names[0]
        info = weights / f"{name}.dev.json"
        return load_parts(base, weights, name, work / "torch"), json.loads(info.read_text()) if info.is_file() else {}
    raise SovragError(f"weights {weights}: neither a `fit` output (torch/) nor one model's `fit --parts` files "
                      f"(found: {', '.join(names) or 'none'})")


def onnx_variants(torch_dir: Path, work: Path) -> dict[str, Path]:
    return export_onnx(torch_dir, work, quantize=True)
