"""A repo (a version DAG plus named data instances) and the access its instances get to it."""

from __future__ import annotations

import re
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dvid.dag.ancestry import Ancestry
from dvid.dag.dag import VersionDAG, now_rfc3339
from dvid.datatype.base import Datatype
from dvid.errors import BadRequest, NotFound
from dvid.jobs import JobRegistry

if TYPE_CHECKING:
    from dvid.repos import RepoManager

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def new_uuid() -> str:
    return uuidlib.uuid4().hex


def validate_assigned_uuid(value: Any) -> str:
    """A client-chosen node UUID must be 32 hex characters (lowercase is stored)."""
    if not isinstance(value, str) or not _HEX32.match(value.lower()):
        raise BadRequest(f"UUID must be 32 character hexadecimal string, got {value!r}")
    return value.lower()


@dataclass
class Repo:
    """One repo: a version DAG plus named data instances."""

    repo_id: int
    dag: VersionDAG
    alias: str = ""
    description: str = ""
    passcode: str = ""
    log: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=now_rfc3339)
    updated: str = field(default_factory=now_rfc3339)
    instances: dict[str, Datatype] = field(default_factory=dict)
    mutation_id: int = 1_000_000_000
    saved_mutation_id: int = 1_000_000_000
    #: data UUID -> name of the store holding the instance's data
    instance_stores: dict[str, str] = field(default_factory=dict)

    @property
    def root_uuid(self) -> str:
        return self.dag.root.uuid

    def touch(self) -> None:
        self.updated = now_rfc3339()

    def instance(self, name: str) -> Datatype:
        try:
            return self.instances[name]
        except KeyError:
            raise NotFound(
                f"invalid data instance name {name!r}: no such instance in repo {self.root_uuid}"
            ) from None

    def info(self) -> dict[str, Any]:
        """DVID's repo info JSON (field names and nesting exactly as DVID)."""
        return {
            "Root": self.root_uuid,
            "Alias": self.alias,
            "Description": self.description,
            "Log": list(self.log),
            "Properties": dict(self.properties),
            "DataInstances": {name: inst.info() for name, inst in sorted(self.instances.items())},
            "DAG": self.dag.to_json(),
            "MutationID": self.mutation_id,
            "SavedMutationID": self.saved_mutation_id,
            "Created": self.created,
            "Updated": self.updated,
        }

    def to_record(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "alias": self.alias,
            "description": self.description,
            "passcode": self.passcode,
            "log": self.log,
            "properties": self.properties,
            "created": self.created,
            "updated": self.updated,
            "dag": self.dag.to_record(),
            "instances": [inst.meta.to_record() for inst in self.instances.values()],
            "instance_stores": {
                inst.meta.data_uuid: self.instance_stores[inst.meta.data_uuid]
                for inst in self.instances.values()
                if inst.meta.data_uuid in self.instance_stores
            },
        }


class InstanceRepoAccess:
    """The RepoAccess an instance gets: its repo's other instances, through the manager."""

    def __init__(self, manager: RepoManager, repo: Repo) -> None:
        self._manager = manager
        self._repo = repo

    def sibling(self, name: str) -> Datatype:
        return self._repo.instance(name)

    def create_sibling(self, config: dict[str, Any], node_uuid: str) -> Datatype:
        return self._manager.new_instance(self._repo, self._repo.dag.node_by_uuid(node_uuid), config)

    def siblings(self) -> list[Datatype]:
        return list(self._repo.instances.values())

    def root_ancestry(self) -> Ancestry:
        return self._repo.dag.ancestry(self._repo.dag.root_version)

    def new_mutation_id(self) -> int:
        return self._manager.new_mutation_id(self._repo)

    def version_uuid(self, version: int) -> str:
        return self._repo.dag.nodes[version].uuid

    def first_parent(self, version: int) -> int | None:
        parents = self._repo.dag.nodes[version].parents
        return parents[0] if parents else None

    @property
    def jobs(self) -> JobRegistry:
        return self._manager.jobs

    def version_ancestry(self, uuid_prefix: str) -> Ancestry:
        dag = self._repo.dag
        prefix = uuid_prefix.strip().lower()
        found = [u for u in dag.by_uuid if u.startswith(prefix)] if prefix else []
        if len(found) != 1:
            raise BadRequest(f'UUID "{uuid_prefix}" does not name exactly one version of this repo')
        return dag.ancestry(dag.node_by_uuid(found[0]).version)
