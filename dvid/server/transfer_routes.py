"""Push and pull endpoints: ``/api/repo/{uuid}/transfer/{have,export,check,import}`` (see dvid/transfer)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from dvid.datatype.common import jsonio
from dvid.datatype.common.body import body_encoding
from dvid.datatype.common.request import json_response
from dvid.datatype.common.route import JSON
from dvid.errors import BadRequest, UnsupportedMediaType
from dvid.server.repo_routes import UUID
from dvid.server.routing import ApiRoute, PathValues
from dvid.server.state import body_of, state_of
from dvid.transfer import stream
from dvid.transfer.export import export_stream, have_record, plan_export
from dvid.transfer.importer import Importer, clean_markers, wait_for_cleaning

CONTENT_TYPE = "application/x-dvid-transfer"


async def have(request: web.Request, path: PathValues) -> web.StreamResponse:
    manager = state_of(request).manager
    with manager.locked():
        repo, node = manager.resolve(path["uuid"])
        record = have_record(repo)
    record["target"] = node.uuid
    return json_response(record)


async def _export_params(request: web.Request) -> dict[str, Any]:
    body = jsonio.loads_object(await body_of(request), allow_empty=True)
    have_rec = body.get("have")
    if have_rec is not None and not isinstance(have_rec, dict):
        raise BadRequest("'have' must be an object (the receiver's transfer/have answer) or null")
    data = body.get("data") or []
    if not isinstance(data, list) or not all(isinstance(d, str) for d in data):
        raise BadRequest("'data' must be a list of instance names")
    flatten = body.get("flatten", False)
    if not isinstance(flatten, bool):
        raise BadRequest("'flatten' must be true or false")
    return {"have": have_rec, "data": data, "flatten": flatten}


async def export(request: web.Request, path: PathValues) -> web.StreamResponse:
    manager = state_of(request).manager
    params = await _export_params(request)
    plan = await asyncio.to_thread(
        plan_export, manager, path["uuid"], params["have"], params["data"], params["flatten"]
    )
    # No length is known: aiohttp sends it chunked to HTTP/1.1 clients and closes the connection
    # after it for HTTP/1.0 ones (forcing chunked encoding would fail on those).
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
    await response.prepare(request)
    chunks = export_stream(plan)
    pending: asyncio.Future | None = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
    try:
        with manager.jobs.run("export", f"sending version {path['uuid'][:8]} (push or pull)", "bytes") as job:
            while pending is not None:
                chunk = await pending
                pending = None
                if chunk is None:
                    break
                pending = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
                await response.write(chunk)
                job.advance(len(chunk))
    finally:
        if pending is not None:
            with contextlib.suppress(Exception):
                await pending
        await asyncio.to_thread(chunks.close)
    await response.write_eof()
    return response


def _record_limit(request: web.Request) -> int:
    """The largest record accepted: a value this server accepts in a request body must fit."""
    return max(stream.MAX_RECORD, state_of(request).config.server.max_body_bytes + (1 << 20))


async def _read_record(content: Any, limit: int) -> tuple[bytes, int, bytes]:
    """One record; the payload is read as it arrives (a corrupt length allocates nothing)."""
    head = await content.readexactly(stream.RECORD_HEAD.size)
    rtype, length = stream.RECORD_HEAD.unpack(head)
    if length > limit:
        raise stream.StreamError(f"record of {length} bytes is over the limit of {limit} bytes")
    payload = await content.readexactly(length) if length else b""
    return head, rtype, payload


async def check(request: web.Request, path: PathValues) -> web.StreamResponse:
    """Dry run of an import's checks for a stream header (msgpack body): 200 or the refusal."""
    manager = state_of(request).manager
    header = stream.unpackb(await body_of(request))
    await asyncio.to_thread(Importer, manager, header)
    return json_response({"ok": True})


async def import_stream(request: web.Request, path: PathValues) -> web.StreamResponse:
    manager = state_of(request).manager
    if body_encoding(request) != "identity":
        raise UnsupportedMediaType("a transfer stream is sent without a Content-Encoding")
    content = request.content
    limit = _record_limit(request)
    digest = stream.new_digest()
    try:
        preamble = await content.readexactly(len(stream.PREAMBLE))
        stream.check_preamble(preamble)
        digest.update(preamble)
        head, rtype, payload = await _read_record(content, limit)
    except asyncio.IncompleteReadError:
        raise BadRequest("the transfer stream ended before its header") from None
    except stream.StreamError as exc:
        raise BadRequest(str(exc)) from None
    if rtype != stream.HEADER:
        raise BadRequest("a transfer stream must start with its header")
    digest.update(head)
    digest.update(payload)
    header = stream.unpackb(payload)
    importer = await asyncio.to_thread(Importer, manager, header)
    if header["target"] != path["uuid"]:
        raise BadRequest(f"the stream carries version {header['target']}, not {request.match_info['uuid']}")
    received = len(preamble) + len(head) + len(payload)

    def process(head: bytes, rtype: int, payload: bytes) -> None:
        digest.update(head)
        digest.update(payload)
        if rtype == stream.KVS:
            importer.write(payload)
        elif rtype != stream.VERSION:
            raise stream.StreamError(f"unknown record type {rtype}")

    pending: asyncio.Future | None = None
    job = manager.jobs.start(
        "import", f"receiving version {path['uuid'][:8]} (push or pull)", "bytes", request.content_length
    )
    job.advance(received)
    try:
        await asyncio.to_thread(importer.reserve)
        try:
            while True:
                head, rtype, payload = await _read_record(content, limit)
                received += len(head) + len(payload)
                job.advance(len(head) + len(payload))
                if pending is not None:
                    fut, pending = pending, None
                    await fut
                if rtype == stream.END:
                    end = stream.unpackb(payload)
                    if not isinstance(end, dict):
                        raise stream.StreamError("malformed END record")
                    if end.get("digest") != digest.hexdigest():
                        raise stream.StreamError("checksum mismatch: the stream was corrupted")
                    if end.get("kvs") != importer.kvs:
                        raise stream.StreamError(f"expected {end.get('kvs')} key-values, got {importer.kvs}")
                    break
                pending = asyncio.ensure_future(asyncio.to_thread(process, head, rtype, payload))
            if await content.read(1):
                raise stream.StreamError("data after the end of the transfer stream")
        except asyncio.IncompleteReadError:
            raise BadRequest(
                "the transfer stream ended early (sender interrupted?): nothing was imported"
            ) from None
        except BadRequest as exc:  # StreamError too: a malformed record
            raise BadRequest(f"{exc.message}: nothing was imported") from None
        result = await asyncio.to_thread(importer.commit)
    except BaseException as exc:
        manager.jobs.finish(job, f"{type(exc).__name__}: {exc}")
        if pending is not None:
            with contextlib.suppress(BaseException):
                await pending
        await asyncio.shield(asyncio.to_thread(importer.abort))
        raise
    manager.jobs.finish(job)
    result["bytes"] = received
    return json_response(result)


async def _startup(app: web.Application) -> None:
    from dvid.server.state import STATE_KEY

    await asyncio.to_thread(clean_markers, app[STATE_KEY].manager)


async def _cleanup(app: web.Application) -> None:
    await asyncio.to_thread(wait_for_cleaning, 10.0)


def setup(app: web.Application) -> None:
    """Register the import-marker cleanup at start and the wait for it at the end."""
    app.on_startup.append(_startup)
    app.on_cleanup.insert(0, _cleanup)


routes = (
    ApiRoute("/api/repo/{uuid}/transfer/have", ("GET", "HEAD"), have, "What this server holds of the repo",
             params=(UUID,)),
    ApiRoute("/api/repo/{uuid}/transfer/export", ("GET", "POST"), export, "The transfer stream of a version",
             params=(UUID,), consumes=(JSON,), produces=(CONTENT_TYPE,)),
    ApiRoute("/api/repo/{uuid}/transfer/check", ("POST",), check, "Dry run of an import's checks",
             params=(UUID,), consumes=("application/msgpack",)),
    ApiRoute("/api/repo/{uuid}/transfer/import", ("POST",), import_stream, "Import a transfer stream",
             params=(UUID,), consumes=(CONTENT_TYPE,)),
)  # fmt: skip
