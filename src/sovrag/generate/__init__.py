"""LLM backends behind one protocol, chosen by a spec string.

- `llamacpp:qwen2.5-coder-0.5b-instruct-q4_k_m`  bundled GGUF on embedded llama.cpp (the default)
- `llamacpp:qwen2.5-1.5b` (alias), or the profile name `quality`: the 1.5B model
- `llamacpp:/path/to/model.gguf`  any GGUF file
- `llamacpp:BASE+lora:NAME`  a base with a LoRA adapter from `sovrag tune` (a registered name or an adapter
  .gguf path), checked to be the adapter's own base; `quality+lora:NAME` and `fast+lora:NAME` work too
- `openai://host:port/v1?model=NAME` or `openai+https://host/v1?model=NAME`: an OpenAI-compatible host
  (vLLM, Ollama, llama.cpp server, Together, Fireworks); key from SOVRAG_LLM_API_KEY or OPENAI_API_KEY
- `openai://gpu1:8000/v1?model=NAME|openai://gpu2:8000/v1?model=NAME`: several hosts of one model, with load
  spread, failover and health checks (generate/pool.py)
"""

from __future__ import annotations

import os
from pathlib import Path

from sovrag.config import OPENAI_SCHEMES, Settings, parse_openai_spec
from sovrag.errors import ConfigError
from sovrag.generate.base import LLM, Generation, GenerationParams, Message, StreamEvent
from sovrag.models import registry

__all__ = ["LLM", "Generation", "GenerationParams", "Message", "StreamEvent", "create_llm", "PROFILES"]

PROFILES = {
    "fast": "llamacpp:qwen2.5-coder-0.5b-instruct-q4_k_m",
    "quality": "llamacpp:qwen2.5-coder-1.5b-instruct-q4_k_m",
}


def create_llm(settings: Settings, spec: str | None = None) -> LLM:
    spec = spec or settings.llm
    base_spec, plus, adapter = spec.partition("+lora:")
    spec = PROFILES.get(base_spec, base_spec) + (plus + adapter if plus else "")
    scheme, _, rest = spec.partition(":")
    if scheme == "llamacpp":
        from sovrag.generate.llamacpp import load_llamacpp

        rest, _, adapter = rest.partition("+lora:")
        if not rest:
            raise ConfigError(f"llm {spec!r}: give a bundled model name or a .gguf path after 'llamacpp:'")
        path, name, base_sha = base_model(settings, rest)
        lora: tuple[tuple[str, float], ...] = ()
        if plus:
            if not adapter:
                raise ConfigError(f"llm {spec!r}: give an adapter name or .gguf path after '+lora:'")
            from sovrag.models import adapters

            lora = ((str(adapters.resolve(settings.data_dir, adapter, base_sha, name)), 1.0),)
            name = f"{name}+lora:{Path(adapter).name if '/' in adapter else adapter}"
        return load_llamacpp(path, name, context=settings.llm_context, threads=settings.llm_threads,
                             speculative=settings.llm_speculative, lora=lora)
    if plus:
        raise ConfigError(f"llm {spec!r}: LoRA adapters apply to local llama.cpp models only (llamacpp:BASE+lora:NAME)")
    if scheme in OPENAI_SCHEMES:
        from sovrag.generate.openai_compat import OpenAICompatLLM

        key = os.environ.get("SOVRAG_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
        parts = [p.strip() for p in spec.split("|")]
        if len(parts) > 1:  # several hosts of one model: one LLM with failover (generate/pool.py)
            from sovrag.generate.pool import HostPool

            for p in parts:
                if p.partition(":")[0] not in OPENAI_SCHEMES:
                    raise ConfigError(f"llm {spec!r}: {p!r} is not an openai:// host; a pool joins hosts with '|'")
            hosts = [OpenAICompatLLM(*parse_openai_spec(p, "llm"), api_key=key, timeout=settings.llm_timeout,
                                     context=settings.llm_context, retries=1) for p in parts]
            return HostPool(hosts)
        base, model = parse_openai_spec(spec, "llm")
        return OpenAICompatLLM(base, model, api_key=key, timeout=settings.llm_timeout,
                               context=settings.llm_context)
    raise ConfigError(f"llm {spec!r}: unknown kind {scheme!r} (expected llamacpp:... or openai://...)")


def base_model(settings: Settings, rest: str) -> tuple[Path, str, str]:
    """(GGUF path, sovrag's name for it, its sha256) for what follows `llamacpp:`: a bundled model or a file."""
    path = Path(rest).expanduser()
    if path.suffix == ".gguf" or "/" in rest:
        return path, f"llamacpp:{path.name}", _file_sha256(path)
    m = registry.get_spec(rest)
    if m.kind != "llm":
        raise ConfigError(f"llm llamacpp:{rest}: {m.name} is an {m.kind}, not an LLM")
    path = registry.resolve_file(settings.models_dir, m.name, "model.gguf", settings.auto_pull)
    return path, f"llamacpp:{m.name}", m.files[0].sha256


_SHA: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    """A model file's sha256, hashed once per process and file version ('' for a file that is not there: the
    loader reports that)."""
    try:
        st = path.stat()
    except OSError:
        return ""
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA:
        _SHA[key] = registry.sha256(path)
    return _SHA[key]
