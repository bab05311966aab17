"""LLM backends behind one protocol, chosen by a spec string.

- `llamacpp:qwen2.5-coder-0.5b-instruct-q4_k_m`  bundled GGUF on embedded llama.cpp (the default)
- `llamacpp:qwen2.5-1.5b` (alias), or the profile name `quality`: the 1.5B model
- `llamacpp:/path/to/model.gguf`  any GGUF file
- `openai://host:port/v1?model=NAME` or `openai+https://host/v1?model=NAME`: an OpenAI-compatible host
  (vLLM, Ollama, llama.cpp server, Together, Fireworks); key from SOVRAG_LLM_API_KEY or OPENAI_API_KEY
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
    spec = PROFILES.get(spec, spec)
    scheme, _, rest = spec.partition(":")
    if scheme == "llamacpp":
        from sovrag.generate.llamacpp import load_llamacpp

        if not rest:
            raise ConfigError(f"llm {spec!r}: give a bundled model name or a .gguf path after 'llamacpp:'")
        path = Path(rest).expanduser()
        if path.suffix == ".gguf" or "/" in rest:
            name = f"llamacpp:{path.name}"
        else:
            m = registry.get_spec(rest)
            if m.kind != "llm":
                raise ConfigError(f"llm {spec!r}: {m.name} is an {m.kind}, not an LLM")
            path = registry.resolve_file(settings.models_dir, m.name, "model.gguf", settings.auto_pull)
            name = f"llamacpp:{m.name}"
        return load_llamacpp(path, name, context=settings.llm_context, threads=settings.llm_threads,
                             speculative=settings.llm_speculative)
    if scheme in OPENAI_SCHEMES:
        from sovrag.generate.openai_compat import OpenAICompatLLM

        base, model = parse_openai_spec(spec, "llm")
        key = os.environ.get("SOVRAG_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
        return OpenAICompatLLM(base, model, api_key=key, timeout=settings.llm_timeout,
                               context=settings.llm_context)
    raise ConfigError(f"llm {spec!r}: unknown kind {scheme!r} (expected llamacpp:... or openai://...)")
