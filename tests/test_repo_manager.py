"""RepoManager: persistence across restarts, id allocation, mutation ids, background deletion."""

from __future__ import annotations

import struct
import threading

import pytest
import requests

from dvid.errors import Conflict, NotFound
from dvid.repos import MUTATION_ID_STRIDE, PENDING_DELETE_CLASS, RepoManager
from dvid.storage import keys
from dvid.storage.leveldb import LevelDBEngine
from dvid.storage.memory import MemoryEngine
from dvid.storage.stores import Stores


def _populated(manager: RepoManager):
    repo = manager.new_repo("alias", "desc")
    root = repo.dag.root
    manager.new_instance(repo, root, {"typename": "keyvalue", "dataname": "kv", "Tags": "a=b"})
    manager.new_instance(repo, root, {"typename": "keyvalue", "dataname": "flat", "versioned": "false"})
    manager.commit(repo, root, "root note", ["committed"])
    child = manager.new_version(repo, root, "child note")
    manager.branch(repo, root, "side", "side note")
    manager.tag(repo, root, "v1", "")
    manager.add_repo_log(repo, ["hello"])
    return repo, child


def test_restart_sees_everything(tmp_path):
    engine = LevelDBEngine(tmp_path / "db")
    manager = RepoManager(Stores.single(engine))
    repo, child = _populated(manager)
    ctx = repo.instances["kv"].context(repo.dag.ancestry(child.version))
    ctx.put(b"\xb1\x01key\x00", b"value")
    before = repo.info()
    before_versions = set(repo.dag.nodes)
    engine.close()

    engine = LevelDBEngine(tmp_path / "db")
    manager = RepoManager(Stores.single(engine))
    reloaded = manager.resolve(repo.root_uuid)[0]
    after = reloaded.info()
    for inst in ("kv", "flat"):  # KVStore names the same path
        assert after["DataInstances"][inst] == before["DataInstances"][inst]
    # as in DVID, mutation ids resume at the last saved stride after a restart
    assert after.pop("MutationID") == before["SavedMutationID"]
    before.pop("MutationID")
    assert after == before
    ctx = reloaded.instances["kv"].context(reloaded.dag.ancestry(child.version))
    assert ctx.get(b"\xb1\x01key\x00") == b"value"
    # ids continue past what was used before the restart
    manager.commit(reloaded, reloaded.dag.node(child.version))
    grandchild = manager.new_version(reloaded, reloaded.dag.node(child.version))
    assert grandchild.version == max(reloaded.dag.nodes)
    assert grandchild.version > max(v for v in before_versions)
    second = manager.new_instance(reloaded, reloaded.dag.root, {"typename": "keyvalue", "dataname": "third"})
    used = {i.meta.instance_id for i in reloaded.instances.values() if i is not second}
    assert second.meta.instance_id not in used
    engine.close()


def test_versions_are_server_wide_and_increasing():
    manager = RepoManager(Stores.single(MemoryEngine()))
    a = manager.new_repo()
    b = manager.new_repo()
    assert b.dag.root_version > a.dag.root_version
    manager.commit(a, a.dag.root)
    child = manager.new_version(a, a.dag.root)
    assert child.version > b.dag.root_version


def test_mutation_ids_persist_in_strides(tmp_path):
    engine = LevelDBEngine(tmp_path / "db")
    manager = RepoManager(Stores.single(engine), min_mutation_id_start=2_000_000_000)
    repo = manager.new_repo()
    first = manager.new_mutation_id(repo)
    assert first == 2_000_000_000
    ids = [manager.new_mutation_id(repo) for _ in range(MUTATION_ID_STRIDE + 5)]
    assert ids == list(range(first + 1, first + 1 + MUTATION_ID_STRIDE + 5))
    saved = repo.saved_mutation_id
    stored = engine.get(keys.metadata_key(7, keys.u32be(repo.repo_id)))
    assert struct.unpack("<Q", stored)[0] == saved
    engine.close()
    manager = RepoManager(Stores.single(LevelDBEngine(tmp_path / "db")))
    again = manager.resolve(repo.root_uuid)[0]
    nxt = manager.new_mutation_id(again)
    assert nxt >= ids[-1] + 1 and nxt == saved
    manager.engine.close()


def test_interrupted_instance_deletion_resumes_on_start(tmp_path):
    engine = LevelDBEngine(tmp_path / "db")
    manager = RepoManager(Stores.single(engine))
    repo = manager.new_repo()
    inst = manager.new_instance(repo, repo.dag.root, {"typename": "keyvalue", "dataname": "kv"})
    iid = inst.meta.instance_id
    ctx = inst.context(repo.dag.ancestry(repo.dag.root_version))
    with ctx.batch() as batch:
        for i in range(100):
            batch.put(b"\xb1\x01" + str(i).encode() + b"\x00", b"v")
    # simulate a crash after the metadata was removed but before the data was
    engine.put(keys.metadata_key(PENDING_DELETE_CLASS, keys.u32be(iid)), b"")
    engine.close()
    manager = RepoManager(Stores.single(LevelDBEngine(tmp_path / "db")))
    manager.wait_for_deletions(10)
    prefix = keys.instance_prefix(iid)
    assert list(manager.engine.scan(prefix, keys.instance_prefix(iid + 1))) == []
    assert manager.pending_deletions() == 0
    manager.engine.close()


def test_instance_ids_skip_ids_with_leftover_data():
    engine = MemoryEngine()
    engine.put(keys.data_key(1, b"\xb1\x01x\x00", 1), b"orphan")
    manager = RepoManager(Stores.single(engine))
    repo = manager.new_repo()
    inst = manager.new_instance(repo, repo.dag.root, {"typename": "keyvalue", "dataname": "kv"})
    assert inst.meta.instance_id == 2


def test_name_and_uuid_collisions():
    manager = RepoManager(Stores.single(MemoryEngine()))
    repo = manager.new_repo(root="0" * 32)
    with pytest.raises(Conflict):
        manager.new_repo(root="0" * 32)
    manager.commit(repo, repo.dag.root)
    with pytest.raises(Conflict):
        manager.new_version(repo, repo.dag.root, uuid="0" * 32)
    with pytest.raises(NotFound):
        manager.resolve("1234")


def test_lookup_finds_exact_uuids_only():
    manager = RepoManager(Stores.single(MemoryEngine()))
    repo = manager.new_repo(root="ab" * 16)
    manager.commit(repo, repo.dag.root)
    child = manager.new_version(repo, repo.dag.root, uuid="cd" * 16)
    assert manager.lookup("cd" * 16) == (repo, child)
    assert manager.lookup("ab" * 16) == (repo, repo.dag.root)
    assert manager.lookup("cd") is None  # a prefix is for resolve
    assert manager.lookup("ef" * 16) is None


def test_locked_holds_off_other_threads_and_is_reentrant():
    manager = RepoManager(Stores.single(MemoryEngine()))
    done = threading.Event()

    def create() -> None:
        manager.new_repo("other thread")
        done.set()

    with manager.locked():
        repo = manager.new_repo("same thread")  # re-entrant: the holder may still change things
        worker = threading.Thread(target=create)
        worker.start()
        assert not done.wait(0.2)
        assert [r.alias for r in manager.iter_repos()] == ["same thread"]
    worker.join(10)
    assert done.is_set()
    assert [r.alias for r in manager.iter_repos()] == ["same thread", "other thread"]
    assert repo.repo_id == 1


def test_http_restart_keeps_repos(server_factory, tmp_path):
    store = tmp_path / "shared-store"
    srv = server_factory(store_dir=store)
    root = srv.new_repo("persist")
    srv.new_instance(root, "keyvalue", "kv")
    srv.commit(root, "done")
    info = requests.get(srv.api(f"repo/{root}/info"), timeout=5).json()
    srv.stop()
    again = server_factory(store_dir=store)
    after = requests.get(again.api(f"repo/{root}/info"), timeout=5).json()
    assert after.pop("MutationID") == info.pop("SavedMutationID") == after.pop("SavedMutationID")
    info.pop("MutationID")
    assert after == info


def test_repo_log_names_new_instances_with_their_settings_in_json():
    manager = RepoManager(Stores.single(MemoryEngine()))
    repo = manager.new_repo("alias", "desc")
    root = repo.dag.root
    manager.new_instance(repo, root, {"typename": "keyvalue", "dataname": "notes"})
    manager.new_instance(
        repo, root, {"typename": "uint8blk", "dataname": "gray", "BlockSize": "64,64,64", "versioned": False}
    )
    lines = [entry.split("  ", 1)[1] for entry in repo.info()["Log"]]  # after the timestamp
    assert lines == [
        'New data instance "notes" of type "keyvalue"',
        'New data instance "gray" of type "uint8blk" with settings'
        ' {"BlockSize": "64,64,64", "versioned": false}',
    ]
