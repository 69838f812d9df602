"""Configuration: defaults without a file, TOML parsing and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvid.config import load_config
from dvid.errors import BadRequest


def test_defaults_need_no_file():
    config = load_config(None)
    assert (config.server.host, config.server.port, config.server.rwmode) == ("127.0.0.1", 8000, "readwrite")
    store = config.default_store()
    assert (store.engine, store.path) == ("leveldb", "dvid-data")
    assert config.server.cors_domains == ["*"]


def test_toml_with_dvid_spellings(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("DVID_ADMIN_TOKEN", raising=False)
    path = tmp_path / "dvid.toml"
    path.write_text(
        '[server]\nhttpAddress = ":9000"\nnote = "hi"\nrwmode = "fullwrite"\ncorsDomains = ["https://x.org"]\n'
        '[store.main]\nengine = "leveldb"\npath = "data"\nWriteBufferSize = 32\n'
    )
    config = load_config(path)
    assert (config.server.host, config.server.port) == ("0.0.0.0", 9000)
    assert config.server.rwmode == "fullwrite" and config.server.note == "hi"
    assert config.server.cors_domains == ["https://x.org"]
    assert config.default_store_name() == "main"
    assert config.default_store().path == str((tmp_path / "data").resolve())
    assert config.default_store().write_buffer_mib == 32
    assert config.source == str(path.resolve())
    assert config.server.effective_admin_token() is None
    monkeypatch.setenv("DVID_ADMIN_TOKEN", "from-env")
    assert config.server.effective_admin_token() == "from-env"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[server\n", "not valid TOML"),
        ('[server]\nrwmode = "sometimes"\n', "rwmode"),
        ('[server]\nport = "x"\n', "port"),
        ('[store.a]\nengine = "rocks"\n', "engine"),
        ("[store.a]\n[store.b]\n", "[backend.default]"),
        ('[store.a]\n[backend.default]\nstore = "zzz"\n', "unknown store"),
    ],
)
def test_invalid_configs_name_the_problem(tmp_path: Path, text: str, fragment: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(BadRequest, match=None) as info:
        load_config(path)
    assert fragment in info.value.message


def test_missing_file(tmp_path: Path):
    with pytest.raises(BadRequest, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_leveldb_memory_settings(tmp_path: Path):
    """WriteBufferSize, CacheSize and MaxOpenFiles (DVID's names) bound a LevelDB store's memory;
    MaxOpenFiles is refused outside the range LevelDB would silently clip it to."""
    assert load_config(None).default_store().max_open_files == 1024
    path = tmp_path / "dvid.toml"
    path.write_text("[store.main]\nWriteBufferSize = 16\nCacheSize = 64\nMaxOpenFiles = 200\n")
    store = load_config(path).default_store()
    assert (store.write_buffer_mib, store.cache_mib, store.max_open_files) == (16, 64, 200)
    for bad in (10, 100_000):
        path.write_text(f"[store.main]\nMaxOpenFiles = {bad}\n")
        with pytest.raises(BadRequest) as info:
            load_config(path)
        assert "MaxOpenFiles" in info.value.message


def test_malloc_trim_seconds(tmp_path: Path):
    assert load_config(None).server.malloc_trim_seconds == 60
    path = tmp_path / "dvid.toml"
    path.write_text("[server]\nmalloc_trim_seconds = 0\n")
    assert load_config(path).server.malloc_trim_seconds == 0  # never
    path.write_text("[server]\nmalloc_trim_seconds = -1\n")
    with pytest.raises(BadRequest) as info:
        load_config(path)
    assert "malloc_trim_seconds" in info.value.message
