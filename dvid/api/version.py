"""Version handles: a repo node by full UUID, its instances, and the DAG operations returning handles."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from dvid.api.annotation import Annotations
from dvid.api.errors import NotFound
from dvid.api.instance import Instance
from dvid.api.keyvalue import KeyValue
from dvid.api.labels import LabelBlk, LabelMap, LabelVol
from dvid.api.neuronjson import NeuronJSON
from dvid.api.volume import Volume

if TYPE_CHECKING:
    from dvid.api.server import Server, TypedClient

_STEPS = re.compile(r"^(?P<name>.*?)(?:~(?P<steps>\d+))?$")

#: The handle class of each datatype; other types get a plain :class:`Instance`.
WRAPPERS: dict[str, type[Instance]] = {
    **dict.fromkeys(("uint8blk", "uint16blk", "uint32blk", "uint64blk", "float32blk", "rgba8blk"), Volume),
    "labelblk": LabelBlk,
    "labelmap": LabelMap,
    "labelvol": LabelVol,
    "keyvalue": KeyValue,
    "annotation": Annotations,
    "neuronjson": NeuronJSON,
}


def resolve_reference(client: TypedClient, ref: str) -> str:
    """The full UUID a reference names (UUID, prefix, ``:branch``, ``:branch~N``, ``uuid:branch``).

    The server checks the reference first (``GET /api/repo/<ref>/info`` answers 400 or 404 with its
    message for a bad one); the UUID is then read from the repo's DAG or the branch's version list.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError(f"a version reference is a UUID, a UUID prefix or ':branch', got {ref!r}")
    info = client.repo_info(ref)
    prefix, _, branch = ref.partition(":")
    if branch:
        m = _STEPS.match(branch)
        assert m is not None  # the pattern matches every string
        chain = client.branch_versions(ref, m.group("name") or "master")
        steps = int(m.group("steps") or 0)
        if steps >= len(chain):
            raise NotFound(f"{ref!r}: branch has only {len(chain)} versions", status=404)
        return str(chain[steps])
    matches = [uuid for uuid in info["DAG"]["Nodes"] if uuid.startswith(prefix)]
    if len(matches) != 1:
        raise NotFound(f"{ref!r} matches {len(matches)} versions of its repo", status=404)
    return matches[0]


def _setting(value: Any) -> str:
    """A creation setting as the string DVID expects (tuples joined by commas, booleans lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


class Version:
    """One version (node) of a repo, by full UUID. ``version[name]`` is a handle on an instance
    (:class:`~dvid.api.volume.Volume`, :class:`~dvid.api.labels.LabelMap`,
    :class:`~dvid.api.keyvalue.KeyValue`...). DAG operations return the handle of the version they
    make: ``child = node.commit("done").newversion("next")``."""

    def __init__(self, server: Server, uuid: str) -> None:
        self.server = server
        self.uuid = uuid

    def __repr__(self) -> str:
        return f"Version({self.server.url!r}, {self.uuid!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and (other.server.url, other.uuid) == (self.server.url, self.uuid)

    def __hash__(self) -> int:
        return hash((self.server.url, self.uuid))

    @property
    def client(self) -> TypedClient:
        return self.server.client

    # ---- instances ---------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        typename = self.client.instance_info(self.uuid, name)["Base"]["TypeName"]
        return WRAPPERS.get(typename, Instance)(self, name, typename)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.instances()

    def instances(self) -> dict[str, str]:
        """``{instance name: type name}`` of the repo's instances."""
        data = self.client.repo_info(self.uuid).get("DataInstances") or {}
        return {name: d["Base"]["TypeName"] for name, d in sorted(data.items())}

    def create(self, typename: str, name: str, **settings: Any) -> Any:
        """Create an instance (settings as keywords: ``BlockSize=(64, 64, 64)``, ``Versioned=False``)
        and return its handle."""
        self.client.new_instance(self.uuid, typename, name, {k: _setting(v) for k, v in settings.items()})
        return self[name]

    # ---- the node ----------------------------------------------------------------------------
    @property
    def locked(self) -> bool:
        """True once committed."""
        return self.client.is_locked(self.uuid)

    @property
    def note(self) -> str:
        return self.client.note(self.uuid)

    @note.setter
    def note(self, text: str) -> None:
        self.client.set_note(self.uuid, text)

    @property
    def log(self) -> list[str]:
        return self.client.log(self.uuid)

    def repo_info(self) -> dict[str, Any]:
        """The repo's info (``Root``, ``Alias``, ``DataInstances``, ``DAG``...)."""
        return self.client.repo_info(self.uuid)

    @property
    def parents(self) -> list[Version]:
        nodes = self.repo_info()["DAG"]["Nodes"]
        by_id = {n["VersionID"]: uuid for uuid, n in nodes.items()}
        return [Version(self.server, by_id[v]) for v in nodes[self.uuid]["Parents"]]

    # ---- DAG operations ----------------------------------------------------------------------
    def commit(self, note: str = "", log: Iterable[str] = ()) -> Version:
        """Lock this version; returns this (now committed) version."""
        self.client.commit(self.uuid, note, list(log))
        return self

    def newversion(self, note: str = "") -> Version:
        """An open child on this version's branch (this version must be committed)."""
        return Version(self.server, self.client.newversion(self.uuid, note))

    def branch(self, name: str, note: str = "") -> Version:
        """An open child starting branch ``name``."""
        return Version(self.server, self.client.branch(self.uuid, name, note))

    def tag(self, name: str, note: str = "") -> Version:
        """A committed child whose UUID is ``name``."""
        return Version(self.server, self.client.tag(self.uuid, name, note))

    def merge(self, *others: Version | str, note: str = "") -> Version:
        """An open child of this and the ``others`` (all committed), conflict-free."""
        if not others:
            raise ValueError("merge needs at least one other version")
        parents = [self.uuid, *(o.uuid if isinstance(o, Version) else str(o) for o in others)]
        return Version(self.server, self.client.merge(parents, note))

    def resolve(self, *others: Version | str, data: Iterable[str], note: str = "") -> Version:
        """A merge where earlier parents (this one first) win the conflicting keys of ``data``."""
        parents = [self.uuid, *(o.uuid if isinstance(o, Version) else str(o) for o in others)]
        return Version(self.server, self.client.resolve(parents, list(data), note))

    def update_settings(self, name: str, settings: Mapping[str, Any]) -> None:
        """POST the instance's ``info`` (e.g. labelmap's ``{"MaxDownresLevel": 2}``)."""
        self.client.instance_request("POST", self.uuid, name, "info", json=dict(settings))
