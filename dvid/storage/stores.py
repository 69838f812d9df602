"""The configured stores: opening their engines and choosing the store of each data instance.

A server has one or more named stores (``[store.NAME]``), each an Engine. ``[backend]`` assigns
them: the default store, the metadata store (repos, DAGs, instance records) and per-instance
stores by data UUID, ``name:rootUUID``, ``tagkey=tagvalue`` or type name (DVID's precedence, see
:meth:`dvid.config.Config.store_for_instance`). The store an instance was created in is recorded
with it, so later configuration changes never point an existing instance at another store.
"""

from __future__ import annotations

from dvid.config import Config, StoreSettings
from dvid.errors import DVIDError
from dvid.storage.engine import Engine
from dvid.storage.versioned import VersionedStore


def open_engine(settings: StoreSettings, name: str = "") -> Engine:
    """The storage engine a store configuration names."""
    if settings.engine == "memory":
        from dvid.storage.memory import MemoryEngine

        return MemoryEngine()
    if settings.engine == "postgres":
        from dvid.storage.postgres import PostgresEngine

        assert settings.dsn is not None  # checked by the config
        return PostgresEngine(
            settings.dsn,
            table=settings.table,
            pool_min=settings.pool_min,
            pool_max=settings.pool_max,
            connect_timeout=settings.connect_timeout,
            store_name=name,
        )
    from dvid.storage.leveldb import LevelDBEngine

    return LevelDBEngine(
        settings.path,
        write_buffer_mib=settings.write_buffer_mib,
        cache_mib=settings.cache_mib,
        max_open_files=settings.max_open_files,
    )


class Stores:
    """Named engines with their assignment; one VersionedStore per engine."""

    def __init__(
        self,
        engines: dict[str, Engine],
        *,
        default: str,
        metadata: str | None = None,
        config: Config | None = None,
    ) -> None:
        if default not in engines:
            raise ValueError(f"default store {default!r} is not among the stores {sorted(engines)}")
        self.engines = dict(engines)
        self.default = default
        self.metadata = metadata or default
        if self.metadata not in engines:
            raise ValueError(f"metadata store {self.metadata!r} is not among the stores {sorted(engines)}")
        self.config = config
        self._versioned = {name: VersionedStore(eng) for name, eng in self.engines.items()}

    @classmethod
    def single(cls, engine: Engine, name: str = "default") -> Stores:
        """One engine serving as default and metadata store."""
        return cls({name: engine}, default=name)

    @classmethod
    def open(cls, config: Config) -> Stores:
        """Open every configured store (closing those already opened if one fails)."""
        engines: dict[str, Engine] = {}
        try:
            for name, settings in config.store.items():
                engines[name] = open_engine(settings, name)
        except BaseException:
            for eng in engines.values():
                eng.close()
            raise
        return cls(
            engines,
            default=config.default_store_name(),
            metadata=config.metadata_store_name(),
            config=config,
        )

    @property
    def default_engine(self) -> Engine:
        return self.engines[self.default]

    @property
    def metadata_engine(self) -> Engine:
        return self.engines[self.metadata]

    def versioned(self, name: str) -> VersionedStore:
        """The VersionedStore over store ``name`` (DVIDError naming the problem if not configured)."""
        try:
            return self._versioned[name]
        except KeyError:
            raise DVIDError(
                f"store {name!r} is not configured (stores: {', '.join(sorted(self.engines))})", status=500
            ) from None

    def choose(
        self, *, data_uuid: str, name: str, root_uuid: str, type_name: str, tags: dict[str, str]
    ) -> str:
        """The store a new instance is assigned to by the configuration."""
        if self.config is None:
            return self.default
        chosen = self.config.store_for_instance(
            data_uuid=data_uuid, name=name, root_uuid=root_uuid, type_name=type_name, tags=tags
        )
        return chosen if chosen in self.engines else self.default

    def describe(self) -> str:
        """Every engine, ``"; "``-joined, as ``/api/server/info``'s "Storage backend"."""
        if len(self.engines) == 1:
            return self.default_engine.describe()
        roles = {}
        for name in self.engines:
            tags = [r for r, n in (("default", self.default), ("metadata", self.metadata)) if n == name]
            roles[name] = f" ({', '.join(tags)})" if tags else ""
        return "; ".join(f"{name}: {eng.describe()}{roles[name]}" for name, eng in self.engines.items())

    def close(self) -> None:
        for eng in self.engines.values():
            eng.close()
