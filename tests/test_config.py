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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nprot = 9453\n", "unknown key 'prot' in [server]; did you mean 'port'?"),
        (
            "[server]\nhttpAdress = ':9000'\n",
            "unknown key 'httpAdress' in [server]; did you mean 'httpAddress'?",
        ),
        ("[server]\nNote = 'x'\n", "unknown key 'Note' in [server]; did you mean 'note'?"),
        ('[store.main]\npth = "d"\n', "unknown key 'pth' in [store.main]; did you mean 'path'?"),
        (
            '[store.a]\n[backend.default]\nstor = "a"\n',
            "unknown key 'stor' in [backend.default]; did you mean 'store'?",
        ),
        ("[srever]\nport = 1\n", "unknown section [srever]; did you mean 'server'?"),
        ("[stores.main]\n", "unknown section [stores]; did you mean 'store'?"),
        ("port = 9000\n", "unknown top-level key 'port'"),
        ("[server]\nzzz = 1\n", "unknown key 'zzz' in [server] (valid: host, port,"),
    ],
)
def test_unknown_keys_are_refused_with_the_nearest_valid_one(tmp_path: Path, text: str, message: str):
    path = tmp_path / "typo.toml"
    path.write_text(text)
    with pytest.raises(BadRequest) as info:
        load_config(path)
    assert info.value.message.startswith(f"config file {path} is invalid:\n  ")
    assert message in info.value.message


def test_every_unknown_key_is_named_at_once(tmp_path: Path):
    path = tmp_path / "typos.toml"
    path.write_text('[server]\nprot = 1\nnoet = "x"\n[store.main]\nengin = "memory"\n')
    with pytest.raises(BadRequest) as info:
        load_config(path)
    lines = info.value.message.splitlines()[1:]
    assert lines == [
        "  unknown key 'prot' in [server]; did you mean 'port'?",
        "  unknown key 'noet' in [server]; did you mean 'note'?",
        "  unknown key 'engin' in [store.main]; did you mean 'engine'?",
    ]


def test_dvid_sections_and_keys_dvid_lacks_are_ignored_with_a_warning(tmp_path: Path, caplog):
    """A DVID configuration runs unchanged: its sections and settings dvid does not implement are
    logged and ignored; everything dvid implements is read."""
    path = tmp_path / "dvid.toml"
    path.write_text(
        '[server]\nhttpAddress = ":9100"\nrpcAddress = ":8001"\nwebClient = "/x"\nnote = "n"\n'
        '[logging]\nlogfile = "/tmp/dvid.log"\nmax_log_size = 500\n'
        '[kafka]\nservers = ["k:1"]\n'
        "[mutations]\n[auth]\n[email]\n[mirror.all]\nservers = []\n"
        '[store.main]\nengine = "leveldb"\npath = "d"\nBloomFilterBitsPerKey = 10\n'
        '[backend.default]\nstore = "main"\nlog = "mutlog"\n'
    )
    with caplog.at_level("WARNING", logger="dvid.config"):
        config = load_config(path)
    assert (config.server.port, config.server.note, config.default_store_name()) == (9100, "n", "main")
    expected = [
        "[server] rpcAddress is a DVID setting that dvid does not implement: ignored",
        "[server] webClient is a DVID setting that dvid does not implement: ignored",
        "[logging] is a DVID section that dvid does not implement: ignored",
        "[kafka] is a DVID section that dvid does not implement: ignored",
        "[mutations] is a DVID section that dvid does not implement: ignored",
        "[auth] is a DVID section that dvid does not implement: ignored",
        "[email] is a DVID section that dvid does not implement: ignored",
        "[mirror] is a DVID section that dvid does not implement: ignored",
        "[store.main] BloomFilterBitsPerKey is a DVID setting that dvid does not implement: ignored",
        "[backend.default] log is a DVID setting that dvid does not implement: ignored",
    ]
    assert config.ignored == expected
    assert [r.getMessage() for r in caplog.records] == [f"config file {path}: {n}" for n in expected]


def test_documented_example_config_loads(tmp_path: Path):
    """The TOML example of docs/configuration.md is valid, key for key."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.toml"
    path.write_text(example)
    config = load_config(path)
    assert config.server.host == "0.0.0.0" and config.ignored == []


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
