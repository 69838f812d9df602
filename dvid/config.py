"""Server configuration: a TOML file validated by pydantic, with defaults that need no file at all.

Layout (DVID's, trimmed to what dvid implements)::

    [server]
    host = "127.0.0.1"        # address to listen on
    port = 8000
    httpAddress = ":8000"      # DVID spelling; overrides host/port when given
    note = "free text"
    rwmode = "readwrite"       # or "readonly", "fullwrite"
    admin_token = "secret"     # or env DVID_ADMIN_TOKEN; guards deletes and renames
    max_body_bytes = 1073741824
    max_request_voxels = 4294967296   # larger voxel requests are refused with 413
    max_throttled_ops = 0             # concurrent ?throttle=true operations; 0 = CPU count
    corsDomains = ["*"]
    instance_id_gen = "sequential"   # or "random"
    instance_id_start = 1
    min_mutation_id_start = 1000000000

    [store.main]
    engine = "leveldb"         # or "memory"
    path = "dvid-data"         # relative paths are relative to the TOML file

    [backend.default]
    store = "main"             # needed only when several stores are defined
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dvid.errors import BadRequest

ADMIN_TOKEN_ENV = "DVID_ADMIN_TOKEN"
DEFAULT_STORE_DIR = "dvid-data"


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    http_address: str | None = Field(None, alias="httpAddress")
    note: str = ""
    rwmode: Literal["readwrite", "readonly", "fullwrite"] = "readwrite"
    admin_token: str | None = None
    max_body_bytes: int = Field(1 << 30, gt=0)
    cors_domains: list[str] = Field(default_factory=lambda: ["*"], alias="corsDomains")
    instance_id_gen: Literal["sequential", "random"] = "sequential"
    instance_id_start: int = Field(1, ge=1, lt=1 << 32)
    min_mutation_id_start: int = Field(1_000_000_000, ge=0)
    access_log: bool = True
    max_request_voxels: int = Field(1 << 32, gt=0)
    max_throttled_ops: int = Field(0, ge=0)  # 0: the number of CPUs

    @model_validator(mode="after")
    def _split_http_address(self) -> ServerSettings:
        if self.http_address:
            host, _, port = self.http_address.rpartition(":")
            if not port.isdigit():
                raise ValueError(
                    f"httpAddress must look like 'host:port' or ':port', got {self.http_address!r}"
                )
            self.host = host or "0.0.0.0"
            self.port = int(port)
        return self

    def effective_admin_token(self) -> str | None:
        """The configured admin token, else the ``DVID_ADMIN_TOKEN`` environment variable."""
        return self.admin_token or os.environ.get(ADMIN_TOKEN_ENV) or None


class StoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    engine: Literal["leveldb", "memory"] = "leveldb"
    path: str = DEFAULT_STORE_DIR
    write_buffer_mib: int = Field(64, gt=0, alias="WriteBufferSize")
    cache_mib: int = Field(256, gt=0, alias="CacheSize")


class BackendSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    store: str


class Config(BaseModel):
    model_config = ConfigDict(extra="ignore")

    server: ServerSettings = Field(default_factory=ServerSettings)
    store: dict[str, StoreSettings] = Field(default_factory=lambda: {"default": StoreSettings()})
    backend: dict[str, BackendSettings] = Field(default_factory=dict)
    #: Where the TOML file was read from, if any (reported by /api/server/info).
    source: str = ""

    @field_validator("store")
    @classmethod
    def _at_least_one_store(cls, stores: dict[str, StoreSettings]) -> dict[str, StoreSettings]:
        if not stores:
            raise ValueError("define at least one [store.<name>] table")
        return stores

    @model_validator(mode="after")
    def _default_backend(self) -> Config:
        if "default" in self.backend:
            if self.backend["default"].store not in self.store:
                raise ValueError(f"[backend.default] names unknown store {self.backend['default'].store!r}")
        elif len(self.store) != 1:
            raise ValueError("with several stores defined, [backend.default] must name the default store")
        return self

    def default_store_name(self) -> str:
        if "default" in self.backend:
            return self.backend["default"].store
        return next(iter(self.store))

    def default_store(self) -> StoreSettings:
        return self.store[self.default_store_name()]


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a TOML config; ``None`` gives the defaults (LevelDB under ./dvid-data)."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BadRequest(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadRequest(f"config file {path} is not valid TOML: {exc}") from None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest(f"config file {path} is invalid:\n{exc}") from None
    for store in config.store.values():
        p = Path(store.path)
        if not p.is_absolute():
            store.path = str((path.parent / p).resolve())
    config.source = str(path.resolve())
    return config
