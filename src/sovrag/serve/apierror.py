"""OpenAI-style errors: `APIError` (an HTTP status with OpenAI's error fields) and the mapping of sovrag's own
errors to statuses. Services raise these; `sovrag.serve.errors` turns them into responses. Nothing here
knows FastAPI.
"""

from __future__ import annotations

import re
from typing import Any

from sovrag.errors import (
    CollectionError,
    ConfigError,
    EmbedError,
    GenerationError,
    ModelError,
    SovragError,
    StoreError,
)
from sovrag.generate.shared import LLMBusy

_TYPES = {
    400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
    404: "invalid_request_error", 405: "invalid_request_error", 409: "invalid_request_error",
    411: "invalid_request_error", 413: "invalid_request_error", 415: "invalid_request_error",
    429: "rate_limit_error", 500: "server_error", 502: "server_error", 503: "server_error",
}


# The folders of an absolute path (not of a URL: the slash must not follow a word character, ':' or '/').
_DIRS = re.compile(r"(?<![\w:/.~-])(?:[A-Za-z]:)?[\\/](?:[^\s\\/'\"()]+[\\/])+")


def scrub_paths(message: str) -> str:
    """`message` with absolute paths cut to their last part, so no client learns the server's folders."""
    return _DIRS.sub("", message)


_STORE_PREFIX = re.compile(r"\bt\d+--(?=[A-Za-z0-9])")  # a tenant's collection 'x' is 't<tenant id>--x' in the store


class BodyTooLarge(Exception):
    """Raised by the request middleware's receive once a body passes its route's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit


def too_large(limit: int) -> APIError:
    return APIError(413, f"request body: larger than the {limit / 2**20:.1f} MB limit for this route",
                    code="request_too_large", headers={"Connection": "close"})


class APIError(Exception):
    """An error with its HTTP status and OpenAI error fields; raised anywhere in a request."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None,
                 type_: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type_ or _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
        self.headers = headers or {}


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def sovrag_error_to_api(e: SovragError) -> APIError:
    """Map sovrag's user-facing errors to statuses; their messages already name input and problem, but may name
    server files too (a model, a shard), so paths are cut to their last part."""
    msg = _STORE_PREFIX.sub("", scrub_paths(str(e)))
    if isinstance(e, CollectionError):
        if "does not exist" in msg:  # the store's message lists every collection, other tenants' included
            return APIError(404, "collection not found", code="collection_not_found")
        return APIError(409 if "already exists" in msg else 400, msg, code="collection_error")
    if isinstance(e, ModelError):
        return APIError(503, f"model unavailable: {msg}", code="model_unavailable")
    if isinstance(e, LLMBusy):
        return APIError(503, msg, code="server_busy", headers={"Retry-After": "5"})
    if isinstance(e, GenerationError | EmbedError):
        return APIError(502, f"backend failed: {msg}", code="backend_error")
    if isinstance(e, StoreError):
        return APIError(500, f"store failed: {msg}", code="store_error")
    if isinstance(e, ConfigError):  # the server's settings, not the request: not the client's to fix
        return APIError(500, f"server misconfigured: {msg}", code="server_config_error")
    return APIError(400, msg, code="invalid_request")
