"""Embedders behind one protocol, chosen by a spec string.

- `onnx:minilm-l6-v2`           bundled model from the registry (default)
- `onnx:/path/to/model.onnx`    any sentence-transformers ONNX export; tokenizer.json beside it
- `onnx:/path/to/dir`           a folder holding model.onnx and tokenizer.json
- `openai://host:port/v1?model=NAME` (or `openai+https://...`): an OpenAI-compatible host; the key is
  read from SOVRAG_EMBED_API_KEY or OPENAI_API_KEY
"""

from __future__ import annotations

import os
from pathlib import Path

from sovrag.config import OPENAI_SCHEMES, Settings, parse_openai_spec
from sovrag.embed.base import Embedder, normalize
from sovrag.embed.onnx import OnnxEmbedder
from sovrag.embed.openai_compat import OpenAIEmbedder
from sovrag.errors import ConfigError
from sovrag.models import registry

__all__ = ["Embedder", "OnnxEmbedder", "OpenAIEmbedder", "create_embedder", "normalize"]

_cache: dict[tuple[str, str, int, int], Embedder] = {}


def create_embedder(settings: Settings, spec: str | None = None) -> Embedder:
    """Build (once per process and spec) the embedder a spec string names."""
    spec = spec or settings.embedder
    key = (spec, str(settings.models_dir), settings.embed_threads, settings.embed_batch_size)
    if key not in _cache:
        _cache[key] = _build(settings, spec)
    return _cache[key]


def _build(settings: Settings, spec: str) -> Embedder:
    scheme, _, rest = spec.partition(":")
    if scheme == "onnx":
        if not rest:
            raise ConfigError(f"embedder {spec!r}: give a bundled model name or a path after 'onnx:'")
        path = Path(rest).expanduser()
        if path.is_dir():
            model, tok, name = path / "model.onnx", path / "tokenizer.json", f"onnx:{path.resolve()}"
        elif path.suffix == ".onnx" or "/" in rest:
            model, tok, name = path, path.with_name("tokenizer.json"), f"onnx:{path.resolve()}"
        else:
            m = registry.get_spec(rest)
            if m.kind != "embedder":
                raise ConfigError(f"embedder {spec!r}: {m.name} is an {m.kind}, not an embedder")
            model = registry.resolve_file(settings.models_dir, m.name, "model.onnx", settings.auto_pull)
            tok = registry.resolve_file(settings.models_dir, m.name, "tokenizer.json", settings.auto_pull)
            name = f"onnx:{m.name}"
        return OnnxEmbedder(model, tok, name, batch_size=settings.embed_batch_size,
                            threads=settings.embed_threads)
    if scheme in OPENAI_SCHEMES:
        base, model = parse_openai_spec(spec, "embedder")
        key = os.environ.get("SOVRAG_EMBED_API_KEY") or os.environ.get("OPENAI_API_KEY")
        # Chunk budgets need a tokenizer; the host's is unknown, so the bundled embedder's (loaded on first use)
        # stands in, as it always has for chunking.
        def bundled_count(text: str) -> int:
            return create_embedder(settings, "onnx:minilm-l6-v2").count_tokens(text)

        return OpenAIEmbedder(base, model, api_key=key, batch_size=settings.embed_batch_size,
                              count_tokens=bundled_count)
    raise ConfigError(f"embedder {spec!r}: unknown kind {scheme!r} (expected onnx:... or openai://...)")
