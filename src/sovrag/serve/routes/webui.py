"""The web UI: a few static files (plain ES modules, one stylesheet) shipped in the package, served at `/`.

Nothing is fetched from elsewhere, so the UI works on a network without internet. The API key lives in
the browser's sessionStorage and goes out as a Bearer header; these files themselves need no key.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from sovrag.serve.apierror import APIError

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
#: Own scripts only; inline styles stay allowed for HTML reports shown in a sandboxed frame (which
#: inherits this policy) and their inlined plots are data: images.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


def _file(name: str) -> FileResponse:
    path = (UI_DIR / name).resolve()
    if UI_DIR not in path.parents or not path.is_file() or path.suffix not in _TYPES:
        raise APIError(404, f"route GET /ui/{name}: not found", code="not_found")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=HEADERS)


@router.get("/")
def index() -> FileResponse:
    return _file("index.html")


@router.get("/ui/{name:path}")
def asset(name: str) -> FileResponse:
    return _file(name)
