from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from sovrag.embed import OnnxEmbedder, OpenAIEmbedder
from sovrag.errors import EmbedError

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.npz"


def test_onnx_matches_original_model(embedder):
    """sovrag's int8 ONNX vectors vs the original PyTorch model (scripts/make_embedding_reference.py)."""
    ref = np.load(REFERENCE)
    sentences = [str(s) for s in ref["sentences"]]
    ours = embedder.embed(sentences)
    assert ours.shape == ref["vectors"].shape and ours.dtype == np.float32
    cosines = (ours * ref["vectors"]).sum(axis=1)
    assert cosines.min() >= 0.99, dict(zip(sentences, cosines.round(4), strict=True))
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batching_and_order_do_not_change_vectors(embedder):
    texts = [str(s) for s in np.load(REFERENCE)["sentences"]]
    together = embedder.embed(texts)
    one_by_one = np.vstack([embedder.embed([t]) for t in reversed(texts)])[::-1]
    assert np.allclose(together, one_by_one, atol=2e-3)
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_long_text_is_embedded_by_all_its_windows(embedder):
    head = "The volcano erupted violently and covered the town in ash. " * 40
    tail = "Bechamel sauce needs butter, flour and milk, whisked until smooth. " * 40
    assert embedder.count_tokens(head) > 300
    whole, head_only = embedder.embed([head + tail, head])
    tail_only = embedder.embed([tail])[0]
    assert abs(np.linalg.norm(whole) - 1) < 1e-5
    # The tail beyond the model's 256-token window still shapes the vector.
    assert whole @ tail_only > head_only @ tail_only + 0.2


def test_onnx_bad_paths(tmp_path: Path):
    with pytest.raises(EmbedError, match="model.onnx: file not found"):
        OnnxEmbedder(tmp_path / "model.onnx", tmp_path / "tokenizer.json", "x")
    (tmp_path / "model.onnx").write_bytes(b"not an onnx file")
    ref_tok = next(Path.home().glob(".cache/sovrag-test-models/minilm-l6-v2/tokenizer.json"))
    with pytest.raises(EmbedError, match="cannot load"):
        OnnxEmbedder(tmp_path / "model.onnx", ref_tok, "x")


class _Host:
    """A real OpenAI-compatible embeddings server on loopback, backed by the real ONNX embedder."""

    def __init__(self, embedder) -> None:
        self.embedder = embedder
        self.fail_next: list[int | str] = []  # HTTP codes or "garbage" to answer before serving
        self.requests = 0

    def handler(self):
        host = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                host.requests += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if host.fail_next:
                    what = host.fail_next.pop(0)
                    payload = b"{not json" if what == "garbage" else b'{"error": "boom"}'
                    self.send_response(200 if what == "garbage" else int(what))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if self.path != "/v1/embeddings" or self.headers.get("Authorization") != "Bearer k1":
                    self.send_response(401)
                    self.end_headers()
                    return
                vecs = host.embedder.embed(body["input"])
                data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vecs)]
                data.reverse()  # hosts may answer out of order; the index field decides
                raw = json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        return H


@pytest.fixture
def host(embedder) -> Iterator[tuple[_Host, str]]:
    h = _Host(embedder)
    server = ThreadingHTTPServer(("127.0.0.1", 0), h.handler())
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield h, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_embedder_against_live_host(host, embedder):
    h, url = host
    client = OpenAIEmbedder(url, "minilm", api_key="k1", batch_size=3, backoff=0.01)
    texts = ["alpha particle", "beta decay", "gamma rays", "delta wing", "epsilon"]
    got = client.embed(texts)
    assert np.allclose(got, embedder.embed(texts), atol=1e-5)
    assert client.dim == embedder.dim and h.requests == 2


def test_a_remote_embedder_budgets_tokens_with_the_bundled_tokenizer(embedder, settings):
    from sovrag.embed import create_embedder

    remote = create_embedder(settings, "openai://127.0.0.1:9/v1?model=e")  # never contacted: counting is local
    text = "New employees get 25 vacation days per year."
    assert remote.count_tokens(text) == embedder.count_tokens(text) > 5
    assert OpenAIEmbedder("http://127.0.0.1:9/v1", "m").count_tokens("x" * 400) == 101  # no tokenizer: ~4 bytes


def test_openai_embedder_retries_then_fails_clearly(host):
    h, url = host
    client = OpenAIEmbedder(url, "minilm", api_key="k1", retries=2, backoff=0.01)
    h.fail_next = [503, 500]
    assert client.embed(["recovers after two 5xx"]).shape == (1, 384)
    h.fail_next = ["garbage"]
    with pytest.raises(EmbedError, match="malformed reply"):
        client.embed(["x"])
    h.fail_next = [503, 503, 503]
    with pytest.raises(EmbedError, match="HTTP 503"):
        client.embed(["x"])
    bad_key = OpenAIEmbedder(url, "minilm", api_key="wrong", retries=3, backoff=0.01)
    before = h.requests
    with pytest.raises(EmbedError, match="HTTP 401"):
        bad_key.embed(["x"])
    assert h.requests == before + 1  # a client error is not retried


def test_openai_embedder_unreachable_host():
    client = OpenAIEmbedder("http://127.0.0.1:9/v1", "m", retries=1, backoff=0.01, timeout=2)
    with pytest.raises(EmbedError, match="127.0.0.1:9/v1/embeddings: ConnectError"):
        client.embed(["x"])


def test_embedder_refuses_an_onnxruntime_loaded_with_telemetry_on(tmp_path) -> None:
    """Imported before sovrag without the switch, onnxruntime's telemetry is already on: refuse, say why."""
    import subprocess
    import sys

    code = (
        "import os; os.environ.pop('ORT_DISABLE_TELEMETRY', None)\n"
        "import onnxruntime\n"
        "from sovrag.embed.onnx import OnnxEmbedder\n"
        "from sovrag.errors import EmbedError\n"
        "try:\n"
        f"    OnnxEmbedder({str(tmp_path / 'm.onnx')!r}, {str(tmp_path / 't.json')!r}, 'x')\n"
        "except EmbedError as e:\n"
        "    print('refused:', e)\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert "refused: onnxruntime was imported before sovrag" in out.stdout, out.stdout + out.stderr
    assert "ORT_DISABLE_TELEMETRY=1" in out.stdout
