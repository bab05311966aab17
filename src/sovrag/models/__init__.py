"""Where open models come from: a registry of bundled models and a verified local cache."""

from sovrag.models.registry import (
    REGISTRY,
    ModelFile,
    ModelSpec,
    get_spec,
    model_status,
    pull,
    resolve_file,
    verify,
)

__all__ = [
    "REGISTRY",
    "ModelFile",
    "ModelSpec",
    "get_spec",
    "model_status",
    "pull",
    "resolve_file",
    "verify",
]
