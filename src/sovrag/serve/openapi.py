"""The OpenAPI document as a contract: what each route returns (typed bodies), the errors it really sends
(OpenAI's error shape, 400 for a bad request, never FastAPI's 422), and the bearer keys it needs. Swagger UI
(/docs) and ReDoc (/redoc) are served from assets bundled in the `fastapi-offline` package: no CDN.

The response models are documentation checked by tests (tests/test_openapi.py validates real responses against
them, unknown fields refused); routes keep returning plain dicts, so a model can never strip or reject a field
at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from sovrag.serve.apierror import APIError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ errors
class ErrorDetail(_Model):
    message: str = Field(description="What went wrong, naming the input and the problem")
    type: str = Field(description="invalid_request_error, authentication_error, permission_error, not_found_error, "
                      "rate_limit_error, server_error, ...")
    param: str | None = Field(description="The request field at fault, if one is")
    code: str | None = Field(description="A stable machine-readable code, e.g. invalid_api_key, model_not_found")


class ErrorResponse(_Model):
    """Every error, in OpenAI's shape."""

    error: ErrorDetail


# ------------------------------------------------------------------ admin
class TenantOut(_Model):
    id: int
    name: str
    created: float


class TenantRow(TenantOut):
    active_keys: int


class TenantList(_Model):
    object: Literal["list"]
    data: list[TenantRow]


class KeyCreated(_Model):
    id: str
    tenant_id: int
    name: str
    key: str = Field(description="The key itself: shown in this response only")
    rate_limit_rpm: int | None
    created: float
    expires: float | None = Field(description="Unix seconds after which the key stops working; null: never")


class KeyInfo(_Model):
    id: str
    tenant_id: int
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it")
    rate_limit_rpm: int | None
    created: float
    expires: float | None
    revoked: float | None
    state: Literal["active", "expired", "revoked"]


class KeyList(_Model):
    object: Literal["list"]
    data: list[KeyInfo]


class KeyRevoked(_Model):
    id: str
    revoked: bool


class TenantDeleted(_Model):
    object: Literal["tenant.deleted"]
    id: int
    name: str
    deleted: bool
    collections: list[str]


# ------------------------------------------------------------------ OpenAI-compatible
class ModelOut(_Model):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(_Model):
    object: Literal["list"]
    data: list[ModelOut]


class ChatMessageOut(_Model):
    role: Literal["assistant"]
    content: str


class ChatChoice(_Model):
    index: int
    message: ChatMessageOut
    logprobs: None
    finish_reason: str


class Usage(_Model):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(_Model):
    """A chat completion; with `stream: true`, a text/event-stream of chat.completion.chunk events instead (the
    last chunk with a finish_reason carries the same `sovrag` field), ended by `data: [DONE]`."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    sovrag: dict[str, Any] | None = Field(default=None, description="For `rag:` models: the verified answer: text, "
                                          "sentences with their citations and support, numbered sources, "
                                          "abstention and its reason, contradictions, timings")


class Embedding(_Model):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 little-endian float32 with "
                                         "encoding_format=base64")


class EmbeddingUsage(_Model):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(_Model):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


# ------------------------------------------------------------------ collections, documents, jobs, reports
class CollectionOut(_Model):
    object: Literal["collection"]
    name: str
    chunks: int
    documents: int
    embedder: str | None
    created: str | None


class CollectionList(_Model):
    object: Literal["list"]
    data: list[CollectionOut]


class CollectionDeleted(_Model):
    object: Literal["collection.deleted"]
    name: str
    deleted: bool


class SearchHit(_Model):
    rank: int
    score: float
    id: str = Field(description="The chunk's id")
    document_id: str
    source: str = Field(description="The uploaded file's name")
    title: str
    page: int | None
    headings: list[str]
    chunk_index: int
    text: str
    metadata: dict[str, Any]


class SearchResults(_Model):
    object: Literal["list"]
    collection: str
    query: str
    mode: Literal["hybrid", "dense", "bm25"]
    data: list[SearchHit]
    seconds: float


class DocumentOut(_Model):
    object: Literal["document"]
    id: str
    name: str
    title: str
    format: str
    bytes: int | None
    chunks: int
    uploaded: float | None
    status: Literal["indexed", "processing", "failed"]
    error: str | None


class DocumentList(_Model):
    object: Literal["list"]
    data: list[DocumentOut]


class DocumentDeleted(_Model):
    object: Literal["document.deleted"]
    id: str
    deleted: bool


class UploadAccepted(_Model):
    object: Literal["ingestion.job"]
    id: str
    state: Literal["queued"]
    collection: str
    files_total: int
    files: list[dict[str, Any]] = Field(description="Per uploaded file: its stored name and size")


class Job(_Model):
    object: Literal["ingestion.job"]
    id: str
    collection: str
    state: Literal["queued", "running", "succeeded", "failed", "aborted"]
    files_total: int
    files_done: int
    report: dict[str, Any] = Field(description="The ingestion report: added, updated, unchanged, failures "
                                   "with reasons")
    error: str | None
    created: float
    started: float | None
    finished: float | None


class Report(_Model):
    object: Literal["report"]
    id: str
    kind: str
    created: str
    collection: str
    title: str
    metrics: dict[str, float | None]


class ReportList(_Model):
    object: Literal["list"]
    data: list[Report]


class UploadLimits(_Model):
    max_upload_file_mb: float
    max_upload_request_mb: float
    max_upload_files: int


class TenantInfo(TenantOut):
    key_id: str
    limits: UploadLimits


class Health(_Model):
    status: Literal["ok"]


class ReadyChecks(_Model):
    database: bool
    ingest_worker: bool


class Ready(_Model):
    status: Literal["ready", "not ready"]
    checks: ReadyChecks
    llm_loaded: bool
    llm_queue_depth: int


#: (method, path) -> the model of its success body
RESPONSES: dict[tuple[str, str], type[BaseModel]] = {
    ("get", "/admin/tenants"): TenantList,
    ("post", "/admin/tenants"): TenantOut,
    ("post", "/admin/tenants/{tenant_id}/keys"): KeyCreated,
    ("get", "/admin/tenants/{tenant_id}/keys"): KeyList,
    ("delete", "/admin/tenants/{tenant_id}"): TenantDeleted,
    ("delete", "/admin/keys/{key_id}"): KeyRevoked,
    ("get", "/v1/models"): ModelList,
    ("get", "/v1/models/{model_id}"): ModelOut,
    ("post", "/v1/chat/completions"): ChatCompletion,
    ("post", "/v1/embeddings"): EmbeddingList,
    ("get", "/v1/collections"): CollectionList,
    ("post", "/v1/collections"): CollectionOut,
    ("get", "/v1/collections/{name}"): CollectionOut,
    ("delete", "/v1/collections/{name}"): CollectionDeleted,
    ("post", "/v1/collections/{name}/search"): SearchResults,
    ("post", "/v1/collections/{name}/documents"): UploadAccepted,
    ("get", "/v1/collections/{name}/documents"): DocumentList,
    ("get", "/v1/collections/{name}/documents/{document_id}"): DocumentOut,
    ("delete", "/v1/collections/{name}/documents/{document_id}"): DocumentDeleted,
    ("get", "/v1/jobs/{job_id}"): Job,
    ("get", "/v1/reports"): ReportList,
    ("get", "/v1/reports/{run_id}"): Report,
    ("get", "/v1/tenant"): TenantInfo,
    ("get", "/healthz"): Health,
    ("get", "/readyz"): Ready,
}

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
    if method == "delete":
        codes.append(409)
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
