"""Exceptions users see. Each message names the offending input and what to do about it."""


class SovragError(Exception):
    """Base class: the CLI prints these as one clear line instead of a traceback."""


class ConfigError(SovragError):
    """A setting or a backend spec string is invalid."""


class ModelError(SovragError):
    """A model cannot be fetched, verified or loaded."""


class LoadError(SovragError):
    """A document cannot be read or parsed; the message names the file and the reason."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class CollectionError(SovragError):
    """A collection is missing, exists already, or does not match the embedder it is used with."""


class StoreError(SovragError):
    """The vector store refused or failed an operation."""


class EmbedError(SovragError):
    """The embedder failed (bad model file, unreachable host, malformed reply)."""


class GenerationError(SovragError):
    """The LLM failed: unreachable or failing host, malformed reply, prompt over the context."""


class HostUnavailable(GenerationError):
    """An LLM host did not answer (connection refused, timeout, 429 or 5xx after retries): another host may."""


class BenchError(SovragError):
    """A benchmark run cannot start or complete: bad settings, an empty collection, an unusable questions file."""


class CostError(SovragError):
    """A cost calculation input is nonsense: a missing or non-positive price, throughput or volume."""
