"""The response bodies of the HTTP API as pydantic models: the OpenAPI document's typed responses
(sovrag.serve.openapi), checked against real responses by tests/test_openapi.py (unknown fields refused)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    kind: Literal["collection", "llm", "embedding"] = Field(description="A collection (model `rag:<name>`: "
                                                             "grounded answers), an LLM, or the embedding model")


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
    worker: str | None = Field(default=None, description="The worker (host:pid:id) that ran or runs the job")


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


class FeedbackSource(_Model):
    number: int
    source: str
    text: str


class FeedbackOut(_Model):
    object: Literal["feedback"]
    id: str
    collection: str
    question: str
    answer: str
    rating: Literal["up", "down"]
    comment: str
    sources: list[FeedbackSource]
    answer_id: str
    created: float
    updated: float


class FeedbackList(_Model):
    object: Literal["list"]
    data: list[FeedbackOut]


class FeedbackDeleted(_Model):
    object: Literal["feedback.deleted"]
    id: str
    deleted: bool


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
    ("post", "/v1/feedback"): FeedbackOut,
    ("patch", "/v1/feedback/{feedback_id}"): FeedbackOut,
    ("delete", "/v1/feedback/{feedback_id}"): FeedbackDeleted,
    ("get", "/v1/feedback"): FeedbackList,
    ("get", "/healthz"): Health,
    ("get", "/readyz"): Ready,
}
