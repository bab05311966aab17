"""Document routes: multipart upload (a batch, ingested as a background job), list, fetch, delete.

Uploaded files are kept under data_dir/tenants/<id>/files/<collection>/ with sanitised names (the base
name only, safe characters), so a client-chosen name can never write outside that folder.
"""

from __future__ import annotations

import os
import re
import secrets
import unicodedata
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from sovrag.ingest.loaders import SUPPORTED_EXTENSIONS
from sovrag.serve.apierror import APIError
from sovrag.serve.context import ServerContext, get_ctx
from sovrag.serve.routes.auth import Tenant
from sovrag.serve.sanitize import neutralize
from sovrag.serve.services.collections import public_doc_id

router = APIRouter(prefix="/v1", tags=["documents"])
Ctx = Annotated[ServerContext, Depends(get_ctx)]

# Letters and digits of any script stay (so '日本.md' and '中文.md' remain two files), as do '.', '_', '-' and
# spaces; separators, controls, invisible and direction-override characters do not.
_UNSAFE = re.compile(r"[^\w. -]+")
_MAX_NAME_BYTES = 200  # file systems allow 255 bytes; leaves room for the temporary upload name
_COPY_CHUNK = 1 << 20

UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["files"],
            "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
        }}},
    }
}


def safe_name(raw: str | None) -> str:
    """The base name only ('../../etc/x.md' -> 'x.md'), NFC-normalised, unsafe characters replaced, no leading
    dots, at most 200 bytes of UTF-8."""
    base = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip(" .")
    if len(base.encode()) > _MAX_NAME_BYTES:
        stem, dot, ext = base.rpartition(".")
        if not dot or len(ext.encode()) > 16:
            stem, dot, ext = base, "", ""
        room = _MAX_NAME_BYTES - len((dot + ext).encode())
        stem = stem.encode()[:room].decode(errors="ignore").strip(" .")
        base = stem + dot + ext
    return base


def _save(upload: UploadFile, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    upload.file.seek(0)
    try:
        with open(tmp, "wb") as f:
            while block := upload.file.read(_COPY_CHUNK):
                f.write(block)
        os.replace(tmp, target)
    except BaseException:  # a full disk, a cancelled request: no half-written file stays behind
        tmp.unlink(missing_ok=True)
        raise


@router.post("/collections/{name}/documents", status_code=202, openapi_extra=UPLOAD_SCHEMA)
async def upload_documents(name: str, request: Request, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    """Upload one or more files (field `files`); ingestion runs as a job: poll GET /v1/jobs/{id}."""
    opts = ctx.options
    await anyio.to_thread.run_sync(ctx.collections.check, me.tenant_id, name)  # 404 before reading the body
    if ctx.jobs.closing:
        raise APIError(503, "the server is shutting down and accepts no uploads", code="shutting_down")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise APIError(415, "upload: send the files as multipart/form-data in the field 'files'",
                       code="unsupported_media_type")
    try:
        form = await request.form(max_files=opts.max_upload_files, max_fields=opts.max_upload_files + 10)
    except StarletteHTTPException as e:
        status = 413 if "Too many files" in str(e.detail) else 400
        raise APIError(status, f"upload: {e.detail} (max_upload_files={opts.max_upload_files})",
                       code="too_many_files" if status == 413 else "invalid_multipart") from e
    try:
        uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not uploads:
            raise APIError(400, "upload: no files; send them as multipart/form-data in the field 'files'",
                           code="no_files", param="files")
        per_file = int(opts.max_upload_file_mb * 2**20)
        results: list[dict[str, Any]] = []
        accepted: list[tuple[UploadFile, str]] = []
        seen: set[str] = set()
        for up in uploads:
            stored = safe_name(up.filename)
            size = up.size if up.size is not None else 0
            entry: dict[str, Any] = {"filename": up.filename, "name": stored, "bytes": size}
            ext = Path(stored).suffix.lower()
            if not stored or not ext:
                entry.update(status="rejected", code="invalid_file_name",
                             reason=f"file name {up.filename!r}: needs a name with an extension")
            elif ext not in SUPPORTED_EXTENSIONS:
                entry.update(status="rejected", code="unsupported_file_type",
                             reason=f"file {stored!r}: type {ext} is not supported (supported: "
                             f"{', '.join(sorted(SUPPORTED_EXTENSIONS))})")
            elif size > per_file:
                entry.update(status="rejected", code="file_too_large",
                             reason=f"file {stored!r}: {size / 2**20:.2f} MB, over the "
                             f"{opts.max_upload_file_mb:g} MB limit per file")
            elif stored in seen:
                entry.update(status="rejected", code="duplicate_file_name",
                             reason=f"file {stored!r}: sent twice in one upload")
            else:
                entry["status"] = "accepted"
                accepted.append((up, stored))
                seen.add(stored)
            results.append(entry)
        if not accepted:
            codes = {r["code"] for r in results}
            status = 415 if codes == {"unsupported_file_type"} else 413 if codes == {"file_too_large"} else 400
            raise APIError(status, "upload: no file accepted: " + "; ".join(r["reason"] for r in results),
                           code=results[0]["code"] if len(codes) == 1 else "no_file_accepted", param="files")
        folder = ctx.collections.files_dir(me.tenant_id, name)

        def store_files() -> list[Path]:
            folder.mkdir(parents=True, exist_ok=True)
            paths = []
            for up, stored in accepted:
                target = (folder / stored).resolve()
                if target.parent != folder.resolve():  # belt and braces: safe_name already forbids this
                    raise APIError(400, f"file name {stored!r}: not allowed", code="invalid_file_name")
                _save(up, target)
                ctx.files.saved(me.tenant_id, name, target, stored)
                paths.append(target)
            return paths

        paths = await anyio.to_thread.run_sync(store_files)
    finally:
        await form.close()
    job_id = ctx.jobs.submit(me.tenant_id, name, paths)
    return {"object": "ingestion.job", "id": job_id, "state": "queued", "collection": name,
            "files_total": len(paths), "files": results}


def _documents(ctx: ServerContext, tenant_id: int, name: str, raw: bool = False) -> list[dict[str, Any]]:
    """The collection's documents: every indexed one, and every upload not indexed (still being ingested, or
    failed, with the reason), so nothing stored for a tenant is ever invisible to it."""
    with ctx.collections.use(tenant_id, name) as col:
        states = col.store.documents()
    rows = ctx.files.rows(tenant_id, name)
    busy = ctx.jobs.active(tenant_id, name)
    out = []
    for doc_id in sorted(set(states) | set(rows)):
        row, st = rows.get(doc_id, {}), states.get(doc_id)
        status = "indexed" if st is not None else "failed" if row.get("error") else \
            "processing" if busy else "failed"
        error = row.get("error") or ("" if status != "failed" else "not indexed (the ingestion job did not finish)")
        title = row.get("title", "")
        out.append({"object": "document", "id": public_doc_id(doc_id), "name": row.get("name") or Path(doc_id).name,
                    "title": title if raw else neutralize(title), "format": row.get("format", ""),
                    "bytes": row.get("bytes"), "chunks": sum(st.versions.values()) if st else 0,
                    "uploaded": row.get("uploaded"), "status": status, "error": error or None, "_doc_id": doc_id})
    return out


def _find(ctx: ServerContext, tenant_id: int, name: str, document_id: str) -> dict[str, Any]:
    for doc in _documents(ctx, tenant_id, name):
        if doc["id"] == document_id:
            return doc
    raise APIError(404, f"document {document_id!r}: not found in collection {name!r}", code="document_not_found")


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


@router.get("/collections/{name}/documents")
def list_documents(name: str, me: Tenant, ctx: Ctx, raw: bool = False) -> dict[str, Any]:
    """Indexed documents and uploads that are still processing or failed (`status`, `error`); titles have
    active markup neutralised unless `raw=true`."""
    return {"object": "list", "data": [_public(d) for d in _documents(ctx, me.tenant_id, name, raw)]}


@router.get("/collections/{name}/documents/{document_id}")
def get_document(name: str, document_id: str, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    return _public(_find(ctx, me.tenant_id, name, document_id))


@router.delete("/collections/{name}/documents/{document_id}")
def delete_document(name: str, document_id: str, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    doc = _find(ctx, me.tenant_id, name, document_id)
    with ctx.collections.use(me.tenant_id, name) as col:
        col.store.delete_document(doc["_doc_id"])
        col.store.flush()
    ctx.files.delete(me.tenant_id, name, doc["_doc_id"])
    folder = ctx.collections.files_dir(me.tenant_id, name).resolve()
    path = Path(doc["_doc_id"])
    if path.parent == folder:
        path.unlink(missing_ok=True)
    return {"object": "document.deleted", "id": document_id, "deleted": True}
