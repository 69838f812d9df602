"""The Datatype base class: metadata, creation settings, help text and the route table.

A datatype subclass declares ``type_name``, ``type_url``, ``type_version``, ``help_text``, an
optional pydantic ``Settings`` model for its creation settings, and ``routes``. Each route names
an async handler method taking an :class:`InstanceRequest`. The server resolves the version,
enforces locks and read-only mode using ``Route.mutates``, and calls the handler.
"""

from __future__ import annotations

import asyncio
import uuid as uuidlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from dvid.dag.ancestry import Ancestry
from dvid.datatype.common import blobs, diff
from dvid.datatype.common import sync as sync_mod
from dvid.datatype.common.envelope import Compression
from dvid.datatype.common.request import InstanceRequest, json_response, text_response
from dvid.datatype.common.route import BINARY, JSON, TEXT, Param, Route, flag, query
from dvid.errors import BadRequest
from dvid.jobs import Job, JobRegistry
from dvid.storage.versioned import DataContext, VersionedStore


@dataclass
class InstanceMeta:
    """Everything persisted about one data instance (in its repo's metadata record)."""

    name: str
    type_name: str
    data_uuid: str
    instance_id: int
    repo_uuid: str
    versioned: bool = True
    compression: list[int] = field(default_factory=lambda: Compression().to_record())
    tags: dict[str, str] = field(default_factory=dict)
    syncs: list[str] = field(default_factory=list)  # data UUIDs of synced instances
    properties: dict[str, Any] = field(default_factory=dict)  # type-specific

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> InstanceMeta:
        return cls(**record)


class RepoAccess(Protocol):
    """What an instance may do in its repo: find and create sibling instances."""

    def sibling(self, name: str) -> Datatype:
        """The instance called ``name`` in the same repo (NotFound if none)."""
        ...

    def create_sibling(self, config: dict[str, Any], node_uuid: str) -> Datatype:
        """Create an instance in the same repo from DVID's creation JSON, as if POSTed at ``node_uuid``."""
        ...

    def siblings(self) -> list[Datatype]:
        """Every instance of the repo (this one included)."""
        ...

    def root_ancestry(self) -> Ancestry:
        """The ancestry of the repo's root version (where repo-wide values are kept)."""
        ...

    def version_ancestry(self, uuid_prefix: str) -> Ancestry:
        """The ancestry of the version of this repo a UUID (or unique prefix) names (BadRequest if
        it names none or several)."""
        ...

    def new_mutation_id(self) -> int:
        """The repo's next mutation id (one counter per repo, shared by its instances, as DVID)."""
        ...

    def version_uuid(self, version: int) -> str:
        """The UUID of one of the repo's versions."""
        ...

    def first_parent(self, version: int) -> int | None:
        """A version's first parent (None for the root)."""
        ...

    @property
    def jobs(self) -> JobRegistry:
        """The server's registry of long-running jobs (listed at ``GET /api/server/jobs``)."""
        ...


#: Where the jobs of an instance outside any repo (tools, tests) are kept: listed nowhere.
_UNLISTED_JOBS = JobRegistry()


class NoSettings(BaseModel):
    """Datatypes without creation settings of their own."""

    model_config = ConfigDict(extra="ignore")


def parse_tags_setting(value: str) -> dict[str, str]:
    """The ``Tags`` creation setting: ``"k1=v1,k2=v2"``."""
    tags: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in value.split(","))):
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise BadRequest(f"Tags setting must be 'key=value' pairs separated by commas, got {item!r}")
        tags[key] = val
    return tags


BLOB_REF = Param(
    "reference",
    description="A blob's reference: URL-safe base64 of its FNV-128 hash",
    pattern=r"[A-Za-z0-9_=-]{24}",
    example="bCInLge7AUJiuCF1YpXFjQ==",
)


class Datatype:
    """Base of every datatype; an instance of a subclass serves one data instance."""

    type_name: ClassVar[str]
    type_url: ClassVar[str]
    type_version: ClassVar[str]
    help_text: ClassVar[str]
    Settings: ClassVar[type[BaseModel]] = NoSettings
    #: The ``Compression`` of stored values when the creation settings name none (None: lz4).
    default_compression: ClassVar[str | None] = None
    #: Type names this datatype can sync with (empty: no ``sync`` endpoint).
    #: What a sync target must be (protocols of dvid.datatype.common.sync; empty: no ``sync`` endpoint).
    sync_requires: ClassVar[tuple[type, ...]] = ()
    #: The listener protocols this type is called with by the instances it syncs from.
    listens: ClassVar[tuple[type, ...]] = ()
    routes: ClassVar[tuple[Route, ...]] = ()

    _common_routes: ClassVar[tuple[Route, ...]] = (
        Route(
            "help",
            ("GET", "HEAD"),
            "handle_help",
            mutates=False,
            summary="This datatype's API reference",
            produces=(TEXT,),
        ),
        Route("info", ("GET", "HEAD"), "handle_info", mutates=False, summary="The instance's metadata"),
        Route("tags", ("GET", "HEAD"), "handle_get_tags", mutates=False, summary="The instance's tags"),
        Route(
            "tags",
            ("POST",),
            "handle_post_tags",
            summary="Add or replace tags",
            query=(flag("replace", "Replace all tags instead of adding"),),
            consumes=(JSON,),
            produces=(),
        ),
        Route("diff", ("GET", "HEAD"), "handle_diff", mutates=False,
              summary="What changed from another version of the repo to this one",
              args=(Param("since", description="The earlier (or any other) version: a UUID or unique prefix",
                          pattern="[0-9a-fA-F]{1,32}", example="0123"),),
              query=(query("limit", "integer", f"Changes listed at most (default {diff.DEFAULT_LIMIT},"
                           f" at most {diff.MAX_LIMIT}); the counts cover all", minimum=0,
                           maximum=diff.MAX_LIMIT),)),
        Route("blobstore", ("GET", "HEAD"), "handle_get_blob", mutates=False,
              summary="A blob of the blobstore by its reference", args=(BLOB_REF,), produces=(BINARY,),
              statuses=(404,)),
        # DVID does not lock-check blob writes: content-addressed and unversioned
        Route("blobstore", ("POST",), "handle_post_blob", mutates=False,
              summary="Store a blob; answers {\"reference\": ref}", consumes=(BINARY,), statuses=(413,)),
    )  # fmt: skip
    _sync_route: ClassVar[Route] = Route(
        "sync",
        ("POST",),
        "handle_post_sync",
        mutates=False,
        summary="Receive changes from other instances",
        query=(flag("replace", "Replace the syncs instead of adding"),),
        consumes=(JSON,),
        produces=(),
    )
    #: endpoint -> method -> route, built once per class (see ``__init_subclass__``).
    route_table: ClassVar[dict[str, dict[str, Route]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Build the class's route table and check that every route names a handler method, so a
        misspelt handler fails at import, not on a request."""
        super().__init_subclass__(**kwargs)
        table: dict[str, dict[str, Route]] = {}
        sync_mod.check_listener_class(cls)
        sync = (cls._sync_route,) if cls.sync_requires else ()
        for route in (*cls._common_routes, *sync, *cls.routes):
            if not callable(getattr(cls, route.handler, None)):
                raise TypeError(f"{cls.__name__}: route {route.endpoint!r} names no method {route.handler!r}")
            for method in route.methods:
                if method in table.get(route.endpoint, {}):
                    raise TypeError(f"{cls.__name__}: {method} {route.endpoint!r} is routed twice")
                table.setdefault(route.endpoint, {})[method] = route
        cls.route_table = table

    @classmethod
    def all_routes(cls) -> list[Route]:
        """Every route of the type, each once, in declaration order."""
        seen: dict[int, Route] = {}
        for by_method in cls.route_table.values():
            for route in by_method.values():
                seen.setdefault(id(route), route)
        return list(seen.values())

    def __init__(
        self,
        meta: InstanceMeta,
        store: VersionedStore,
        *,
        save: Callable[[], None],
        instance_names: Callable[[list[str]], list[str]],
        repo_access: RepoAccess | None = None,
    ) -> None:
        self.meta = meta
        self.store = store
        self._save = save
        self._instance_names = instance_names
        self.repo_access = repo_access
        self.compression = Compression.from_record(meta.compression)
        self.settings = self.Settings.model_validate(meta.properties.get("settings", {}))

    # ---- creation ----------------------------------------------------------------------------
    @classmethod
    def validate_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """Check the type-specific creation settings (keys lower-cased, string values).

        Returns the validated settings to persist as ``properties["settings"]``.
        """
        fields = {name.lower(): name for name in cls.Settings.model_fields}
        for f_info in cls.Settings.model_fields.values():
            if f_info.alias:
                fields[f_info.alias.lower()] = f_info.alias
        data = {fields[k]: v for k, v in settings.items() if k in fields}
        try:
            model = cls.Settings.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise BadRequest(f"bad settings for {cls.type_name}: {problems}") from None
        return model.model_dump(mode="json")

    @staticmethod
    def new_data_uuid() -> str:
        return uuidlib.uuid4().hex

    # ---- identity ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def versioned(self) -> bool:
        return self.meta.versioned

    def save(self) -> None:
        """Persist this instance's metadata (with its repo's record)."""
        self._save()

    def job(
        self, kind: str, description: str, unit: str = "", total: int | None = None
    ) -> AbstractContextManager[Job]:
        """A long-running job of this instance, listed at ``GET /api/server/jobs`` while it runs."""
        registry = self.repo_access.jobs if self.repo_access is not None else _UNLISTED_JOBS
        return registry.run(kind, f"{self.name}: {description}", unit, total)

    def context(self, ancestry: Ancestry) -> DataContext:
        """The data of this instance seen at a version."""
        return self.store.context(self.meta.instance_id, ancestry)

    def context_at(self, ancestry: Ancestry) -> DataContext:
        """This instance's data at the version ``ancestry`` leads from; an unversioned instance's
        at the repo root, whatever the version."""
        if not self.versioned and self.repo_access is not None:
            return self.context(self.repo_access.root_ancestry())
        return self.context(ancestry)

    def root_context(self, fallback: Ancestry) -> DataContext:
        """This instance's data at the repo root (repo-wide values), or at ``fallback`` without a repo."""
        if self.repo_access is None:
            return self.context(fallback)
        return self.context(self.repo_access.root_ancestry())

    # ---- info --------------------------------------------------------------------------------
    def base_info(self) -> dict[str, Any]:
        return {
            "TypeName": self.type_name,
            "TypeURL": self.type_url,
            "TypeVersion": self.type_version,
            "DataUUID": self.meta.data_uuid,
            "Name": self.meta.name,
            "RepoUUID": self.meta.repo_uuid,
            "Compression": self.compression.describe(),
            "Checksum": self.compression.describe_checksum(),
            "Syncs": self._instance_names(self.meta.syncs),
            "Versioned": self.meta.versioned,
            "KVStore": self.store.engine.describe(),
            "LogStore": "",
            "Tags": dict(self.meta.tags),
        }

    def extended_info(self) -> dict[str, Any]:
        """Type-specific ``Extended`` info; subclasses override."""
        return {}

    def info(self) -> dict[str, Any]:
        return {"Base": self.base_info(), "Extended": self.extended_info()}

    # ---- routing -----------------------------------------------------------------------------
    def find_route(self, endpoint: str, method: str) -> Route | dict[str, Route] | None:
        """The route for ``endpoint`` and ``method``; the endpoint's routes if only the method is wrong;
        None if the endpoint is unknown."""
        by_method = self.route_table.get(endpoint)
        if by_method is None:
            return None
        return by_method.get(method, by_method)

    def handler_for(self, route: Route) -> Callable[[InstanceRequest], Any]:
        return getattr(self, route.handler)

    # ---- common handlers ---------------------------------------------------------------------
    async def handle_help(self, req: InstanceRequest) -> web.StreamResponse:
        return text_response(self.help_text)

    async def handle_info(self, req: InstanceRequest) -> web.StreamResponse:
        return json_response(self.info())

    async def handle_get_blob(self, req: InstanceRequest) -> web.StreamResponse:
        value = await req.small(blobs.get_blob, self.store.engine, req.arg(0, "a blob reference"))
        return web.Response(body=value, content_type="application/octet-stream")

    async def handle_post_blob(self, req: InstanceRequest) -> web.StreamResponse:
        blobs.check_size(req.body_length)
        value = await req.body()
        return json_response({"reference": await asyncio.to_thread(blobs.put_blob, self.store.engine, value)})

    #: Whether ``diff`` reads both values of a key written again and drops byte-identical ones
    #: (block types do not: a block written again is listed as touched).
    diff_compares_values: ClassVar[bool] = True

    def describe_change(
        self, tk: bytes, change: str, old: bytes | None, new: bytes | None
    ) -> list[dict[str, Any]]:
        """``diff``'s entries for one changed key (none for keys that only derive from others);
        subclasses name their keys (a key, a block, an element)."""
        return [{"change": change, "tkey": tk.hex()}]

    async def handle_diff(self, req: InstanceRequest) -> web.StreamResponse:
        limit = req.query_int("limit", diff.DEFAULT_LIMIT)
        if limit is None or not 0 <= limit <= diff.MAX_LIMIT:
            raise BadRequest(f"limit must be 0 to {diff.MAX_LIMIT}, got {req.query.get('limit')!r}")
        if self.repo_access is None:
            raise BadRequest("diff needs the repo of this instance")
        prefix = req.arg(0, "the version to compare with (a UUID)")
        other = self.repo_access.version_ancestry(prefix)
        since_uuid = self.repo_access.version_uuid(other.version)
        since = self.context_at(other).ancestry  # the root's for an unversioned instance
        with self.job("diff", f"changes {since_uuid[:8]} -> {req.uuid[:8]}", "keys"):
            result = await asyncio.to_thread(diff.instance_diff, self, req.ctx, since, limit)
        return json_response({"from": since_uuid, "to": req.uuid, "instance": self.name,
                              "type": self.type_name, **result})  # fmt: skip

    async def handle_get_tags(self, req: InstanceRequest) -> web.StreamResponse:
        return json_response({"Tags": dict(self.meta.tags)})

    async def handle_post_tags(self, req: InstanceRequest) -> web.StreamResponse:
        body = await req.json_object()
        bad = [k for k, v in body.items() if not isinstance(v, str)]
        if bad:
            raise BadRequest(f"tag values must be strings; not for {', '.join(map(repr, bad))}")
        if req.query_bool("replace"):
            self.meta.tags = dict(body)
        else:
            self.meta.tags.update(body)
        self.save()
        return web.Response()

    # ---- syncs -------------------------------------------------------------------------------
    def check_sync_target(self, target: Datatype) -> None:
        """Refuse a sync partner of an allowed type that does not fit (subclasses override)."""

    async def handle_post_sync(self, req: InstanceRequest) -> web.StreamResponse:
        """``POST .../sync[?replace=true]`` with ``{"sync": "name1,name2"}``: this instance receives
        changes from the named instances (stored as their data UUIDs)."""
        body = await req.json_object()
        names_text = body.get("sync")
        if not isinstance(names_text, str):
            raise BadRequest('sync needs a JSON object {"sync": "name1,name2"} with a string value')
        names = [n.strip() for n in names_text.split(",") if n.strip()]
        if names and self.repo_access is None:
            raise BadRequest("syncs need the repo of this instance")
        targets: list[Datatype] = []
        for name in names:
            assert self.repo_access is not None
            target = self.repo_access.sibling(name)  # NotFound (404) if unknown
            if not sync_mod.satisfies(target, self.sync_requires):
                allowed = " or ".join(sync_mod.ROLES.get(p, p.__name__) for p in self.sync_requires)
                raise BadRequest(
                    f"data {name!r} is of type {target.type_name};"
                    f" {self.type_name} can only sync with {allowed}"
                )
            if target is self:
                raise BadRequest(f"data {name!r} cannot sync with itself")
            self.check_sync_target(target)
            targets.append(target)
        syncs = [] if req.query_bool("replace") else list(self.meta.syncs)
        for target in targets:
            if target.meta.data_uuid not in syncs:
                syncs.append(target.meta.data_uuid)
        self.meta.syncs = syncs
        self.save()
        return web.Response()
