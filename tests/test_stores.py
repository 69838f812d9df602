"""Several stores: configuration, DVID's backend precedence, per-instance stores kept across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvid.config import Config, load_config
from dvid.errors import BadRequest, DVIDError
from dvid.repos import RepoManager
from dvid.storage import keys
from dvid.storage.leveldb import LevelDBEngine
from dvid.storage.memory import MemoryEngine
from dvid.storage.stores import Stores

ROOT = "a" * 32
DATA = "d" * 32


def config_of(text: str, tmp_path: Path) -> Config:
    path = tmp_path / "dvid.toml"
    path.write_text(text)
    return load_config(path)


STORES = """
[store.main]
engine = "leveldb"
path = "main-db"
[store.ssd]
engine = "memory"
[store.pg]
engine = "postgres"
url = "postgresql://dvid@db.example:5433/dvid"
table = "kv_pg"
pool_max = 4
"""


def test_backend_precedence(tmp_path):
    cfg = config_of(
        STORES
        + f"""
[backend.default]
store = "main"
[backend.metadata]
store = "ssd"
[backend.labelmap]
store = "pg"
[backend."grayscale:{ROOT}"]
store = "ssd"
[backend."type=meshes"]
store = "pg"
[backend."{DATA}"]
store = "ssd"
""",
        tmp_path,
    )
    assert cfg.default_store_name() == "main" and cfg.metadata_store_name() == "ssd"
    assert cfg.store["main"].path == str((tmp_path / "main-db").resolve())
    pg = cfg.store["pg"]
    assert (pg.dsn, pg.table, pg.pool_max) == ("postgresql://dvid@db.example:5433/dvid", "kv_pg", 4)

    def choose(data_uuid="e" * 32, name="x", root=ROOT, type_name="keyvalue", tags=None):
        return cfg.store_for_instance(
            data_uuid=data_uuid, name=name, root_uuid=root, type_name=type_name, tags=tags or {}
        )

    assert choose() == "main"
    assert choose(type_name="labelmap") == "pg"
    assert choose(tags={"type": "meshes"}) == "pg"
    assert choose(tags={"type": "meshes"}, type_name="labelmap") == "pg"
    assert choose(name="grayscale", type_name="labelmap") == "ssd"  # name:root beats type
    assert choose(name="grayscale", root="b" * 32, type_name="labelmap") == "pg"
    assert choose(data_uuid=DATA, type_name="labelmap", tags={"type": "meshes"}) == "ssd"


def test_one_store_is_default_and_metadata(tmp_path):
    cfg = config_of('[store.only]\nengine = "memory"\n', tmp_path)
    assert cfg.default_store_name() == cfg.metadata_store_name() == "only"
    assert cfg.store_for_instance(data_uuid=DATA, name="x", root_uuid=ROOT, type_name="keyvalue") == "only"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (STORES, "if no default backend specified, must have exactly one store"),
        (STORES + '[backend.default]\nstore = "nope"\n', "unknown store 'nope'"),
        (STORES + '[backend.default]\nstore = "main"\n[backend.labelblk]\nstore = "gone"\n', "'gone'"),
        ('[store.p]\nengine = "postgres"\n', "needs dsn"),
        ('[store.p]\nengine = "postgres"\ndsn = "x"\ntable = "a b"\n', "table"),
        ('[store.p]\nengine = "postgres"\ndsn = "x"\npool_max = 1\n', "pool_max"),
    ],
)
def test_bad_store_configurations(tmp_path, text, message):
    with pytest.raises(BadRequest, match=message):
        config_of(text, tmp_path)


def two_stores(tmp_path: Path) -> Config:
    return Config.model_validate(
        {
            "store": {
                "main": {"engine": "leveldb", "path": str(tmp_path / "main")},
                "other": {"engine": "leveldb", "path": str(tmp_path / "other")},
            },
            "backend": {"default": {"store": "main"}, "keyvalue": {"store": "other"}},
        }
    )


def open_manager(cfg: Config) -> RepoManager:
    return RepoManager(Stores.open(cfg))


def test_instances_go_to_their_assigned_store_and_stay_there(tmp_path):
    cfg = two_stores(tmp_path)
    manager = open_manager(cfg)
    repo = manager.new_repo("r")
    kv = manager.new_instance(repo, repo.dag.root, {"typename": "keyvalue", "dataname": "kv"})
    g = manager.new_instance(repo, repo.dag.root, {"typename": "uint8blk", "dataname": "g"})
    assert manager.engine is manager.stores.engines["main"]
    assert kv.store.engine is manager.stores.engines["other"]
    assert g.store.engine is manager.stores.engines["main"]
    anc = repo.dag.ancestry(repo.dag.root_version)
    kv.context(anc).put(b"k", b"v")
    iid = kv.meta.instance_id
    prefix = keys.instance_prefix(iid)
    assert list(manager.stores.engines["main"].scan(prefix, keys.instance_prefix(iid + 1))) == []
    manager.stores.close()

    # The assignment changes: the existing instance keeps its recorded store; new ones follow it.
    cfg.backend.pop("keyvalue")
    manager = open_manager(cfg)
    repo = manager.resolve(repo.root_uuid)[0]
    kv = repo.instance("kv")
    assert kv.store.engine is manager.stores.engines["other"]
    assert kv.context(repo.dag.ancestry(repo.dag.root_version)).get(b"k") == b"v"
    kv2 = manager.new_instance(repo, repo.dag.root, {"typename": "keyvalue", "dataname": "kv2"})
    assert kv2.store.engine is manager.stores.engines["main"]
    assert kv2.meta.instance_id != iid

    # Deleting the instance removes its data from its own store.
    manager.delete_instance(repo, "kv")
    manager.wait_for_deletions(10)
    assert list(manager.stores.engines["other"].scan(prefix, keys.instance_prefix(iid + 1))) == []
    manager.stores.close()


def test_instance_whose_store_is_no_longer_configured_refuses_start(tmp_path):
    cfg = two_stores(tmp_path)
    manager = open_manager(cfg)
    repo = manager.new_repo("r")
    manager.new_instance(repo, repo.dag.root, {"typename": "keyvalue", "dataname": "kv"})
    manager.stores.close()
    del cfg.store["other"]
    cfg.backend.pop("keyvalue")
    stores = Stores.open(cfg)
    with pytest.raises(DVIDError, match=r'"kv" .* kept in store "other", which is not configured'):
        RepoManager(stores)
    stores.close()


def test_instance_ids_are_unique_across_stores(tmp_path):
    a, b = MemoryEngine(), MemoryEngine()
    b.put(keys.instance_prefix(1) + b"x", b"")  # data of an id no metadata knows of
    manager = RepoManager(Stores({"a": a, "b": b}, default="a"))
    repo = manager.new_repo("r")
    inst = manager.new_instance(repo, repo.dag.root, {"typename": "keyvalue", "dataname": "kv"})
    assert inst.meta.instance_id != 1


def test_one_engine_is_the_metadata_and_the_data_store(tmp_path):
    eng = LevelDBEngine(tmp_path / "db")
    manager = RepoManager(Stores.single(eng))
    repo = manager.new_repo("r")
    kv = manager.new_instance(repo, repo.dag.root, {"typename": "keyvalue", "dataname": "kv"})
    assert manager.engine is eng and kv.store.engine is eng
    assert manager.stores.describe() == eng.describe()
    eng.close()


def test_max_open_files_bounds_the_tables_leveldb_keeps_mapped(tmp_path):
    """LevelDB memory-maps the table files it keeps open (their pages count in the server's RSS):
    MaxOpenFiles bounds them to MaxOpenFiles - 10 however many tables the store holds."""
    from dvid.config import StoreSettings
    from dvid.storage.stores import open_engine

    store = tmp_path / "db"
    engine = open_engine(StoreSettings(path=str(store), WriteBufferSize=1, MaxOpenFiles=74))
    value = bytes(range(256)) * 64  # 16 KiB; LevelDB's compression is off, so 8,000 fill ~128 MiB
    keys_ = [b"k%06d" % ((i * 7919) % 8000) for i in range(8000)]
    try:
        for k in keys_:
            engine.put(k, value)
        for k in sorted(keys_):  # every table is opened (and mapped) at least once
            assert engine.get(k) == value
        tables = list(store.glob("*.ldb"))
        with open("/proc/self/maps") as f:
            mapped = {line.split()[-1] for line in f if str(store) in line and line.rstrip().endswith(".ldb")}
    finally:
        engine.close()
    assert len(tables) > 64  # more tables than the bound, or the test would prove nothing
    assert 0 < len(mapped) <= 64
