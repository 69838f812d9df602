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
    malloc_trim_seconds = 60          # give free heap memory back this often (glibc); 0 = never
    AllowLabelmapSplit = false        # serve labelmap's split/<body> (arbitrary body splits)
    corsDomains = ["*"]
    instance_id_gen = "sequential"   # or "random"
    instance_id_start = 1
    min_mutation_id_start = 1000000000

    [store.main]
    engine = "leveldb"         # or "memory", "postgres"
    path = "dvid-data"         # relative paths are relative to the TOML file
    WriteBufferSize = 64       # MiB; CacheSize = 256 (MiB); MaxOpenFiles = 1024 (memory budget:
                               # docs/configuration.md)

    [store.pg]
    engine = "postgres"
    dsn = "postgresql://dvid@dbhost:5432/dvid"   # or url = ...; libpq key=value strings work too
    table = "dvid_kv"          # one table per store
    pool_min = 1
    pool_max = 8
    connect_timeout = 5.0      # seconds

    [backend.default]
    store = "main"             # needed only when several stores are defined
    [backend.metadata]         # optional: where repos and the DAG live (else the default store)
    store = "main"
    [backend.labelmap]         # by datatype name
    store = "pg"
    [backend."grayscale:<rootUUID>"]   # by instance name and its repo's root UUID
    store = "pg"
    [backend."type=meshes"]    # by instance tag (tagkey=tagvalue)
    store = "pg"
    [backend."<dataUUID>"]     # by data UUID (highest precedence)
    store = "pg"
"""

from __future__ import annotations

import difflib
import logging
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from dvid.errors import BadRequest

log = logging.getLogger("dvid.config")

ADMIN_TOKEN_ENV = "DVID_ADMIN_TOKEN"
DEFAULT_STORE_DIR = "dvid-data"


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

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
    #: seconds between returns of free heap memory to the system (glibc malloc_trim); 0: never
    malloc_trim_seconds: float = Field(60.0, ge=0)
    #: serve labelmap's ``split`` of a body by a sparse volume (off by default, as in DVID)
    allow_labelmap_split: bool = Field(False, alias="AllowLabelmapSplit")
    #: the neuroglancer the console's "open in neuroglancer" links go to (labs host their own)
    neuroglancer_url: str = Field("https://neuroglancer-demo.appspot.com/", alias="neuroglancerURL")
    #: serve the web console at / and /console/
    console: bool = True

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

    engine: Literal["leveldb", "memory", "postgres"] = "leveldb"
    path: str = DEFAULT_STORE_DIR
    write_buffer_mib: int = Field(64, gt=0, alias="WriteBufferSize")
    cache_mib: int = Field(256, gt=0, alias="CacheSize")
    #: LevelDB's table cache: table files kept open (and memory-mapped), see docs/configuration.md
    max_open_files: int = Field(1024, ge=74, le=50_000, alias="MaxOpenFiles")
    # postgres
    dsn: str | None = Field(None, validation_alias=AliasChoices("dsn", "url", "DSN", "URL"))
    table: str = Field("dvid_kv", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    pool_min: int = Field(1, ge=0)
    pool_max: int = Field(8, ge=2)
    connect_timeout: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _postgres_needs_dsn(self) -> StoreSettings:
        if self.engine == "postgres" and not self.dsn:
            raise ValueError('a postgres store needs dsn = "postgresql://user@host:port/dbname"')
        if self.pool_min > self.pool_max:
            raise ValueError("pool_min must not exceed pool_max")
        return self


class BackendSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store: str


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server: ServerSettings = Field(default_factory=ServerSettings)
    store: dict[str, StoreSettings] = Field(default_factory=lambda: {"default": StoreSettings()})
    backend: dict[str, BackendSettings] = Field(default_factory=dict)
    #: Where the TOML file was read from, if any (reported by /api/server/info).
    source: str = ""
    #: DVID settings of the file that dvid does not implement, ignored (each also logged).
    ignored: list[str] = Field(default_factory=list)

    @field_validator("store")
    @classmethod
    def _at_least_one_store(cls, stores: dict[str, StoreSettings]) -> dict[str, StoreSettings]:
        if not stores:
            raise ValueError("define at least one [store.<name>] table")
        return stores

    @model_validator(mode="after")
    def _default_backend(self) -> Config:
        for spec, backend in self.backend.items():
            if backend.store not in self.store:
                known = ", ".join(sorted(self.store))
                raise ValueError(f"[backend.{spec}] names unknown store {backend.store!r} (stores: {known})")
        if "default" not in self.backend and len(self.store) != 1:
            raise ValueError(
                "if no default backend specified, must have exactly one store defined in config file"
                " (add [backend.default] store = NAME)"
            )
        return self

    def default_store_name(self) -> str:
        if "default" in self.backend:
            return self.backend["default"].store
        return next(iter(self.store))

    def default_store(self) -> StoreSettings:
        return self.store[self.default_store_name()]

    def metadata_store_name(self) -> str:
        """``[backend.metadata]``'s store, else the default store."""
        if "metadata" in self.backend:
            return self.backend["metadata"].store
        return self.default_store_name()

    def store_for_instance(
        self, *, data_uuid: str, name: str, root_uuid: str, type_name: str, tags: dict[str, str] | None = None
    ) -> str:
        """The store a new instance goes to, with DVID's precedence: ``backend."<dataUUID>"``,
        ``backend."<name>:<rootUUID>"``, ``backend."<tagkey>=<tagvalue>"``, ``backend.<typename>``,
        then ``backend.default``."""
        b = self.backend
        if data_uuid in b:
            return b[data_uuid].store
        if f"{name}:{root_uuid}" in b:
            return b[f"{name}:{root_uuid}"].store
        for key, value in sorted((tags or {}).items()):
            if f"{key}={value}" in b:
                return b[f"{key}={value}"].store
        if type_name in b:
            return b[type_name].store
        return self.default_store_name()


#: Sections of DVID's TOML that dvid does not implement: accepted, so that a DVID configuration
#: works unchanged, and ignored with a warning.
DVID_ONLY_SECTIONS = frozenset(
    {"logging", "mutations", "auth", "kafka", "email", "mirror", "groupcache", "cache", "mutcache"}
)
#: Keys of DVID's [server], [store.*] and [backend.*] tables that dvid does not implement (ignored).
DVID_ONLY_KEYS: dict[str, frozenset[str]] = {
    "server": frozenset(
        {
            "rpcAddress",
            "webClient",
            "webDefaultFile",
            "webRedirectPath",
            "blockListFile",
            "allowTiming",
            "interactiveOpsBeforeBlock",
            "shutdownDelay",
            "pidFile",
            "startWebhook",
        }
    ),
    "store": frozenset({"BloomFilterBitsPerKey", "BlockSize"}),
    "backend": frozenset({"log"}),
}
#: The model of each section's tables; [store.NAME] and [backend.SPEC] hold one table per name.
_SECTION_MODELS: dict[str, type[BaseModel]] = {
    "server": ServerSettings,
    "store": StoreSettings,
    "backend": BackendSettings,
}


def _accepted_keys(model: type[BaseModel]) -> list[str]:
    """A model's keys as the TOML may spell them: field names and their aliases."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        keys.append(name)
        if field.alias:
            keys.append(field.alias)
        if isinstance(field.validation_alias, AliasChoices):
            keys += [c for c in field.validation_alias.choices if isinstance(c, str)]
    return list(dict.fromkeys(keys))


def _unknown(what: str, where: str, valid: list[str]) -> str:
    near = difflib.get_close_matches(what, valid, n=1, cutoff=0.6) or difflib.get_close_matches(
        what.lower(), [v.lower() for v in valid], n=1, cutoff=0.6
    )
    if near:
        match = next(v for v in valid if v.lower() == near[0].lower())
        return f"{where}; did you mean {match!r}?"
    return f"{where} (valid: {', '.join(valid)})"


def screen_keys(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
    """Check every section and key of a parsed TOML file against what dvid reads.

    Returns the file without DVID's unimplemented sections and keys, the notices for those
    (ignored), and the errors for keys nobody knows, each naming the key, its section and the
    nearest valid key.
    """
    kept: dict[str, Any] = {}
    ignored: list[str] = []
    errors: list[str] = []
    for section, body in raw.items():
        model = _SECTION_MODELS.get(section)
        if model is None:
            if not isinstance(body, dict):
                errors.append(_unknown(section, f"unknown top-level key {section!r}", list(_SECTION_MODELS)))
            elif section in DVID_ONLY_SECTIONS:
                ignored.append(f"[{section}] is a DVID section that dvid does not implement: ignored")
            else:
                errors.append(
                    _unknown(section, f"unknown section [{section}]", [*_SECTION_MODELS, *DVID_ONLY_SECTIONS])
                )
            continue
        if not isinstance(body, dict):
            kept[section] = body  # the model's validation names the problem
            continue
        tables = {section: body} if section == "server" else body
        valid = _accepted_keys(model)
        screened: dict[str, Any] = {}
        for name, table in tables.items():
            where = f"[{section}]" if section == "server" else f"[{section}.{name}]"
            if not isinstance(table, dict):
                screened[name] = table
                continue
            keep = {}
            for key, value in table.items():
                if key in valid:
                    keep[key] = value
                elif key in DVID_ONLY_KEYS[section]:
                    ignored.append(f"{where} {key} is a DVID setting that dvid does not implement: ignored")
                else:
                    errors.append(_unknown(key, f"unknown key {key!r} in {where}", valid))
            screened[name] = keep
        kept[section] = screened[section] if section == "server" else screened
    return kept, ignored, errors


def _describe_errors(exc: ValidationError) -> str:
    """One line per error, naming the setting, without the offending input: a store's value may
    hold a DSN with a password, which must not reach the terminal or a log."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a TOML config; ``None`` gives the defaults (LevelDB under ./dvid-data).

    Unknown sections and keys are refused, naming the nearest valid one; DVID's sections and keys
    that dvid does not implement are ignored with a warning (a DVID configuration works as is).
    """
    if path is None:
        return Config()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BadRequest(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadRequest(f"config file {path} is not valid TOML: {exc}") from None
    raw, ignored, errors = screen_keys(raw)
    if errors:
        raise BadRequest(f"config file {path} is invalid:\n" + "\n".join(f"  {e}" for e in errors))
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest(f"config file {path} is invalid:\n{_describe_errors(exc)}") from None
    for store in config.store.values():
        if store.engine != "leveldb":
            continue
        p = Path(store.path)
        if not p.is_absolute():
            store.path = str((path.parent / p).resolve())
    config.source = str(path.resolve())
    config.ignored = ignored
    for notice in ignored:
        log.warning("config file %s: %s", path, notice)
    return config
