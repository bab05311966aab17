"""The web UI in real headless Chromium (Debian's, driven by Playwright) against a live `sovrag serve`.

One server for the module (real uvicorn on loopback, real embedder and LLM) and a few real LLM answers; the
broken-stream, markdown, theme, settings, feedback and history cases replace the chat route's response in the
browser with a made-up answer, so they need no model. Screenshots
of every step go to test-artifacts/ui/ (SOVRAG_UI_ARTIFACTS to change); the README's come from there.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sovrag.config import Settings
from sovrag.reports import RunSummary, new_run, write_summary
from sovrag.serve import create_app
from sovrag.serve.options import ServerOptions
from tests.conftest import MODELS_DIR

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("SOVRAG_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("SOVRAG_UI_ARTIFACTS", ROOT / "test-artifacts" / "ui"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXAMPLES = ROOT / "examples" / "docs"
ADMIN = "admin-" + secrets.token_hex(16)
QUESTION = "How many vacation days do new employees get?"

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: CI must install Debian's chromium (see .ci/run)")
    pytest.skip(f"no Chromium at {CHROMIUM}: install it with 'apt-get install chromium' to run the browser tests",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is in the dev extras")
uvicorn = pytest.importorskip("uvicorn")
expect = sync_api.expect

pytestmark = pytest.mark.slow


@dataclass
class Live:
    base: str
    data: Path
    a_key: str
    b_key: str
    a_runs: list[str]
    b_run: str


def _api(base: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def _wait_job(c: httpx.Client, job_id: str) -> None:
    deadline = time.monotonic() + 120
    while c.get(f"/v1/jobs/{job_id}").json()["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"job {job_id} did not finish"
        time.sleep(0.2)


def _collection_of(live: Live, key: str, name: str, doc: Path) -> None:
    """A tenant's collection holding one of the example documents, ingested."""
    with _api(live.base, key) as c:
        c.post("/v1/collections", json={"name": name}).raise_for_status()
        r = c.post(f"/v1/collections/{name}/documents", files=[("files", (doc.name, doc.read_bytes()))])
        _wait_job(c, r.raise_for_status().json()["id"])


def _run(data: Path, kind: str, store_name: str, title: str, created: str, metrics: dict[str, float | None]) -> str:
    run_id, folder = new_run(data, kind)  # type: ignore[arg-type]
    write_summary(folder, RunSummary(id=run_id, kind=kind, created=created, collection=store_name,  # type: ignore[arg-type]
                                     title=title, metrics=metrics))
    (folder / "report.html").write_text(
        f"<!doctype html><html><head><title>{title}</title><style>h1{{color:#1f5fbf}}</style></head><body>"
        f"<h1>{title}</h1><table><tr><th>metric</th><th>value</th></tr>"
        + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in metrics.items())
        + "</table><script>parent.document.title = 'pwned'</script></body></html>", encoding="utf-8")
    return run_id


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data = tmp_path_factory.mktemp("ui") / "data"
    data.mkdir()
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    settings = Settings(data_dir=data, llm_context=2048, llm_threads=1)
    opts = ServerOptions(admin_key=ADMIN, max_upload_file_mb=0.05, max_upload_request_mb=1.0, max_upload_files=10,
                         default_max_tokens=64, rate_limit_rpm=100_000, shutdown_grace_s=5)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, options=opts), host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    keys, ids = {}, {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60) as adm:
        for name in ("acme", "globex"):
            ids[name] = adm.post("/admin/tenants", json={"name": name}).raise_for_status().json()["id"]
            keys[name] = adm.post(f"/admin/tenants/{ids[name]}/keys", json={}).raise_for_status().json()["key"]
    with _api(base, keys["acme"]) as a:
        a.post("/v1/collections", json={"name": "benchmarks"}).raise_for_status()
    with _api(base, keys["globex"]) as b:
        b.post("/v1/collections", json={"name": "zephyr-notes"}).raise_for_status()
        r = b.post("/v1/collections/zephyr-notes/documents",
                   files=[("files", ("zephyr.txt", b"The Zephyr launch code is ZEBRA-4471."))])
        _wait_job(b, r.raise_for_status().json()["id"])
    a_runs = [_run(data, "eval", f"t{ids['acme']}--benchmarks", "Answer quality on the handbook",
                   "2026-11-26T09:30:00+00:00",
                   {"faithfulness": 0.912, "answer_relevancy": 0.874, "context_precision": None}),
              _run(data, "bench", f"t{ids['acme']}--benchmarks", "Latency under load",
                   "2026-11-27T08:15:00+00:00", {"p50_s": 4.21, "p95_s": 9.8, "errors": 0})]
    b_run = _run(data, "eval", f"t{ids['globex']}--zephyr-notes", "Globex secret eval", "2026-11-27T07:00:00+00:00",
                 {"faithfulness": 0.5})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield Live(base, data, keys["acme"], keys["globex"], a_runs, b_run)
    server.should_exit = True
    thread.join(15)


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: sync_api.Browser, live: Live) -> Iterator[sync_api.Page]:
    """A fresh browser context (its own sessionStorage); uncaught script errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=live.base)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.base)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def shot(page: sync_api.Page, name: str, full_page: bool = False) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def sign_in(page: sync_api.Page, key: str) -> None:
    page.goto("/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#tenant-name")).to_be_visible()


# ------------------------------------------------------------------ tests
def test_ui_is_served_with_local_assets_only(live: Live) -> None:
    with httpx.Client(base_url=live.base) as c:
        index = c.get("/")
        assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in index.headers["content-security-policy"]
        refs = re.findall(r'(?:src|href)="([^"#]+)"', index.text)
        assert refs and all(r.startswith("/ui/") for r in refs), refs  # nothing from elsewhere
        for name in ("app.js", "api.js", "chat.js", "citations.js", "collections.js", "upload.js", "reports.js",
                     "sse.js", "dom.js", "answer.js", "feedback.js", "history.js", "markdown.js", "models.js",
                     "settings.js", "theme.js"):
            js = c.get(f"/ui/{name}")
            assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript"), name
            assert "http://" not in js.text and "https://" not in js.text, name
        vendored = c.get("/ui/vendor/markdown-it.min.js")  # its own build, with its license beside it
        assert vendored.status_code == 200 and vendored.headers["content-type"].startswith("text/javascript")
        assert vendored.text.startswith("/*! markdown-it 14.")
        assert (ROOT / "src/sovrag/serve/ui/vendor/LICENSE").read_text().startswith("Copyright (c) 2014 Vitaly Puzrin")
        assert c.get("/ui/style.css").headers["content-type"].startswith("text/css")
        assert c.get("/ui/../app.py").status_code == 404 and c.get("/ui/nope.js").status_code == 404
        assert "swagger" in c.get("/docs").text.lower() and c.get("/healthz").json() == {"status": "ok"}


def test_a_wrong_key_is_refused_and_the_form_stays_usable(page: sync_api.Page, live: Live) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "01-sign-in")
    page.get_by_label("API key").fill("sk-sovrag-this-is-not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_contain_text("This API key was refused")
    expect(page.get_by_role("button", name="Sign in")).to_be_enabled()
    expect(page.locator("#nav")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('sovrag.key')") is None
    shot(page, "02-wrong-key")
    page.get_by_label("API key").fill(ADMIN)  # the admin key is not a tenant key
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_contain_text("admin key cannot call tenant routes")


@pytest.mark.model
def test_sign_in_create_upload_ask_and_open_the_cited_passage(page: sync_api.Page, live: Live) -> None:
    sign_in(page, live.a_key)
    expect(page.locator("#tenant-name")).to_have_text("Tenant: acme")
    assert page.evaluate("sessionStorage.getItem('sovrag.key')") == live.a_key
    assert live.a_key not in page.evaluate("JSON.stringify(localStorage)") and not page.context.cookies()

    # a collection, and two files dropped on the drop zone
    page.get_by_role("link", name="Collections").click()
    page.get_by_label("New collection").fill("docs")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("button", name=re.compile(r"^docs"))).to_have_attribute("aria-pressed", "true")
    files = [[name, (EXAMPLES / name).read_text(encoding="utf-8")] for name in ("handbook.md", "release-notes.txt")]
    transfer = page.evaluate_handle("""files => {
        const dt = new DataTransfer();
        for (const [name, text] of files) dt.items.add(new File([text], name, {type: 'text/plain'}));
        return dt;
    }""", files)
    page.dispatch_event("#dropzone", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
    expect(page.locator("#upload-files li")).to_have_count(2)
    expect(page.locator("#upload-summary")).to_have_text("Done: 2 ingested.", timeout=120_000)
    expect(page.locator("#upload-files li.ok")).to_have_count(2)
    rows = page.locator("#document-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="handbook.md")).to_contain_text("markdown")
    shot(page, "03-collections-upload", full_page=True)

    # the question, streamed; the answer's citation opens the supporting passage of handbook.md
    page.get_by_role("link", name="Chat").click()
    expect(page.get_by_label("Collection", exact=True)).to_have_value("docs")
    page.get_by_label("Your question").fill(QUESTION)
    page.get_by_role("button", name="Ask").click()
    expect(page.locator("#chat-send")).to_be_disabled()
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".answer-text")).to_contain_text("25", timeout=180_000)  # streamed text
    expect(page.locator("#chat-send")).to_be_enabled(timeout=120_000)
    expect(answer.locator(".msg-error")).to_be_hidden()
    expect(answer.locator(".msg-model")).to_have_text("Written by qwen2.5-coder-0.5b-instruct-q4_k_m")  # the real one
    cite = answer.locator("button.cite").first
    expect(cite).to_have_attribute("aria-label", re.compile(r"^Source \d+: handbook\.md"))
    cite.click()
    panel = page.get_by_role("complementary")
    expect(panel).to_be_visible()
    expect(panel.locator("#citation-title")).to_contain_text("handbook.md")
    expect(panel.locator("#citation-meta")).to_contain_text("Vacation")  # the heading of the passage
    expect(panel.locator("#citation-passage mark").first).to_contain_text("25 vacation days")
    expect(page.locator("#citation-title")).to_be_focused()
    shot(page, "04-chat-answer-citation")

    # keyboard: Escape closes the source and gives focus back to the citation
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(cite).to_be_focused()

    # copy answer
    answer.get_by_role("button", name="Copy answer").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "25" in copied and "handbook.md" in copied

    # the conversation survives a reload (localStorage), citations still clickable, no LLM call
    page.reload()
    answer = page.locator(".msg.assistant").last
    expect(answer).to_contain_text("25")
    expect(page.locator(".msg.user")).to_have_text(QUESTION)
    answer.locator("button.cite").first.click()
    expect(page.locator("#citation-passage mark").first).to_be_visible()

    # narrow screen: the source becomes a sheet over the conversation
    page.set_viewport_size({"width": 360, "height": 780})
    shot(page, "05-chat-narrow")
    box = page.locator("#citation-panel").bounding_box()
    assert box and box["width"] <= 360


def test_broken_streams_end_with_a_message_and_the_button_comes_back(page: sync_api.Page, live: Live) -> None:
    sign_in(page, live.a_key)
    expect(page.get_by_label("Collection", exact=True)).to_have_value(re.compile(".+"))

    def cut_mid_answer(route: sync_api.Route) -> None:  # the server dies after two words: no final chunk
        chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
                  {"choices": [{"index": 0, "delta": {"content": "New employees"}}]},
                  {"choices": [{"index": 0, "delta": {"content": " get"}}]}]
        body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)

    page.route("**/v1/chat/completions", cut_mid_answer)
    page.get_by_label("Your question").fill("Will this stream finish?")
    page.get_by_label("Your question").press("Enter")
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".msg-error")).to_contain_text("closed before the answer was complete")
    expect(answer.locator(".answer-text")).to_have_text("New employees get")  # what arrived is kept
    expect(page.locator("#chat-send")).to_be_enabled()
    expect(page.locator("#chat-stop")).to_be_hidden()
    shot(page, "06-stream-cut")

    page.unroute("**/v1/chat/completions")
    page.route("**/v1/chat/completions", lambda route: route.abort("connectionreset"))
    page.get_by_label("Your question").fill("And with the network down?")
    page.get_by_role("button", name="Ask").click()
    expect(page.locator(".msg.assistant").last.locator(".msg-error")).to_contain_text("Cannot reach the sovrag server")
    expect(page.locator("#chat-send")).to_be_enabled()
    expect(page.locator(".thinking")).to_have_count(0)  # no spinner left


def _sse_answer(route: sync_api.Route, sovrag: dict, answer_id: str = "chatcmpl-made-up") -> None:
    """The chat route answered with a made-up final chunk: how the UI shows it needs no model."""
    chunks = [{"id": answer_id, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
              {"id": answer_id, "choices": [{"index": 0, "delta": {"content": sovrag["text"]}}]},
              {"id": answer_id, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "sovrag": sovrag}]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)


def _source(n: int, name: str, text: str, page: int | None = None) -> dict:
    return {"number": n, "text": text, "relevance": 0.7,
            "chunk": {"id": f"c{n}", "doc_id": f"doc_{n}", "source": name, "title": name, "page": page,
                      "headings": ["Prices"], "text": text, "chunk_index": 0}}


def test_abstentions_contradictions_and_unsupported_sentences_look_different(page: sync_api.Page,
                                                                            live: Live) -> None:
    sign_in(page, live.a_key)
    expect(page.get_by_label("Collection", exact=True)).to_have_value(re.compile(".+"))
    a, b = "The hotel limit is 180 EUR per night.", "Hotels may cost up to 150 EUR per night."
    sources = [_source(1, "expense-policy.docx", f"Travel. {a} Book early."),
               _source(2, "travel-faq.pdf", f"{b} Ask your manager.", page=4)]
    answer = {"question": "q", "abstained": False, "abstain_reason": "", "sources": sources,
              "text": "The limit is 180 EUR per night [1]. It was raised in 2020.",
              "sentences": [{"text": "The limit is 180 EUR per night.", "supported": True, "rejected": [],
                             "citations": [{"source": 1, "support": 0.91, "evidence": a, "cited_by_model": True}]},
                            {"text": "It was raised in 2020.", "supported": False, "rejected": [], "citations": []}],
              "contradictions": [{"source_a": 1, "claim_a": a, "values_a": ["180 EUR"],
                                  "source_b": 2, "claim_b": b, "values_b": ["150 EUR"]}]}
    page.route("**/v1/chat/completions", lambda route: _sse_answer(route, answer))
    page.get_by_label("Your question").fill("What is the hotel limit?")
    page.get_by_label("Your question").press("Enter")
    msg = page.locator(".msg.assistant").last
    expect(msg.locator(".contradiction")).to_contain_text("The sources disagree")
    expect(msg.locator(".sentence.unsupported")).to_contain_text("It was raised in 2020.")
    msg.locator(".contradiction button.cite").nth(1).click()
    expect(page.locator("#citation-meta")).to_contain_text("travel-faq.pdf")
    expect(page.locator("#citation-meta")).to_contain_text("4")  # the page
    expect(page.locator("#citation-passage mark")).to_have_text(b)
    shot(page, "11-contradiction")

    abstain = {"question": "q", "abstained": True, "sources": sources, "sentences": [], "contradictions": [],
               "abstain_reason": "no source covers the question",
               "text": "The documents do not answer this. Closest sources: [2]."}
    page.unroute("**/v1/chat/completions")
    page.route("**/v1/chat/completions", lambda route: _sse_answer(route, abstain))
    page.get_by_label("Your question").fill("Who won the 1930 world cup?")
    page.get_by_label("Your question").press("Enter")
    msg = page.locator(".msg.assistant").last
    expect(msg.locator(".badge-abstain")).to_have_text("No answer in the documents")
    expect(msg).to_contain_text("Why: no source covers the question.")
    expect(msg.locator(".sources li")).to_have_count(1)
    expect(msg.locator(".sources")).to_contain_text("travel-faq.pdf")
    shot(page, "12-abstention")


CONTRAST = """sel => {
    const el = document.querySelector(sel);
    const rgba = (c) => { const v = c.match(/[\\d.]+/g).map(Number); return v.length === 3 ? [...v, 1] : v; };
    const lin = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
    const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    let bg = null;  // the nearest background that is not transparent
    for (let e = el; e && !bg; e = e.parentElement) {
        const c = rgba(getComputedStyle(e).backgroundColor);
        if (c[3] > 0) bg = c;
    }
    const [hi, lo] = [lum(rgba(getComputedStyle(el).color)), lum(bg || [255, 255, 255])].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
}"""
BODY_LUMINANCE = """() => {
    const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\\d+/g).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}"""


def _cited_answer(text: str, sentences: list[tuple[str, bool, list[int]]], sources: list[dict]) -> dict:
    """A made-up verified answer: (sentence, supported, cited source numbers) each."""
    by_number = {s["number"]: s for s in sources}
    return {"question": "q", "abstained": False, "abstain_reason": "", "sources": sources, "text": text,
            "contradictions": [],
            "sentences": [{"text": t, "supported": ok, "rejected": [],
                           "citations": [{"source": n, "support": 0.9, "evidence": by_number[n]["text"],
                                          "cited_by_model": True} for n in cited]} for t, ok, cited in sentences]}


def _ask(page: sync_api.Page, question: str) -> sync_api.Locator:
    page.get_by_label("Your question").fill(question)
    page.get_by_label("Your question").press("Enter")
    expect(page.locator("#chat-send")).to_have_text("Ask")  # finished
    return page.locator(".msg.assistant").last


def test_answers_render_markdown_and_never_raw_html(page: sync_api.Page, live: Live) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    elsewhere: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(live.base) else elsewhere.append(r.url))
    console: list[str] = []  # a script or style the CSP refused would say so here
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    sign_in(page, live.a_key)
    page.get_by_label("Collection", exact=True).select_option("benchmarks")

    def streamed_markdown(route: sync_api.Route) -> None:  # no final chunk: the streamed text is what stays
        chunks = [{"choices": [{"index": 0, "delta": {"content": "**Streaming** works with `code`"}}]},
                  {"choices": [{"index": 0, "delta": {"content": " and <img src=x onerror=alert(2)>"}}]}]
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"},
                      body="".join(f"data: {json.dumps(c)}\n\n" for c in chunks))

    page.route("**/v1/chat/completions", streamed_markdown)
    msg = _ask(page, "Does the streamed text render?")
    expect(msg.locator(".msg-error")).to_contain_text("closed before the answer was complete")
    expect(msg.locator(".answer-text strong")).to_have_text("Streaming")
    expect(msg.locator(".answer-text code")).to_have_text("code")
    expect(msg.locator(".answer-text")).to_contain_text("<img src=x onerror=alert(2)>")

    sources = [_source(1, "style-guide.md", "Write bold as **bold**."), _source(2, "links.md", "See the docs.")]
    answer = _cited_answer(
        "Use **bold** and `code` <img src=x onerror=alert(1)>.[1] - Never [x](javascript:alert(1)).[2] "
        "- See [the docs](https://docs.example.com/guide).[2] 1. First step. 2. Second step.",
        [("Use **bold** and `code` <img src=x onerror=alert(1)>.", True, [1]),
         ("- Never [x](javascript:alert(1)).", True, [2]),
         ("- See [the docs](https://docs.example.com/guide).", True, [2]),
         ("1. First step.", True, []), ("2. Second step.", False, [])], sources)
    page.unroute("**/v1/chat/completions")
    page.route("**/v1/chat/completions", lambda route: _sse_answer(route, answer))
    msg = _ask(page, "How do I format text?")
    text = msg.locator(".answer-text")
    expect(text.locator(".sentence strong")).to_have_text("bold")
    expect(text.locator(".sentence code")).to_have_text("code")
    expect(text.locator("p .sentence").first).to_contain_text("<img src=x onerror=alert(1)>")  # shown as text
    expect(msg.locator("img")).to_have_count(0)
    # list items are items of real lists, each with its citation
    expect(text.locator("ul > li")).to_have_count(2)
    expect(text.locator("ul > li").first).to_contain_text("[x](javascript:alert(1))")  # not a link
    expect(text.locator("ul > li").first.locator("button.cite")).to_have_text("[2]")
    expect(text.locator("ol > li")).to_have_count(2)
    expect(text.locator("ol > li").last.locator(".sentence.unsupported")).to_have_text(re.compile("^Second step"))
    hrefs = page.evaluate("() => [...document.querySelectorAll('#chat-log a')].map(a => a.href)")
    assert hrefs == ["https://docs.example.com/guide"], hrefs
    link = text.get_by_role("link", name="the docs")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    assert page.evaluate("() => [...document.querySelectorAll('#chat-log *')].every(e => "
                         "![...e.attributes].some(a => a.name.startsWith('on')))")
    shot(page, "13-markdown-answer")
    # a stored answer renders the same after a reload
    page.reload()
    expect(page.locator(".msg.assistant").last.locator(".answer-text ul > li")).to_have_count(2)
    expect(page.locator("#chat-log img")).to_have_count(0)
    assert not dialogs and not elsewhere and not console, (dialogs, elsewhere, console)


def test_dark_mode_follows_the_system_and_the_choice_is_remembered(page: sync_api.Page, live: Live) -> None:
    page.emulate_media(color_scheme="dark")
    sign_in(page, live.a_key)
    assert page.evaluate(BODY_LUMINANCE) < 0.15
    expect(page.get_by_label("Theme")).to_have_value("auto")
    page.get_by_label("Collection", exact=True).select_option("benchmarks")
    a, b = "The limit is 180 EUR.", "The limit is 150 EUR."
    sources = [_source(1, "policy.md", a), _source(2, "faq.md", b)]
    answer = _cited_answer("The limit is `180 EUR`.[1] It went up in 2020. [unsupported]",
                           [("The limit is `180 EUR`.", True, [1]), ("It went up in 2020.", False, [])], sources)
    answer["contradictions"] = [{"source_a": 1, "claim_a": a, "values_a": ["180 EUR"],
                                 "source_b": 2, "claim_b": b, "values_b": ["150 EUR"]}]
    abstain = {"question": "q", "abstained": True, "sources": sources, "sentences": [], "contradictions": [],
               "abstain_reason": "no source covers it",
               "text": "The documents do not answer this. Closest sources: [2]."}
    page.route("**/v1/chat/completions", lambda route: _sse_answer(route, answer))
    _ask(page, "What is the hotel limit?")
    page.unroute("**/v1/chat/completions")
    page.route("**/v1/chat/completions", lambda route: _sse_answer(route, abstain))
    _ask(page, "Who won in 1930?")
    page.locator(".msg.assistant button.cite").first.click()
    expect(page.locator("#citation-passage mark")).to_have_text(a)
    for theme in ("dark", "light"):
        page.get_by_label("Theme").select_option(theme)
        expect(page.locator("html")).to_have_attribute("data-theme", theme)
        for sel in (".sentence.unsupported", ".answer-text button.cite", ".answer-text code", ".badge-contradiction",
                    ".badge-abstain", ".msg.assistant .hint", ".source-link", "#citation-passage mark", "#tenant-name",
                    "#chat-send", "#settings-summary", ".fb-button"):
            ratio = page.evaluate(CONTRAST, sel)
            assert ratio >= 4.5, f"{theme}: {sel} has a contrast of {ratio:.2f}"
        if theme == "dark":
            shot(page, "14-dark-chat")
            page.set_viewport_size({"width": 360, "height": 780})
            page.locator("#citation-close").click()
            shot(page, "15-dark-chat-narrow")
            assert page.evaluate("document.documentElement.scrollWidth") <= 360  # nothing wider than the screen
            page.set_viewport_size({"width": 1280, "height": 860})
    # Light is kept over the system's dark setting, across a reload; Auto follows the system again
    assert page.evaluate(BODY_LUMINANCE) > 0.85
    page.reload()
    expect(page.locator("#tenant-name")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    expect(page.get_by_label("Theme")).to_have_value("light")
    assert page.evaluate(BODY_LUMINANCE) > 0.85
    page.get_by_label("Theme").select_option("auto")
    assert page.evaluate(BODY_LUMINANCE) < 0.15
    page.emulate_media(color_scheme="light")
    assert page.evaluate(BODY_LUMINANCE) > 0.85
    assert page.evaluate("localStorage.getItem('sovrag.theme')") is None


def test_retrieval_settings_go_with_the_question_and_are_remembered(page: sync_api.Page, live: Live) -> None:
    sign_in(page, live.a_key)
    page.get_by_label("Collection", exact=True).select_option("benchmarks")
    sent: list[dict] = []

    def capture(route: sync_api.Route) -> None:
        sent.append(route.request.post_data_json)
        _sse_answer(route, _cited_answer("Fine.", [("Fine.", True, [])], []))

    page.route("**/v1/chat/completions", capture)
    _ask(page, "Defaults?")
    assert sent[-1]["sovrag"] == {"raw": True}
    expect(page.locator("#settings-summary")).to_have_text("(server defaults)")
    page.locator("#chat-settings summary").click()
    page.get_by_label("Passages to retrieve").fill("12")
    page.get_by_label("Search mode").select_option("bm25")
    expect(page.locator("#settings-summary")).to_have_text("(12 passages, BM25 search)")
    _ask(page, "With settings?")
    assert sent[-1]["sovrag"] == {"raw": True, "top_k": 12, "mode": "bm25"}
    assert sent[-1]["model"] == "rag:benchmarks"
    # remembered across a reload
    page.reload()
    expect(page.locator("#tenant-name")).to_be_visible()
    expect(page.locator("#settings-summary")).to_have_text("(12 passages, BM25 search)")
    page.locator("#chat-settings summary").click()
    expect(page.get_by_label("Passages to retrieve")).to_have_value("12")
    expect(page.get_by_label("Search mode")).to_have_value("bm25")
    # out of range: said, and the question is not sent (it stays in the box)
    page.get_by_label("Passages to retrieve").fill("99")
    page.get_by_label("Your question").fill("Too many?")
    page.get_by_role("button", name="Ask").click()
    expect(page.locator("#chat-error")).to_contain_text("from 1 to 50")
    expect(page.get_by_label("Passages to retrieve")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Your question")).to_have_value("Too many?")
    assert len(sent) == 2
    page.get_by_label("Passages to retrieve").fill("3")
    page.get_by_label("Search mode").select_option("dense")
    page.get_by_role("button", name="Ask").click()
    expect(page.locator("#chat-send")).to_have_text("Ask")
    expect(page.locator(".msg.user").last).to_have_text("Too many?")
    assert sent[-1]["sovrag"] == {"raw": True, "top_k": 3, "mode": "dense"}
    page.get_by_role("button", name="Reset").click()
    expect(page.locator("#settings-summary")).to_have_text("(server defaults)")
    assert page.evaluate("localStorage.getItem('sovrag.retrieval')") is None
    _ask(page, "Defaults again?")
    assert sent[-1]["sovrag"] == {"raw": True}


SECOND_LLM = "qwen2.5-coder-1.5b-instruct-q4_k_m"


def _llm_ids(listed: dict) -> list[str]:
    return [m["id"] for m in listed["data"] if m["kind"] == "llm"]


def _with_second_llm(route: sync_api.Route) -> None:
    """The server's own /v1/models with a second LLM after its default: a server offering two."""
    listed = route.fetch().json()
    at = max(i for i, m in enumerate(listed["data"]) if m["kind"] == "llm") + 1
    listed["data"].insert(at, {"id": SECOND_LLM, "object": "model", "created": 0, "owned_by": "sovrag", "kind": "llm"})
    route.fulfill(json=listed)


def _answering_as(sent: list[dict], default: str) -> Callable[[sync_api.Route], None]:
    """A chat route that records what was posted and answers in the name of the LLM asked for."""
    def answer(route: sync_api.Route) -> None:
        body = route.request.post_data_json
        sent.append(body)
        made_up = _cited_answer("Fine.", [("Fine.", True, [])], [])
        made_up["model"] = "llamacpp:" + body["sovrag"].get("llm", default)
        _sse_answer(route, made_up)
    return answer


def test_one_llm_offers_no_model_choice_and_each_answer_names_its_model(page: sync_api.Page, live: Live) -> None:
    with page.expect_response("**/v1/models") as models:
        sign_in(page, live.a_key)
    llms = _llm_ids(models.value.json())
    assert len(llms) == 1, llms  # the fixture's server offers one LLM
    page.get_by_label("Collection", exact=True).select_option("benchmarks")
    expect(page.locator("#chat-llm-pick")).to_be_hidden()
    expect(page.get_by_label("Model", exact=True)).to_be_hidden()
    sent: list[dict] = []
    page.route("**/v1/chat/completions", _answering_as(sent, llms[0]))
    msg = _ask(page, "Which model answers?")
    assert sent[-1]["sovrag"] == {"raw": True}  # no llm
    footer = msg.locator(".msg-model")
    expect(footer).to_have_text(f"Written by {llms[0]}")
    expect(footer.locator(".model-name")).to_have_attribute("title", f"llamacpp:{llms[0]}")
    assert page.evaluate(CONTRAST, ".msg-model") >= 4.5
    # a stored answer keeps its model's name
    page.reload()
    expect(page.locator(".msg.assistant").last.locator(".msg-model")).to_have_text(f"Written by {llms[0]}")
    assert not [k for k in page.evaluate("Object.keys(localStorage)") if k.startswith("sovrag.llm.")]


def test_several_llms_offer_a_model_choice_that_is_sent_and_remembered(page: sync_api.Page, live: Live) -> None:
    page.route("**/v1/models", _with_second_llm)
    with page.expect_response("**/v1/models") as models:
        sign_in(page, live.a_key)
    default, second = _llm_ids(models.value.json())
    assert second == SECOND_LLM
    page.get_by_label("Collection", exact=True).select_option("benchmarks")
    picker = page.get_by_label("Model", exact=True)
    expect(picker).to_be_visible()
    expect(picker.locator("option")).to_have_text([f"{default} (default)", second])
    expect(picker).to_have_value(default)
    sent: list[dict] = []
    page.route("**/v1/chat/completions", _answering_as(sent, default))
    msg = _ask(page, "The default?")
    assert sent[-1]["sovrag"] == {"raw": True}
    expect(msg.locator(".msg-model")).to_have_text(f"Written by {default}")

    picker.select_option(second)
    msg = _ask(page, "The other one?")
    assert sent[-1]["sovrag"] == {"raw": True, "llm": second}
    expect(msg.locator(".msg-model")).to_have_text(f"Written by {second}")
    shot(page, "17-model-choice")
    stored = page.evaluate("Object.fromEntries(Object.entries(localStorage)"
                           ".filter(([k]) => k.startsWith('sovrag.llm.')))")
    assert list(stored.values()) == [second], stored
    (llm_key,) = stored

    # remembered across a reload, and sent along with the retrieval settings
    page.reload()
    expect(page.locator("#tenant-name")).to_be_visible()
    expect(picker).to_have_value(second)
    page.locator("#chat-settings summary").click()
    page.get_by_label("Passages to retrieve").fill("5")
    _ask(page, "Still the other one?")
    assert sent[-1]["sovrag"] == {"raw": True, "top_k": 5, "llm": second}
    expect(page.locator(".msg.assistant .msg-model")).to_have_text(
        [f"Written by {m}" for m in (default, second, second)])
    page.get_by_role("button", name="Reset").click()

    # narrow screen: the picker fits
    page.set_viewport_size({"width": 360, "height": 780})
    expect(picker).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    box = picker.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360, box
    shot(page, "18-model-choice-narrow")
    page.set_viewport_size({"width": 1280, "height": 860})

    # the default again: nothing sent, nothing remembered
    picker.select_option(default)
    _ask(page, "Back to the default?")
    assert sent[-1]["sovrag"] == {"raw": True}
    assert page.evaluate("k => localStorage.getItem(k)", llm_key) is None

    # a remembered model the server no longer lists: the default, and forgotten
    page.evaluate("k => localStorage.setItem(k, 'retired-model')", llm_key)
    page.reload()
    expect(page.locator("#tenant-name")).to_be_visible()
    expect(picker).to_have_value(default)
    assert page.evaluate("k => localStorage.getItem(k)", llm_key) is None

    # the picked model is gone by the time the question is asked: said, and the list is fetched again
    picker.select_option(second)
    page.unroute("**/v1/models")
    gone = {"error": {"message": f"llm {second!r}: not offered by this server", "type": "invalid_request_error",
                      "param": "sovrag.llm", "code": "model_not_found"}}
    page.unroute("**/v1/chat/completions")
    page.route("**/v1/chat/completions",
               lambda route: route.fulfill(status=404, content_type="application/json", body=json.dumps(gone)))
    msg = _ask(page, "And now?")
    expect(msg.locator(".msg-error")).to_have_text(
        f'The model "{second}" is not offered by the server any more. Pick a model and ask again.')
    expect(page.locator("#chat-llm-pick")).to_be_hidden()  # one LLM left: no choice
    assert page.evaluate("k => localStorage.getItem(k)", llm_key) is None

    # the choice belongs to the tenant: another one on this browser gets the default
    page.route("**/v1/models", _with_second_llm)
    page.reload()
    picker.select_option(second)
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#chat-llm-pick")).to_be_hidden()
    page.get_by_label("API key").fill(live.b_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#tenant-name")).to_have_text("Tenant: globex")
    expect(picker).to_have_value(default)


def test_feedback_is_sent_kept_and_its_errors_shown_beside_the_buttons(page: sync_api.Page, live: Live) -> None:
    sign_in(page, live.a_key)
    page.get_by_label("Collection", exact=True).select_option("benchmarks")
    sources = [_source(1, "expense-policy.docx", "Hotels: 180 EUR per night."), _source(2, "faq.pdf", "Ask HR.")]
    answer = _cited_answer("Hotels may cost 180 EUR per night.[1]", [("Hotels may cost 180 EUR per night.", True, [1])],
                           sources)
    page.route("**/v1/chat/completions", lambda route: _sse_answer(route, answer, answer_id="chatcmpl-fb-1"))
    down = {"error": {"message": "the feedback store is down", "type": "server_error", "code": "unavailable"}}
    page.route("**/v1/feedback",
               lambda route: route.fulfill(status=503, content_type="application/json", body=json.dumps(down)))
    msg = _ask(page, "What may a hotel cost?")
    good, bad = msg.get_by_role("button", name="Good answer"), msg.get_by_role("button", name="Bad answer")
    expect(good).to_have_attribute("aria-pressed", "false")
    good.click()
    expect(msg.locator(".fb-status")).to_have_text("Could not send the feedback: the feedback store is down")
    expect(good).to_have_attribute("aria-pressed", "false")
    page.unroute("**/v1/feedback")

    bad.click()
    expect(bad).to_have_attribute("aria-pressed", "true")
    comment = msg.get_by_label("What was wrong or missing? (optional)")
    expect(comment).to_be_focused()
    comment.fill("It should say 150 EUR.")
    shot(page, "16-feedback-comment")
    msg.get_by_role("button", name="Send").click()
    expect(msg.locator(".fb-status")).to_have_text("Thanks, your comment was sent.")
    expect(comment).to_be_hidden()
    expect(bad).to_be_focused()
    with _api(live.base, live.a_key) as a:
        rows = a.get("/v1/feedback", params={"collection": "benchmarks"}).raise_for_status().json()["data"]
    assert [(r["rating"], r["comment"], r["question"], r["answer"]) for r in rows] == [
        ("down", "It should say 150 EUR.", "What may a hotel cost?", answer["text"])]
    assert rows[0]["answer_id"] == "chatcmpl-fb-1"
    assert rows[0]["sources"] == [{"number": 1, "source": "expense-policy.docx", "text": "Hotels: 180 EUR per night."}]

    # the rating is kept with the conversation; changing it updates the same feedback
    page.reload()
    msg = page.locator(".msg.assistant").last
    expect(msg.get_by_role("button", name="Bad answer")).to_have_attribute("aria-pressed", "true")
    msg.get_by_role("button", name="Good answer").click()
    expect(msg.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "true")
    expect(msg.get_by_role("button", name="Bad answer")).to_have_attribute("aria-pressed", "false")
    expect(msg.locator(".fb-status")).to_have_text("Thanks for the feedback.")
    with _api(live.base, live.a_key) as a:
        rows = a.get("/v1/feedback", params={"collection": "benchmarks"}).raise_for_status().json()["data"]
    assert [(r["id"], r["rating"], r["comment"]) for r in rows] == [(rows[0]["id"], "up", "It should say 150 EUR.")]
    assert page.evaluate("() => JSON.parse(localStorage.getItem(Object.keys(localStorage).find("
                         "k => k.startsWith('sovrag.chat.') && k.endsWith('.benchmarks')))).at(-1).feedback") == {
        "id": rows[0]["id"], "rating": "up", "comment": "It should say 150 EUR."}
    # no feedback buttons under a failed answer
    page.route("**/v1/chat/completions", lambda route: route.abort("connectionreset"))
    msg = _ask(page, "And now?")
    expect(msg.locator(".msg-error")).to_be_visible()
    expect(msg.get_by_role("button", name="Good answer")).to_have_count(0)


def test_conversations_outlive_the_tab_and_stay_with_their_tenant(page: sync_api.Page, live: Live) -> None:
    with _api(live.base, live.b_key) as b:  # globex gets a collection of the same name as acme's
        b.post("/v1/collections", json={"name": "benchmarks"}).raise_for_status()
    try:
        sign_in(page, live.a_key)
        page.get_by_label("Collection", exact=True).select_option("benchmarks")
        answer = _cited_answer("Kept for later.", [("Kept for later.", True, [])], [])
        page.route("**/v1/chat/completions", lambda route: _sse_answer(route, answer))
        _ask(page, "Will you remember this?")
        expect(page.locator(".msg.assistant").last).to_contain_text("Kept for later.")

        # a new tab of the same browser (sessionStorage empty: sign in again): the conversation and the collection
        second = page.context.new_page()
        errors: list[str] = []
        second.on("pageerror", lambda e: errors.append(str(e)))
        sign_in(second, live.a_key)
        expect(second.get_by_label("Collection", exact=True)).to_have_value("benchmarks")
        expect(second.locator(".msg.user").last).to_have_text("Will you remember this?")
        expect(second.locator(".msg.assistant").last).to_contain_text("Kept for later.")
        second.get_by_role("button", name="Sign out").click()
        expect(second.get_by_role("heading", name="Sign in")).to_be_visible()

        # another tenant on the same browser, same collection name: nothing of it
        second.get_by_label("API key").fill(live.b_key)
        second.get_by_role("button", name="Sign in").click()
        expect(second.locator("#tenant-name")).to_have_text("Tenant: globex")
        second.get_by_label("Collection", exact=True).select_option("benchmarks")
        expect(second.get_by_label("Collection", exact=True)).to_have_value("benchmarks")
        expect(second.locator("#chat-log .msg")).to_have_count(0)
        assert "Will you remember" not in second.locator("#chat-log").inner_text()
        second.close()
        assert not errors, errors

        # the first tab still has it; Clear conversation removes it from the browser
        page.reload()
        expect(page.locator(".msg.user").last).to_have_text("Will you remember this?")
        page.get_by_role("button", name="Clear conversation").click()
        expect(page.locator("#chat-log .msg")).to_have_count(0)
        keys = page.evaluate("Object.keys(localStorage)")
        assert not [k for k in keys if k.startswith("sovrag.chat.") and k.endswith(".benchmarks")], keys
    finally:
        with _api(live.base, live.b_key) as b:
            b.delete("/v1/collections/benchmarks").raise_for_status()


@pytest.mark.model
def test_a_real_bm25_answer_can_be_rated_down_with_a_comment(page: sync_api.Page, live: Live) -> None:
    _collection_of(live, live.a_key, "handbook", EXAMPLES / "handbook.md")
    sign_in(page, live.a_key)
    page.get_by_label("Collection", exact=True).select_option("handbook")
    page.locator("#chat-settings summary").click()
    page.get_by_label("Search mode").select_option("bm25")
    with page.expect_request("**/v1/chat/completions") as request:
        page.get_by_label("Your question").fill(QUESTION)
        page.get_by_role("button", name="Ask").click()
    assert request.value.post_data_json["sovrag"] == {"raw": True, "mode": "bm25"}
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".answer-text")).to_contain_text("25", timeout=180_000)
    expect(page.locator("#chat-send")).to_be_enabled(timeout=120_000)
    expect(answer.locator(".msg-error")).to_be_hidden()
    expect(answer.locator("button.cite").first).to_have_attribute("aria-label", re.compile(r"handbook\.md"))
    answer.get_by_role("button", name="Bad answer").click()
    answer.get_by_label("What was wrong or missing? (optional)").fill("Too short.")
    answer.get_by_role("button", name="Send").click()
    expect(answer.locator(".fb-status")).to_have_text("Thanks, your comment was sent.")
    with _api(live.base, live.a_key) as a:
        rows = a.get("/v1/feedback", params={"collection": "handbook"}).raise_for_status().json()["data"]
    assert [(r["rating"], r["comment"], r["question"]) for r in rows] == [("down", "Too short.", QUESTION)]
    assert "25" in rows[0]["answer"] and rows[0]["answer_id"].startswith("chatcmpl-")
    assert any(s["source"] == "handbook.md" for s in rows[0]["sources"])


def test_unsupported_and_oversized_uploads_show_each_files_reason(page: sync_api.Page, live: Live) -> None:
    sign_in(page, live.a_key)
    page.get_by_role("link", name="Collections").click()
    page.get_by_role("button", name=re.compile(r"^benchmarks")).click()
    expect(page.locator("#documents-title")).to_have_text("Documents in benchmarks")
    page.set_input_files("#file-input", [
        {"name": "tool.exe", "mimeType": "application/octet-stream", "buffer": b"MZ\x90\x00"},
        {"name": "huge.txt", "mimeType": "text/plain", "buffer": b"word " * 20_000},
    ])
    expect(page.locator("#upload-summary")).to_have_text("Done: 0 ingested, 2 rejected.")
    rows = page.locator("#upload-files li.error")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="tool.exe")).to_contain_text("type .exe is not supported")
    expect(rows.filter(has_text="huge.txt")).to_contain_text("over the 0.05 MB limit")
    # one good, one bad: the good one is ingested, the bad one says why
    page.set_input_files("#file-input", [
        {"name": "notes.md", "mimeType": "text/markdown", "buffer": b"# Notes\n\nBenchmarks run nightly."},
        {"name": "slides.pptx", "mimeType": "application/octet-stream", "buffer": b"PK\x03\x04"},
    ])
    expect(page.locator("#upload-summary")).to_have_text("Done: 1 ingested, 1 rejected.", timeout=60_000)
    expect(page.locator("#upload-files li.error")).to_contain_text("type .pptx is not supported")
    expect(page.locator("#document-table tbody tr")).to_have_count(1)
    shot(page, "07-upload-errors", full_page=True)
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete document notes.md").click()
    expect(page.locator("#documents-empty")).to_be_visible()


def test_eval_runs_open_their_report_in_a_sandbox(page: sync_api.Page, live: Live) -> None:
    sign_in(page, live.a_key)
    page.get_by_role("link", name="Evaluations").click()
    rows = page.locator("#evals-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("benchmarks")
    expect(page.locator("#evals-table")).to_contain_text("faithfulness")
    expect(page.locator("#evals-table")).not_to_contain_text("Globex")
    page.get_by_role("button", name="Open the report of Latency under load").click()
    frame = page.frame_locator("#report-frame")
    expect(frame.get_by_role("heading", name="Latency under load")).to_be_visible()
    expect(frame.locator("table")).to_contain_text("p95_s")
    assert page.title() != "pwned"  # the report's script did not run
    shot(page, "08-eval-runs", full_page=True)
    page.get_by_role("button", name="Close report").click()
    expect(page.locator("#report-viewer")).to_be_hidden()


def test_tenant_isolation_is_visible(page: sync_api.Page, live: Live) -> None:
    sign_in(page, live.b_key)
    expect(page.locator("#tenant-name")).to_have_text("Tenant: globex")
    options = page.locator("#chat-collection option")
    expect(options).to_have_count(1)
    expect(options).to_have_text("zephyr-notes")
    page.get_by_role("link", name="Collections").click()
    expect(page.locator("#collection-list li")).to_have_count(1)
    expect(page.locator("#collection-list")).not_to_contain_text("docs")
    expect(page.locator("#collection-list")).not_to_contain_text("benchmarks")
    page.get_by_role("link", name="Evaluations").click()
    expect(page.locator("#evals-table tbody tr")).to_have_count(1)
    expect(page.locator("#evals-table")).to_contain_text("Globex secret eval")
    expect(page.locator("#evals-table")).not_to_contain_text("Latency under load")
    shot(page, "09-tenant-b")
    # sign out forgets the key and the conversation
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('sovrag.'))") == []


def test_a_revoked_key_sends_the_user_back_to_sign_in(page: sync_api.Page, live: Live) -> None:
    with httpx.Client(base_url=live.base, headers={"Authorization": f"Bearer {ADMIN}"}) as adm:
        tid = adm.get("/admin/tenants").json()["data"][0]["id"]
        created = adm.post(f"/admin/tenants/{tid}/keys", json={"name": "short-lived"}).json()
    sign_in(page, created["key"])
    with httpx.Client(base_url=live.base, headers={"Authorization": f"Bearer {ADMIN}"}) as adm:
        adm.delete(f"/admin/keys/{created['id']}").raise_for_status()
    # The next request must notice; one the page sent right after signing in may already have (then the nav
    # is hidden and a click would wait for it), so navigate by the route instead of clicking the link.
    page.evaluate("location.hash = '#/evals'")
    expect(page.locator("#signin-error")).to_contain_text("no longer accepted")
    expect(page.locator("#nav")).to_be_hidden()


class Proxy:
    """A TCP relay in front of the server whose connections the test can cut, as a dying server would."""

    def __init__(self, port: int, hold_after: re.Pattern[bytes] | None = None) -> None:
        #: stop relaying a connection right after the server data that matches (e.g. the first text event), as
        #: if the server had hung there; the test then sees what the browser shows and cuts the connection.
        #: (Cutting at once would be racy: a browser's fetch stream drops chunks its page has not read yet
        #: when the connection errors, so what "arrived" depends on how busy the page was.)
        self.hold_after = hold_after
        self.held = threading.Event()
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b, watch in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(a, b, watch), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, watch: bool) -> None:
        seen = b""  # what this connection received so far: a pattern may span two reads
        try:
            while data := src.recv(65536):
                if watch and self.hold_after is not None:
                    start = len(seen)
                    seen += data
                    if m := self.hold_after.search(seen):
                        # up to the end of the match only: on a busy machine one read may hold the whole answer
                        dst.sendall(data[:max(0, m.end() - start)])
                        self.held.set()
                        self.closed.wait()  # relay nothing more; the test cuts
                        return
                dst.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        self.closed.set()
        for s in self.conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.conns.clear()

    def close(self) -> None:
        self.listener.close()
        self.cut()


@pytest.mark.model
def test_connection_dropping_mid_answer_ends_the_stream_with_a_message(page: sync_api.Page, live: Live) -> None:
    _collection_of(live, live.a_key, "firmware", EXAMPLES / "release-notes.txt")
    # answers stream sentence by sentence once verified: the server goes silent right after the first whole event
    # that carries verified text, the page shows that text, then the connection drops
    proxy = Proxy(int(live.base.rsplit(":", 1)[1]), hold_after=re.compile(rb'"content": ?"[^"][^\n]*\n\n'))
    try:
        page.goto(proxy.base + "/")
        page.get_by_label("API key").fill(live.a_key)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("Collection", exact=True).select_option("firmware")
        page.get_by_label("Your question").fill("Which new features does firmware 4.2 add?")
        page.get_by_role("button", name="Ask").click()
        answer = page.locator(".msg.assistant").last
        expect(answer.locator(".answer-text")).not_to_be_empty(timeout=60_000)
        assert proxy.held.is_set()
        first = answer.locator(".answer-text").inner_text()
        proxy.cut()
        expect(answer.locator(".msg-error")).to_contain_text("connection to the server was lost", timeout=30_000)
        expect(answer.locator(".answer-text")).to_have_text(first)  # what arrived is kept
        expect(page.locator("#chat-send")).to_be_enabled()
        expect(page.locator("#chat-stop")).to_be_hidden()
        shot(page, "10-connection-drop")
    finally:
        proxy.close()
    with httpx.Client(base_url=live.base) as c:  # the server itself is fine and its LLM is free again
        deadline = time.monotonic() + 60
        while c.get("/readyz").json()["llm_queue_depth"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert c.get("/readyz").status_code == 200


@pytest.mark.parametrize("path, marker", [("/docs", "#swagger-ui .opblock"), ("/redoc", "[data-section-id]")])
def test_api_docs_render_offline(page: sync_api.Page, live: Live, path: str, marker: str) -> None:
    """Swagger UI and ReDoc come from this server (bundled assets): with every other host unreachable, the API
    reference still renders its routes."""
    elsewhere: list[str] = []

    def only_here(route: sync_api.Route) -> None:
        if route.request.url.startswith(live.base):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    page.goto(path)
    expect(page.locator(marker).first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("/v1/chat/completions").first).to_be_attached()
    # nothing was requested from elsewhere (ReDoc's CDN logo is stopped by the page's CSP before any request)
    assert not [u for u in elsewhere if not u.startswith("data:")], elsewhere
    shot(page, f"11-api{path.replace('/', '-')}")
