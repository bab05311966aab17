"""The OpenAPI document as a contract: what each route returns (typed bodies), the errors it really sends
(OpenAI's error shape, 400 for a bad request, never FastAPI's 422), and the bearer keys it needs. Swagger UI
(/docs) and ReDoc (/redoc) are served from assets bundled in the `fastapi-offline` package: no CDN.

The response models are documentation checked by tests (tests/test_openapi.py validates real responses against
them, unknown fields refused); routes keep returning plain dicts, so a model can never strip or reject a field
at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel

from sovrag.serve.apierror import APIError
from sovrag.serve.schemas import RESPONSES, ChatCompletion, ErrorResponse

__all__ = ["RESPONSES", "ErrorResponse", "build", "install_docs"]


#: The errors a route can send, by what it does
_ERRORS = {
    400: "Invalid request: a field is missing, of the wrong type or out of range (named in `param`)",
    401: "Missing, unknown, revoked or expired key",
    403: "The key may not call this route (a tenant key on /admin, the admin key on tenant routes)",
    404: "No such collection, document, job, model, report or tenant (or not this tenant's)",
    409: "Conflicts with the current state (e.g. an ingestion job is running)",
    413: "The request or an input is over a limit",
    415: "Unsupported file or media type",
    429: "Rate limit (per key) or too many failed sign-ins; see Retry-After",
    500: "Internal error (the message has the request id)",
    503: "Busy (the LLM queue is full) or shutting down; see Retry-After",
}
_PUBLIC = {"/healthz", "/readyz"}


def _errors_for(method: str, path: str) -> list[int]:
    codes = [400, 500]
    if path not in _PUBLIC:
        codes += [401, 403, 429]
    if "{" in path:
        codes.append(404)
    if path.startswith("/v1/chat") or path.startswith("/v1/embeddings") or path.endswith("/search"):
        codes += [404, 413, 503]
    if path.endswith("/documents") and method == "post":
        codes += [404, 409, 413, 415]
    if method == "delete" or (method == "post" and path in ("/v1/collections", "/admin/tenants")):
        codes.append(409)
    if path.startswith("/v1/feedback"):
        codes.append(404)
    if path == "/readyz":
        codes.append(503)
    return sorted(set(codes))


def build(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with sovrag's contract applied (cached on the app)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)

    def ref(model: type[BaseModel]) -> dict[str, str]:
        defs = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in defs.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas.setdefault(model.__name__, defs)
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    error_ref = ref(ErrorResponse)
    components["securitySchemes"] = {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "A tenant key (`sk-sovrag-...`) for /v1; the admin key (SOVRAG_ADMIN_KEY) for /admin; the "
                       "metrics key or the admin key for /metrics."}}
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            model = RESPONSES.get((method, path))
            if model is not None:
                status = next((c for c in responses if c.startswith("2")), "200")
                entry = responses.setdefault(status, {"description": "Success"})
                entry.setdefault("content", {})["application/json"] = {"schema": ref(model)}
                if model is ChatCompletion:
                    entry["content"]["text/event-stream"] = {"schema": {
                        "type": "string", "description": "With stream: true: `data: {chat.completion.chunk}` events, "
                        "then `data: [DONE]`"}}
            for code in _errors_for(method, path):
                responses.setdefault(str(code), {"description": _ERRORS[code],
                                                 "content": {"application/json": {"schema": error_ref}}})
            if path not in _PUBLIC:
                op["security"] = [{"bearer": []}]
    app.openapi_schema = schema
    return schema


#: Swagger UI and ReDoc, from the fastapi-offline package's bundled copies
_ASSETS = {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"}


def _asset_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


#: The docs pages may load nothing from another host (ReDoc's sidebar would fetch a logo from its CDN); their
#: inline start-up script and styles are the pages' own.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
            "frame-ancestors 'none'")


def _page(html: HTMLResponse) -> HTMLResponse:
    html.headers["Content-Security-Policy"] = DOCS_CSP
    html.headers["X-Content-Type-Options"] = "nosniff"
    return html


def install_docs(app: FastAPI) -> None:
    """/docs and /redoc that work with no internet: their scripts come from this server."""
    app.openapi = lambda: build(app)  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return _page(get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API",
                                         swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                         swagger_css_url="/docs/assets/swagger-ui.css",
                                         swagger_favicon_url="/docs/assets/favicon.png"))

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _page(get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} API",
                                    redoc_js_url="/docs/assets/redoc.standalone.js",
                                    redoc_favicon_url="/docs/assets/favicon.png", with_google_fonts=False))

    @app.get("/docs/assets/{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        if name not in _ASSETS:
            raise APIError(404, f"route GET /docs/assets/{name}: not found")
        return FileResponse(_asset_dir() / name, headers={"Cache-Control": "public, max-age=86400"})
