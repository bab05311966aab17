"""OpenAI-style error responses: `{"error": {"message", "type", "param", "code"}}` with the right status.

Every failure a client can see goes through these handlers, so SDKs map them to their usual exceptions
(openai.AuthenticationError for 401, RateLimitError for 429, ...) and no traceback ever leaks.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sovrag.errors import SovragError
from sovrag.serve.apierror import APIError, BodyTooLarge, error_body, sovrag_error_to_api, too_large

log = logging.getLogger("sovrag.serve")


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
