from __future__ import annotations

from pathlib import Path

import pytest

from sovrag.config import Settings, load_settings, parse_openai_spec
from sovrag.embed import OpenAIEmbedder, create_embedder
from sovrag.errors import ConfigError
from sovrag.generate import create_llm
from sovrag.generate.openai_compat import OpenAICompatLLM
from sovrag.store import open_backend


def test_precedence_file_env_overrides(tmp_path: Path, monkeypatch):
    cfg = tmp_path / "sovrag.toml"
    cfg.write_text('[sovrag]\nchunk_tokens = 300\nstore = "qdrant-local::memory:"\n')
    monkeypatch.setenv("SOVRAG_CHUNK_TOKENS", "250")
    monkeypatch.setenv("SOVRAG_DATA_DIR", str(tmp_path / "d"))
    s = load_settings(cfg, chunk_overlap=10)
    assert (s.chunk_tokens, s.store, s.chunk_overlap, s.data_dir) == (250, "qdrant-local::memory:", 10,
                                                                       tmp_path / "d")
    assert s.models_dir == tmp_path / "d" / "models"


def test_bad_settings_name_the_setting(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SOVRAG_CHUNK_TOKENS", "lots")
    with pytest.raises(ConfigError, match="chunk_tokens='lots'"):
        load_settings()
    monkeypatch.delenv("SOVRAG_CHUNK_TOKENS")
    with pytest.raises(ConfigError, match="chunk_mode='pages'"):
        load_settings(chunk_mode="pages")
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match=r"unknown settings \['colour'\]"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")


def test_spec_strings(tmp_path: Path):
    assert parse_openai_spec("openai+https://api.example.com/v1?model=m", "llm") == ("https://api.example.com/v1", "m")
    with pytest.raises(ConfigError, match="expected openai://"):
        parse_openai_spec("openai://host/v1", "llm")
    s = Settings(data_dir=tmp_path)
    assert isinstance(create_embedder(s, "openai://127.0.0.1:9/v1?model=e"), OpenAIEmbedder)
    assert isinstance(create_llm(s, "openai://127.0.0.1:9/v1?model=l"), OpenAICompatLLM)
    for bad, fn in (("faiss:x", create_embedder), ("gpt:x", create_llm)):
        with pytest.raises(ConfigError, match="unknown kind"):
            fn(s, bad)
    with pytest.raises(ConfigError, match="unknown kind 'redis'"):
        open_backend("redis://x", tmp_path)


def test_serve_table_gives_server_options_under_env(tmp_path: Path, monkeypatch):
    from sovrag.serve.options import ServerOptions

    f = tmp_path / "sovrag.toml"
    f.write_text('llm_context = 2048\n\n[serve]\nadmin_key = "file-admin-key-0123456789"\nrate_limit_rpm = 30\n'
                 'max_upload_file_mb = 5\n')
    monkeypatch.delenv("SOVRAG_ADMIN_KEY", raising=False)
    monkeypatch.setenv("SOVRAG_SERVE_RATE_LIMIT_RPM", "60")
    opts = ServerOptions.from_env(f).check()
    assert opts.admin_key == "file-admin-key-0123456789" and opts.rate_limit_rpm == 60
    assert opts.max_upload_file_mb == 5.0 and opts.max_upload_files == 100
    assert load_settings(f).llm_context == 2048  # the [serve] table is not a sovrag setting
    f.write_text('[serve]\nrate_limt_rpm = 30\n')
    with pytest.raises(ConfigError, match="unknown \\[serve\\] setting 'rate_limt_rpm'"):
        ServerOptions.from_env(f)
    f.write_text('[serve]\nrate_limit_rpm = "fast"\n')
    with pytest.raises(ConfigError, match="rate_limit_rpm = 'fast': expected int"):
        ServerOptions.from_env(f)


@pytest.mark.parametrize("value,expected", [("true", True), ("1", True), ("yes", True), ("false", False),
                                            ("0", False), ("off", False)])
def test_boolean_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("SOVRAG_FOLLOW_SYMLINKS_OUTSIDE", value)
    assert load_settings(None).follow_symlinks_outside is expected


def test_a_boolean_setting_that_is_not_yes_or_no_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOVRAG_FOLLOW_SYMLINKS_OUTSIDE", "maybe")
    with pytest.raises(ConfigError, match="follow_symlinks_outside"):
        load_settings(None)
