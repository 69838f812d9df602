"""The ``dvid`` command line: run a server, and manage repos, versions and data instances over HTTP.

Commands follow DVID's grammar (``dvid repos new``, ``dvid repo <uuid> new <type> <name> key=value``,
``dvid repo <uuid> branch <name>``, ...) with the same reply texts where DVID has them; they talk to a
running server over its HTTP API (see :mod:`dvid.client`) instead of DVID's RPC port.
"""

from __future__ import annotations

import errno
import json
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from dvid import DVID_API_VERSION, __version__
from dvid.cli_format import format_repo_info, short, table
from dvid.client import DEFAULT_SERVER, SERVER_ENV, DVIDClient, DVIDClientError
from dvid.config import ADMIN_TOKEN_ENV
from dvid.ingest.cli import export_command, ingest_command

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
#: click >= 8.2 raises this for a group called without arguments; older click prints help itself.
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())
_SETTING = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$", re.DOTALL)


# ---- error handling ------------------------------------------------------------------------------
def _error(message: str) -> None:
    click.echo(f"dvid: {message}", err=True)


def fail(message: str) -> NoReturn:
    """Stop with ``dvid: <message>`` on stderr and exit status 1."""
    raise click.ClickException(message)


class DvidGroup(click.Group):
    """The top-level group: every error is one line ``dvid: <message>`` on stderr and exit status 1."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name or "dvid", complete_var, standalone_mode=False, **extra)
        except _NO_ARGS_IS_HELP as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
            sys.exit(0)
        except click.UsageError as exc:
            _error(exc.format_message())
            if exc.ctx is not None:
                click.echo(f"Try '{exc.ctx.command_path} --help' for help.", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            _error(exc.format_message())
            sys.exit(1)
        except DVIDClientError as exc:
            _error(str(exc))
            sys.exit(1)
        except click.Abort:
            _error("aborted")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


# ---- helpers -------------------------------------------------------------------------------------
class Obj:
    """Global options, and the client built from them on first use."""

    def __init__(self, server: str, admin_token: str | None, timeout: float) -> None:
        self.server = server
        self.admin_token = admin_token
        self.timeout = timeout
        self._client: DVIDClient | None = None

    @property
    def client(self) -> DVIDClient:
        if self._client is None:
            self._client = DVIDClient(self.server, admin_token=self.admin_token, timeout=self.timeout)
        return self._client


def _obj(ctx: click.Context) -> Obj:
    return ctx.find_object(Obj)  # type: ignore[return-value]


def split_settings(tokens: tuple[str, ...] | list[str]) -> tuple[list[str], dict[str, str]]:
    """DVID's argument rule: ``key=value`` tokens are settings (key lower-cased), the rest positional."""
    positional: list[str] = []
    settings: dict[str, str] = {}
    for token in tokens:
        m = _SETTING.match(token)
        if m:
            settings[m.group(1).lower()] = m.group(2)
        else:
            positional.append(token)
    return positional, settings


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False))


def _interactive() -> bool:
    return sys.stdin.isatty()


def _confirm_deletion(what: str, yes: bool) -> None:
    """Ask on a terminal before deleting ``what``; without a terminal, refuse unless ``--yes`` was given."""
    if yes:
        return
    if not _interactive():
        fail(f"not deleting {what} without confirmation: pass --yes to confirm")
    if not click.confirm(f"Delete {what}?", default=False):
        fail("nothing deleted")


# ---- the command group ---------------------------------------------------------------------------
@click.group("dvid", cls=DvidGroup, context_settings=CONTEXT_SETTINGS, no_args_is_help=True)
@click.option(
    "--server",
    "-s",
    envvar=SERVER_ENV,
    default=DEFAULT_SERVER,
    show_default=True,
    metavar="URL",
    help=f"The dvid server to talk to (env {SERVER_ENV}).",
)
@click.option(
    "--admin-token",
    envvar=ADMIN_TOKEN_ENV,
    default=None,
    metavar="TOKEN",
    help=f"Admin token for deletes and renames (env {ADMIN_TOKEN_ENV}).",
)
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for an answer.")
@click.version_option(__version__, "--version", prog_name="dvid", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, server: str, admin_token: str | None, timeout: float) -> None:
    """dvid: a versioned, image-oriented datastore for connectomics (a Python DVID).

    Run a server with `dvid serve`; the other commands talk to a running server over HTTP.
    Arguments of the form key=value are settings (keys are case-insensitive).
    """
    ctx.obj = Obj(server, admin_token, timeout)


# ---- serve ---------------------------------------------------------------------------------------
@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("config_file", required=False, metavar="[CONFIG.toml]", type=click.Path(dir_okay=False))
@click.option(
    "--config", "config_opt", type=click.Path(dir_okay=False), metavar="TOML", help="TOML configuration."
)
@click.option("--store", type=click.Path(file_okay=False), metavar="DIR", help="Store directory [dvid-data].")
@click.option("--engine", type=click.Choice(["leveldb", "memory"]), help="Storage engine [leveldb].")
@click.option("--host", metavar="HOST", help="Address to listen on [127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on [8000].")
@click.option("--fullwrite", is_flag=True, help="Allow writes to committed versions.")
@click.option("--readonly", is_flag=True, help="Refuse every write.")
@click.option("--admin-token", "serve_token", metavar="TOKEN", help=f"Admin token [env {ADMIN_TOKEN_ENV}].")
@click.pass_context
def serve(
    ctx: click.Context,
    config_file: str | None,
    config_opt: str | None,
    store: str | None,
    engine: str | None,
    host: str | None,
    port: int | None,
    fullwrite: bool,
    readonly: bool,
    serve_token: str | None,
) -> None:
    """Run a dvid server in the foreground until SIGINT or SIGTERM.

    With no configuration, data go to an embedded LevelDB store under ./dvid-data and the server
    listens on 127.0.0.1:8000. Options override the configuration file.
    """
    from dvid.config import load_config
    from dvid.errors import DVIDError

    if fullwrite and readonly:
        raise click.UsageError("--fullwrite and --readonly are mutually exclusive", ctx=ctx)
    if config_file and config_opt:
        raise click.UsageError("give the configuration once: as an argument or with --config", ctx=ctx)
    try:
        config = load_config(config_file or config_opt)
    except DVIDError as exc:
        fail(exc.message)
    settings = config.default_store()
    if engine:
        settings.engine = engine  # type: ignore[assignment]
    if store:
        settings.path = store
    if settings.engine != "memory":
        settings.path = str(Path(settings.path).expanduser().resolve())
    if host:
        config.server.host = host
    if port is not None:
        config.server.port = port
    if fullwrite:
        config.server.rwmode = "fullwrite"
    elif readonly:
        config.server.rwmode = "readonly"
    token = serve_token or _obj(ctx).admin_token
    if token:
        config.server.admin_token = token

    from dvid.server import run_server

    try:
        run_server(config)
    except DVIDError as exc:
        fail(exc.message)
    except OSError as exc:
        where = f"{config.server.host}:{config.server.port}"
        if exc.errno == errno.EADDRINUSE or "address already in use" in str(exc).lower():
            fail(f"cannot listen on {where}: the address is already in use (another server running?)")
        fail(f"cannot start the server on {where}: {exc}")


# ---- repos ---------------------------------------------------------------------------------------
@cli.group(context_settings=CONTEXT_SETTINGS, no_args_is_help=True)
def repos() -> None:
    """Create, list and delete repos."""


@repos.command("new", context_settings=CONTEXT_SETTINGS)
@click.argument("args", nargs=-1, metavar="[ALIAS] [DESCRIPTION] [uuid=UUID] [passcode=P]")
@click.pass_context
def repos_new(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Create a repo; prints its root (head) UUID.

    \b
    Example:
      dvid repos new fib19 "FIB-19 grayscale and labels" uuid=0123456789abcdef0123456789abcdef
    """
    positional, settings = split_settings(args)
    unknown = sorted(set(settings) - {"uuid", "passcode"})
    if unknown:
        raise click.UsageError(f"unknown setting {unknown[0]!r} (accepted: uuid=, passcode=)", ctx=ctx)
    if len(positional) > 2:
        raise click.UsageError(
            f"expected at most ALIAS and DESCRIPTION, got {len(positional)} arguments (quote a description"
            " that has spaces)",
            ctx=ctx,
        )
    alias = positional[0] if positional else ""
    description = positional[1] if len(positional) > 1 else ""
    client = _obj(ctx).client
    root = client.new_repo(alias, description, root=settings.get("uuid"), passcode=settings.get("passcode"))
    click.echo(f'New repo "{alias}" created with head node {root}')


@repos.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON.")
@click.pass_context
def repos_list(ctx: click.Context, as_json: bool) -> None:
    """List the repos on the server."""
    infos = _obj(ctx).client.repos_info()
    if as_json:
        _echo_json(infos)
        return
    if not infos:
        click.echo("No repos.")
        return
    rows = []
    for root, info in sorted(infos.items(), key=lambda kv: (kv[1].get("Created", ""), kv[0])):
        rows.append(
            [
                root,
                info.get("Alias", "") or "-",
                short(info.get("Description", "")) or "-",
                str(len((info.get("DAG") or {}).get("Nodes", {}))),
                ", ".join(sorted(info.get("DataInstances") or {})) or "-",
            ]
        )
    click.echo(table(rows, ["ROOT", "ALIAS", "DESCRIPTION", "VERSIONS", "INSTANCES"]))


def _delete_repo(ctx: click.Context, uuid: str, yes: bool) -> None:
    client = _obj(ctx).client
    info = client.repo_info(uuid)
    root = info.get("Root", uuid)
    alias = f' "{info["Alias"]}"' if info.get("Alias") else ""
    n_versions = len((info.get("DAG") or {}).get("Nodes", {}))
    n_data = len(info.get("DataInstances") or {})
    _confirm_deletion(f"repo{alias} with root {root}: {n_versions} version(s), {n_data} instance(s)", yes)
    client.delete_repo(root)
    click.echo(f"Started deletion of repo {root}.")


@repos.command("delete", context_settings=CONTEXT_SETTINGS)
@click.argument("uuid")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def repos_delete(ctx: click.Context, uuid: str, yes: bool) -> None:
    """Delete a repo with all its versions and data (needs the admin token)."""
    _delete_repo(ctx, uuid, yes)


# ---- repo <uuid> ... -----------------------------------------------------------------------------
@cli.group(context_settings=CONTEXT_SETTINGS)
@click.argument("uuid")
@click.pass_context
def repo(ctx: click.Context, uuid: str) -> None:
    """Commands on the repo holding version UUID (a UUID, a unique prefix, or uuid:branch)."""
    ctx.meta["dvid.uuid"] = uuid


def _uuid(ctx: click.Context) -> str:
    return ctx.meta["dvid.uuid"]


@repo.command("info", context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON.")
@click.pass_context
def repo_info(ctx: click.Context, as_json: bool) -> None:
    """Show the repo: data instances, the version DAG with branches, locks and notes, and its log."""
    info = _obj(ctx).client.repo_info(_uuid(ctx))
    if as_json:
        _echo_json(info)
    else:
        click.echo(format_repo_info(info))


@repo.command("new", context_settings=CONTEXT_SETTINGS)
@click.argument("typename")
@click.argument("dataname")
@click.argument("settings", nargs=-1, metavar="[key=value ...]")
@click.pass_context
def repo_new(ctx: click.Context, typename: str, dataname: str, settings: tuple[str, ...]) -> None:
    """Create data instance DATANAME of type TYPENAME with settings key=value.

    \b
    Example:
      dvid repo 3f8c new keyvalue kv versioned=false Compression=gzip
    """
    positional, config = split_settings(settings)
    if positional:
        raise click.UsageError(f"settings must look like key=value, got {positional[0]!r}", ctx=ctx)
    uuid = _uuid(ctx)
    _obj(ctx).client.new_instance(uuid, typename, dataname, config)
    click.echo(f'Data "{dataname}" [{typename}] added to node {uuid}')


@repo.command("delete", context_settings=CONTEXT_SETTINGS)
@click.argument("dataname", required=False)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def repo_delete(ctx: click.Context, dataname: str | None, yes: bool) -> None:
    """Delete data instance DATANAME, or without it the whole repo (needs the admin token)."""
    uuid = _uuid(ctx)
    if dataname is None:
        _delete_repo(ctx, uuid, yes)
        return
    client = _obj(ctx).client
    info = client.repo_info(uuid)
    root = info.get("Root", uuid)
    inst = (info.get("DataInstances") or {}).get(dataname)
    if inst is None:
        fail(f"no data instance {dataname!r} in repo {root}")
    typename = (inst.get("Base") or {}).get("TypeName", "?")
    _confirm_deletion(f'data instance "{dataname}" [{typename}] and all its data from repo {root}', yes)
    client.delete_instance(uuid, dataname)
    click.echo(f'Started deletion of data instance "{dataname}" from repo with root {root}')


@repo.command("rename", context_settings=CONTEXT_SETTINGS)
@click.argument("old")
@click.argument("new")
@click.pass_context
def repo_rename(ctx: click.Context, old: str, new: str) -> None:
    """Rename data instance OLD to NEW (needs the admin token)."""
    uuid = _uuid(ctx)
    _obj(ctx).client.rename_instance(uuid, old, new)
    click.echo(f'Renamed data instance "{old}" to "{new}" from DAG subgraph @ root {uuid}')


@repo.command("branch", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.argument("child_uuid", required=False, metavar="[CHILD_UUID]")
@click.pass_context
def repo_branch(ctx: click.Context, name: str, child_uuid: str | None) -> None:
    """Start branch NAME from committed version UUID (optionally with a chosen child UUID)."""
    uuid = _uuid(ctx)
    if name in ("", "master"):
        raise click.UsageError("a new branch needs a name other than 'master'", ctx=ctx)
    child = _obj(ctx).client.branch(uuid, name, f"branch of {uuid}", child_uuid=child_uuid)
    click.echo(f"Branch {child} added to node {uuid}")


@repo.command("newversion", context_settings=CONTEXT_SETTINGS)
@click.argument("child_uuid", required=False, metavar="[CHILD_UUID]")
@click.pass_context
def repo_newversion(ctx: click.Context, child_uuid: str | None) -> None:
    """Add an open child version on the same branch as committed version UUID."""
    uuid = _uuid(ctx)
    child = _obj(ctx).client.newversion(uuid, f"branch of {uuid}", child_uuid=child_uuid)
    click.echo(f"Branch {child} added to node {uuid}")


@repo.command("merge", context_settings=CONTEXT_SETTINGS)
@click.argument("others", nargs=-1, required=True, metavar="UUID2 [UUID3 ...]")
@click.option("-m", "--note", default=None, help="Note for the merged version.")
@click.pass_context
def repo_merge(ctx: click.Context, others: tuple[str, ...], note: str | None) -> None:
    """Conflict-free merge of committed versions UUID, UUID2, ... into a new open version."""
    parents = [_uuid(ctx), *others]
    shown = "[" + " ".join(parents) + "]"
    child = _obj(ctx).client.merge(parents, note if note is not None else f"merge of parents {shown}")
    click.echo(f"Parents {shown} merged into node {child}")


# ---- node <uuid> ... -----------------------------------------------------------------------------
@cli.group(context_settings=CONTEXT_SETTINGS)
@click.argument("uuid")
@click.pass_context
def node(ctx: click.Context, uuid: str) -> None:
    """Commands on version UUID: commit, newversion, branch, tag, note, log, status."""
    ctx.meta["dvid.uuid"] = uuid


@node.command("commit", context_settings=CONTEXT_SETTINGS)
@click.option("-m", "--note", default="", help="Commit note.")
@click.option("--log", "log_messages", multiple=True, metavar="MSG", help="A log message (repeatable).")
@click.pass_context
def node_commit(ctx: click.Context, note: str, log_messages: tuple[str, ...]) -> None:
    """Commit (lock) the version for good."""
    committed = _obj(ctx).client.commit(_uuid(ctx), note, list(log_messages))
    click.echo(f"Committed {committed}")


@node.command("newversion", context_settings=CONTEXT_SETTINGS)
@click.option("-m", "--note", default="", help="Note for the new version.")
@click.option("--uuid", "child_uuid", metavar="UUID", help="UUID for the new version (32 hex digits).")
@click.pass_context
def node_newversion(ctx: click.Context, note: str, child_uuid: str | None) -> None:
    """Add an open child on the same branch; prints its UUID."""
    click.echo(_obj(ctx).client.newversion(_uuid(ctx), note, child_uuid=child_uuid))


@node.command("branch", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option("-m", "--note", default="", help="Note for the new version.")
@click.option("--uuid", "child_uuid", metavar="UUID", help="UUID for the new version (32 hex digits).")
@click.pass_context
def node_branch(ctx: click.Context, name: str, note: str, child_uuid: str | None) -> None:
    """Add an open child starting branch NAME; prints its UUID."""
    click.echo(_obj(ctx).client.branch(_uuid(ctx), name, note, child_uuid=child_uuid))


@node.command("tag", context_settings=CONTEXT_SETTINGS)
@click.argument("tag")
@click.option("-m", "--note", default="", help="Note for the tag.")
@click.pass_context
def node_tag(ctx: click.Context, tag: str, note: str) -> None:
    """Add a committed child whose UUID is TAG; prints it."""
    click.echo(_obj(ctx).client.tag(_uuid(ctx), tag, note))


@node.command("pyramid", context_settings=CONTEXT_SETTINGS)
@click.argument("dataname")
@click.option(
    "--levels", type=click.IntRange(1, 16), required=True, help="Number of levels below full resolution."
)
@click.pass_context
def node_pyramid(ctx: click.Context, dataname: str, levels: int) -> None:
    """Build the pyramid of image volume DATANAME at this version (instances DATANAME_1 ... _N,
    2x2x2 mean per level); later writes to DATANAME keep the levels current."""
    built = _obj(ctx).client.build_pyramid(_uuid(ctx), dataname, levels)
    click.echo(
        f"{dataname}: pyramid of {built} levels ({', '.join(f'{dataname}_{i}' for i in range(1, built + 1))})"
    )


@node.command("note", context_settings=CONTEXT_SETTINGS)
@click.argument("text", nargs=-1)
@click.pass_context
def node_note(ctx: click.Context, text: tuple[str, ...]) -> None:
    """Print the version's note, or set it to TEXT."""
    client = _obj(ctx).client
    if text:
        client.set_note(_uuid(ctx), " ".join(text))
    else:
        click.echo(client.note(_uuid(ctx)))


@node.command("log", context_settings=CONTEXT_SETTINGS)
@click.argument("messages", nargs=-1, metavar="[MSG ...]")
@click.pass_context
def node_log(ctx: click.Context, messages: tuple[str, ...]) -> None:
    """Print the version's log, or append each MSG to it."""
    client = _obj(ctx).client
    if messages:
        client.append_log(_uuid(ctx), list(messages))
        return
    for entry in client.log(_uuid(ctx)):
        click.echo(entry)


@node.command("status", context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON.")
@click.pass_context
def node_status(ctx: click.Context, as_json: bool) -> None:
    """Whether the version is committed (locked) or open."""
    status = _obj(ctx).client.status(_uuid(ctx))
    if as_json:
        _echo_json(status)
    else:
        click.echo("locked (committed)" if status.get("Locked") else "open")


# ---- about, types, help --------------------------------------------------------------------------
def _engines() -> list[str]:
    """The storage engines of this installation, with the library each runs on."""
    from importlib.metadata import PackageNotFoundError, version

    def lib(name: str) -> str:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:  # pragma: no cover - both are dependencies
            return f"{name} missing"

    return [f"leveldb ({lib('plyvel')})", f"postgres ({lib('psycopg')})", "memory"]


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.pass_context
def about(ctx: click.Context) -> None:
    """Versions of dvid, the DVID API it reproduces, its engines and datatypes; and the server's info."""
    from dvid.datatype import registry
    from dvid.server.server_routes import DATASTORE_VERSION

    rows = [
        ["dvid", __version__],
        ["DVID API version", DVID_API_VERSION],
        ["Datastore version", DATASTORE_VERSION],
        ["Storage engines", ", ".join(_engines())],
    ]
    rows += [[f"  {name}", cls.type_version] for name, cls in registry.all_types().items()]
    rows.insert(4, ["Datatypes", ""])
    click.echo(table(rows))
    obj = _obj(ctx)
    client = DVIDClient(obj.server, timeout=min(obj.timeout, 3.0))
    try:
        info = client.server_info()
    except DVIDClientError as exc:
        click.echo(f"\nServer {client.server}: {exc}")
        return
    finally:
        client.close()
    click.echo(f"\nServer {client.server}:")
    click.echo("\n".join("  " + line for line in table([[k, str(v)] for k, v in info.items()]).splitlines()))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--compiled", is_flag=True, help="Every type the server supports, not just those in use.")
@click.pass_context
def types(ctx: click.Context, compiled: bool) -> None:
    """Datatypes in use on the server (name and URL)."""
    client = _obj(ctx).client
    found = client.compiled_types() if compiled else client.types()
    if not found:
        click.echo("No datatypes in use (try --compiled).")
        return
    for name, url in sorted(found.items()):
        click.echo(f"{name:<20} {url}")


@cli.command("help", context_settings=CONTEXT_SETTINGS)
@click.argument("typename", required=False)
@click.pass_context
def help_(ctx: click.Context, typename: str | None) -> None:
    """A datatype's API help from the server, or without TYPENAME this usage."""
    if not typename:
        click.echo(ctx.parent.get_help() if ctx.parent else ctx.get_help())
        return
    click.echo(_obj(ctx).client.help(typename).rstrip("\n"))


# ---- push / pull -----------------------------------------------------------------------------------
def _transfer(
    ctx: click.Context,
    source: str,
    dest: str,
    uuid: str,
    data: tuple[str, ...],
    flatten: bool,
    new_uuid: str | None,
    quiet: bool,
) -> None:
    from dvid.client import normalize_server
    from dvid.transfer.pipe import Progress, transfer

    if new_uuid is not None:
        if not flatten:
            raise click.UsageError("--uuid names a flattened copy: give --flatten too", ctx=ctx)
        if not re.fullmatch(r"[0-9a-fA-F]{32}", new_uuid):
            raise click.UsageError(f"--uuid must be 32 hexadecimal digits, not {new_uuid!r}", ctx=ctx)
        new_uuid = new_uuid.lower()
    obj = _obj(ctx)
    src = DVIDClient(source, admin_token=obj.admin_token, timeout=obj.timeout)
    dst = DVIDClient(dest, admin_token=obj.admin_token, timeout=obj.timeout)
    if normalize_server(source) == normalize_server(dest):
        fail("source and destination are the same server")
    with src, dst:
        result = transfer(
            src,
            dst,
            uuid,
            data=list(data),
            flatten=flatten,
            new_uuid=new_uuid,
            progress=Progress(False if quiet else None),
        )
    mode = "flattened version" if flatten else "version"
    click.echo(
        f"Transferred {mode} {result['target']} of repo {result['root']} to {dst.server}: "
        f"{result['versions']} new version(s), {result['kvs']} key-values, {result['bytes']} bytes"
    )


_DATA_OPTION = click.option(
    "--data", "data", multiple=True, metavar="NAME", help="Send only this instance (repeatable) [all]."
)
_FLATTEN_OPTION = click.option(
    "--flatten", is_flag=True, help="Send only the version's visible state, as the root of a new repo."
)
_NEW_UUID_OPTION = click.option(
    "--uuid",
    "new_uuid",
    metavar="UUID",
    help="With --flatten: the new repo's UUID (32 hex digits) [the version's own].",
)
_QUIET_OPTION = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
_SERVER_OPTION = click.option(
    "--server", "local", default=None, metavar="URL", help="The local side's server [the global --server]."
)


@cli.command("push", context_settings=CONTEXT_SETTINGS)
@click.argument("uuid")
@click.argument("remote")
@_DATA_OPTION
@_FLATTEN_OPTION
@_NEW_UUID_OPTION
@_QUIET_OPTION
@_SERVER_OPTION
@click.pass_context
def push(
    ctx: click.Context,
    uuid: str,
    remote: str,
    data: tuple[str, ...],
    flatten: bool,
    new_uuid: str | None,
    quiet: bool,
    local: str | None,
) -> None:
    """Send version UUID of --server, with its ancestors REMOTE lacks, to the server at REMOTE.

    Versions keep their UUIDs; a second push of a descendant sends only the new versions.
    Refused if REMOTE's history of the repo diverged. A failed push changes nothing on REMOTE.
    """
    _transfer(ctx, local or _obj(ctx).server, remote, uuid, data, flatten, new_uuid, quiet)


@cli.command("pull", context_settings=CONTEXT_SETTINGS)
@click.argument("remote")
@click.argument("uuid")
@_DATA_OPTION
@_FLATTEN_OPTION
@_NEW_UUID_OPTION
@_QUIET_OPTION
@_SERVER_OPTION
@click.pass_context
def pull(
    ctx: click.Context,
    remote: str,
    uuid: str,
    data: tuple[str, ...],
    flatten: bool,
    new_uuid: str | None,
    quiet: bool,
    local: str | None,
) -> None:
    """Fetch version UUID of the server at REMOTE, with its ancestors --server lacks (see push)."""
    _transfer(ctx, remote, local or _obj(ctx).server, uuid, data, flatten, new_uuid, quiet)


# ---- labelmap ------------------------------------------------------------------------------------
@cli.group(context_settings=CONTEXT_SETTINGS, no_args_is_help=True)
def labelmap() -> None:
    """labelmap tools: build a labelmap from a labelblk."""


@labelmap.command("from-labelblk", context_settings=CONTEXT_SETTINGS)
@click.argument("uuid")
@click.argument("labelblk")
@click.argument("labelmap_name", metavar="LABELMAP")
@click.option(
    "--max-downres",
    type=click.IntRange(0, 255),
    default=None,
    metavar="N",
    help="MaxDownresLevel of the labelmap if this creates it [as many levels as LABELBLK's pyramid].",
)
@click.option(
    "--step",
    type=click.IntRange(1, 1 << 16),
    default=None,
    metavar="BLOCKS",
    help="Blocks the server converts per request [the server's default, 512].",
)
@click.option("--restart", is_flag=True, help="Start over instead of continuing a conversion.")
@_QUIET_OPTION
@click.pass_context
def labelmap_from_labelblk(
    ctx: click.Context,
    uuid: str,
    labelblk: str,
    labelmap_name: str,
    max_downres: int | None,
    step: int | None,
    restart: bool,
    quiet: bool,
) -> None:
    """Build labelmap LABELMAP from labelblk LABELBLK of the same repo at version UUID.

    Every block of LABELBLK becomes a block of LABELMAP, with label indexes, max labels and extents,
    then the pyramid (scales 1..MaxDownresLevel) is computed. LABELMAP is created if missing, with
    LABELBLK's BlockSize, VoxelSize and VoxelUnits. The server does the work a step at a time and
    records where it stands: an interrupted conversion continues when the command is run again.
    """
    from dvid.conversion import Bars, ConversionError, convert, prepare

    client = _obj(ctx).client
    try:
        target = prepare(client, uuid, labelblk, labelmap_name, max_downres)
    except ConversionError as exc:
        fail(str(exc))
    if target.created:
        levels = target.max_downres
        click.echo(f'Data "{labelmap_name}" [labelmap] added to node {uuid} (MaxDownresLevel {levels})')
    try:
        done = convert(
            client, uuid, labelblk, labelmap_name, step=step, restart=restart,
            bars=Bars(labelmap_name, False if quiet else None),
        )  # fmt: skip
    except KeyboardInterrupt:
        fail("interrupted: run the same command again to continue the conversion")
    click.echo(
        f"labelmap {labelmap_name} built from labelblk {labelblk} at {uuid}: {done['source_blocks']} blocks,"
        f" {done['max_downres']} pyramid scale(s)"
    )


cli.add_command(ingest_command)
cli.add_command(export_command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="dvid")


if __name__ == "__main__":
    main()
