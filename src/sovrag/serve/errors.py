"""OpenAI-style error bodies: `{"error": {"message", "type", "param", "code"}}` with the right status.

Every failure a client can see goes through here, so SDKs map them to their usual exceptions
(openai.AuthenticationError for 401, RateLimitError for 429, ...) and no traceback ever leaks.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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

log = logging.getLogger("sovrag.serve")

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


def error_response(e: APIError) -> JSONResponse:
    return JSONResponse(error_body(e.message, e.type, e.code, e.param), status_code=e.status, headers=e.headers)


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"request body: malformed JSON ({first.get('ctx', {}).get('error', 'cannot parse')})", None
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body",)]
    param = ".".join(loc) or None
    msg = first.get("msg", "invalid value")
    where = f"'{param}'" if param else "request body"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{where}: {msg}{more}", param


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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        msg, param = _validation_message(exc)
        return error_response(APIError(400, msg, code="invalid_request", param=param))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, BodyTooLarge):  # FastAPI turns any failure reading a JSON body into a 400
            return error_response(too_large(exc.__cause__.limit))
        if exc.status_code == 404:
            msg = f"route {request.method} {request.url.path}: not found"
        elif exc.status_code == 405:
            msg = f"route {request.url.path}: method {request.method} not allowed"
        else:
            msg = str(exc.detail)
        return error_response(APIError(exc.status_code, msg, headers=dict(exc.headers or {})))

    @app.exception_handler(SovragError)
    async def _sovrag(request: Request, exc: SovragError) -> JSONResponse:
        api = sovrag_error_to_api(exc)
        if api.status >= 500:
            log.error("request %s failed: %s", _request_id(request), exc)
        return error_response(api)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        rid = _request_id(request)
        log.exception("request %s: unhandled error", rid)
        return error_response(APIError(500, f"internal server error (request id {rid})", code="internal_error"))
