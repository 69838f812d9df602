"""The ``tarsupervoxels`` datatype: one blob per supervoxel, served per body as a tar archive.

Model methods (synchronous, each taking a :class:`~dvid.storage.versioned.DataContext`) come first,
then the short async handlers. Blobs are stored raw under ``blob_tkey(sv, extension)``; a body's
supervoxels come from the first synced :class:`~dvid.datatype.common.sync.SupervoxelSource`
(a labelmap) at the request's version.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from aiohttp import web

from dvid.datatype.base import Datatype
from dvid.datatype.common import jsonio, sync
from dvid.datatype.common.numbers import MAX_LABEL, parse_decimal
from dvid.datatype.common.prefetch import stream_prefetched
from dvid.datatype.common.request import (
    InstanceRequest,
    json_bytes_response,
    octet_response,
    text_response,
)
from dvid.datatype.common.route import BINARY, JSON, TAR, TEXT, Param, Route, query
from dvid.datatype.registry import register
from dvid.datatype.tarsupervoxels import settings as tsv_settings
from dvid.datatype.tarsupervoxels.help import HELP_TEXT
from dvid.datatype.tarsupervoxels.load import BodyReader, in_own_thread, load_archive
from dvid.datatype.tarsupervoxels.settings import KEY_CLASS, TarSupervoxelsSettings, blob_tkey
from dvid.datatype.tarsupervoxels.tarstream import body_archive
from dvid.errors import BadRequest, NotFound
from dvid.storage.versioned import DataContext

#: Supervoxels checked per batched existence read (``exists``, ``missing``, HEAD ``tarfile``).
EXISTS_BATCH = 10_000
#: Blobs of at most this size are read and written on the event loop (local stores).
INLINE_BYTES = 64 << 10

SUPERVOXEL = Param(
    "supervoxel", "integer", "A supervoxel id other than 0", minimum=1, maximum=MAX_LABEL, example="7"
)
BODY = Param("body", "integer", "A body id other than 0", minimum=1, maximum=MAX_LABEL, example="30")
HASH = query("hash", description="Hex MD5 of the request body, checked before it is used")


def _u64_arg(req: InstanceRequest, zero_message: str) -> int:
    """The id after the endpoint: a decimal u64 other than 0 (400 with DVID's messages)."""
    text = req.arg(0, "uint64")
    value = parse_decimal(text, signed=False)
    if value is None or value > MAX_LABEL:
        raise BadRequest(f"{text!r} after '{req.endpoint}' is not a decimal unsigned 64-bit integer")
    if value == 0:
        raise BadRequest(zero_message)
    return value


def parse_supervoxel_list(body: bytes) -> list[int]:
    """The ``exists`` request: a JSON array of u64 ids (400 "Bad exists request JSON: ..." else)."""
    try:
        ids = jsonio.loads(body)
    except BadRequest as exc:
        raise BadRequest(f"Bad exists request JSON: {exc.message}") from None
    if not isinstance(ids, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_LABEL for v in ids
    ):
        raise BadRequest("Bad exists request JSON: expected an array of unsigned 64-bit supervoxel ids")
    return ids


def json_bools(flags: list[bool]) -> bytes:
    return b"[" + b",".join(b"true" if f else b"false" for f in flags) + b"]"


@register
class TarSupervoxels(Datatype):
    """One blob per supervoxel; a body's blobs as a tar archive."""

    type_name = "tarsupervoxels"
    type_url = "github.com/janelia-flyem/dvid/datatype/tarsupervoxels"
    type_version = "0.1"
    help_text = HELP_TEXT
    Settings = TarSupervoxelsSettings
    sync_requires = (sync.SupervoxelSource,)
    settings: TarSupervoxelsSettings

    routes = (
        Route("info", ("POST",), "handle_post_info", summary='Change the Extension: {"Extension": "drc"}',
              consumes=(JSON,), produces=(TEXT,)),
        Route("supervoxel", ("GET",), "handle_get_supervoxel", mutates=False,
              summary="A supervoxel's blob", args=(SUPERVOXEL,), produces=(BINARY,), statuses=(404,)),
        Route("supervoxel", ("POST",), "handle_post_supervoxel",
              summary="Store the body as the supervoxel's blob", args=(SUPERVOXEL,), consumes=(BINARY,),
              produces=()),
        Route("supervoxel", ("DELETE",), "handle_delete_supervoxel",
              summary="Delete the supervoxel's blob at this version", args=(SUPERVOXEL,), produces=()),
        Route("tarfile", ("GET",), "handle_get_tarfile", mutates=False, heavy=True,
              summary="The blobs of a body's supervoxels as a tar archive (ascending supervoxel order)",
              args=(BODY,), produces=(TAR,)),
        Route("tarfile", ("HEAD",), "handle_head_tarfile", mutates=False,
              summary="200 if every supervoxel of the body has a blob, else 400", args=(BODY,),
              produces=()),
        Route("missing", ("GET",), "handle_missing", mutates=False,
              summary="The body's supervoxels without a blob, ascending", args=(BODY,)),
        Route("exists", ("GET",), "handle_exists", mutates=False,
              summary="Whether each supervoxel the body lists ([sv, ...]) has a blob", query=(HASH,),
              consumes=(JSON,)),
        Route("load", ("POST",), "handle_load", heavy=True,
              summary="Store the files of the tar archive sent, named <sv>.<extension>", consumes=(BINARY,),
              produces=()),
    )  # fmt: skip

    # ---- settings ----------------------------------------------------------------------------
    @classmethod
    def validate_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        tsv_settings.require_extension(settings)
        return super().validate_settings(settings)

    @property
    def extension(self) -> str:
        return self.settings.Extension

    def describe_change(
        self, tk: bytes, change: str, old: bytes | None, new: bytes | None
    ) -> list[dict[str, Any]]:
        """A blob by its file name (``<supervoxel>.<extension>``) and sizes."""
        if tk[0] != KEY_CLASS or len(tk) < 3:
            return super().describe_change(tk, change, old, new)
        return [{"change": change, "file": tk[2:].decode("ascii", "replace"),
                 "old_bytes": None if old is None else len(old),
                 "new_bytes": None if new is None else len(new)}]  # fmt: skip

    def extended_info(self) -> dict[str, Any]:
        return {"Extension": self.extension}

    # ---- model: blobs ------------------------------------------------------------------------
    def get_blob(self, ctx: DataContext, supervoxel: int) -> bytes | None:
        return ctx.get(blob_tkey(supervoxel, self.extension))

    def put_blob(self, ctx: DataContext, supervoxel: int, blob: bytes) -> None:
        ctx.put(blob_tkey(supervoxel, self.extension), blob)

    def delete_blob(self, ctx: DataContext, supervoxel: int) -> None:
        ctx.delete(blob_tkey(supervoxel, self.extension))

    def put_blobs(
        self, ctx: DataContext, items: list[tuple[int, bytes]], extension: str | None = None
    ) -> None:
        """Store several blobs in one atomic batch."""
        ext = extension or self.extension
        with ctx.batch() as batch:
            for supervoxel, blob in items:
                batch.put(blob_tkey(supervoxel, ext), blob)

    def read_blobs(
        self, ctx: DataContext, supervoxels: list[int], extension: str | None = None
    ) -> list[bytes | None]:
        """The blobs of several supervoxels in one batched read (None where there is none)."""
        ext = extension or self.extension
        return ctx.get_many([blob_tkey(sv, ext) for sv in supervoxels])

    def have_blobs(self, ctx: DataContext, supervoxels: list[int]) -> list[bool]:
        """Whether each supervoxel has a blob (0 never has), read in batches, blobs unread."""
        ext = self.extension
        out: list[bool] = []
        for start in range(0, len(supervoxels), EXISTS_BATCH):
            chunk = supervoxels[start : start + EXISTS_BATCH]
            found = ctx.exist_many([blob_tkey(sv, ext) for sv in chunk if sv])
            it = iter(found)
            out.extend(bool(sv) and next(it) for sv in chunk)
        return out

    def missing(self, ctx: DataContext, supervoxels: np.ndarray) -> list[int]:
        svs = supervoxels.tolist()
        return [sv for sv, present in zip(svs, self.have_blobs(ctx, svs), strict=True) if not present]

    def archive(self, ctx: DataContext, supervoxels: np.ndarray) -> Iterator[bytes]:
        """The tar archive of the supervoxels' blobs, as pieces (read in batches as it is consumed)."""
        ext = self.extension  # a concurrent change of the Extension does not affect this archive
        return body_archive(supervoxels.tolist(), ext, lambda svs: self.read_blobs(ctx, svs, ext))

    # ---- model: bodies -----------------------------------------------------------------------
    def supervoxel_source(self) -> sync.SupervoxelSource:
        """The first synced labelmap (400 if there is none)."""
        if self.repo_access is not None and self.meta.syncs:
            by_uuid = {inst.meta.data_uuid: inst for inst in self.repo_access.siblings()}
            for uuid in self.meta.syncs:
                inst = by_uuid.get(uuid)
                if isinstance(inst, sync.SupervoxelSource):
                    return inst
        raise BadRequest(f'data "{self.name}" is not synced with any labelmap instance')

    @staticmethod
    def _body_supervoxels(source: sync.SupervoxelSource, req: InstanceRequest, body: int) -> np.ndarray:
        return source.body_supervoxels(source.context_at(req.ancestry), body)

    async def body_supervoxels(self, req: InstanceRequest, body: int, refusal: str) -> np.ndarray:
        """The body's supervoxels at the request's version; 400 ``refusal`` if it has none."""
        source = self.supervoxel_source()
        svs = await asyncio.to_thread(self._body_supervoxels, source, req, body)
        if len(svs) == 0:
            raise BadRequest(refusal)
        return svs

    # ---- handlers: info ----------------------------------------------------------------------
    async def handle_post_info(self, req: InstanceRequest) -> web.StreamResponse:
        """Change the Extension (the only setting that may change)."""
        body = await req.json_object()
        extension = None
        for key, value in body.items():
            if key.lower() != "extension":
                raise BadRequest(f"POST info can change Extension only, not {key!r}")
            extension = tsv_settings.check_extension(value)
        if extension is not None:
            self.settings.Extension = extension
            self.meta.properties["settings"] = self.settings.model_dump(mode="json")
            await asyncio.to_thread(self.save)
        summary = f"Extension={extension}" if extension is not None else "nothing"
        return text_response(f"Changed {self.name!r} based on received configuration: {summary}\n")

    # ---- handlers: single supervoxels --------------------------------------------------------
    @staticmethod
    def _supervoxel(req: InstanceRequest) -> int:
        return _u64_arg(req, "Supervoxel 0 is protected background value and cannot be used")

    async def handle_get_supervoxel(self, req: InstanceRequest) -> web.StreamResponse:
        supervoxel = self._supervoxel(req)
        blob = await req.small(self.get_blob, req.ctx, supervoxel)
        if blob is None:
            raise NotFound(f"Supervoxel {supervoxel} not found")
        return octet_response(blob)

    async def handle_post_supervoxel(self, req: InstanceRequest) -> web.StreamResponse:
        supervoxel = self._supervoxel(req)
        blob = await req.body()
        if len(blob) <= INLINE_BYTES:
            await req.small(self.put_blob, req.ctx, supervoxel, blob)
        else:
            await asyncio.to_thread(self.put_blob, req.ctx, supervoxel, blob)
        return web.Response()

    async def handle_delete_supervoxel(self, req: InstanceRequest) -> web.StreamResponse:
        supervoxel = self._supervoxel(req)
        await req.small(self.delete_blob, req.ctx, supervoxel)
        return web.Response()

    async def handle_exists(self, req: InstanceRequest) -> web.StreamResponse:
        body = await req.body()
        expected = req.query.get("hash")
        if expected:
            actual = hashlib.md5(body, usedforsecurity=False).hexdigest()
            if expected.lower() != actual:
                raise BadRequest(f"content hash incorrect.  expected {expected}, got {actual}")
        supervoxels = parse_supervoxel_list(body)
        found = await asyncio.to_thread(self.have_blobs, req.ctx, supervoxels)
        return json_bytes_response(json_bools(found))

    # ---- handlers: bodies --------------------------------------------------------------------
    @staticmethod
    def _body(req: InstanceRequest) -> int:
        return _u64_arg(req, "Label 0 is protected background value and cannot be used")

    async def handle_get_tarfile(self, req: InstanceRequest) -> web.StreamResponse:
        body = self._body(req)
        refusal = f"can't send tarfile for label {body}: label {body} has no supervoxels"
        supervoxels = await self.body_supervoxels(req, body, refusal)
        return await stream_prefetched(req, TAR, self.archive(req.ctx, supervoxels))

    async def handle_head_tarfile(self, req: InstanceRequest) -> web.StreamResponse:
        body = self._body(req)
        refusal = f"can't send tarfile for label {body}: label {body} has no supervoxels"
        supervoxels = await self.body_supervoxels(req, body, refusal)
        missing = await asyncio.to_thread(self.missing, req.ctx, supervoxels)
        if missing:
            raise BadRequest(f"label {body} has {len(missing)} supervoxels without data, e.g. {missing[0]}")
        return web.Response()

    async def handle_missing(self, req: InstanceRequest) -> web.StreamResponse:
        body = self._body(req)
        refusal = f"can't get missing supervoxels: label {body} has no supervoxels"
        supervoxels = await self.body_supervoxels(req, body, refusal)
        missing = await asyncio.to_thread(self.missing, req.ctx, supervoxels)
        return json_bytes_response(jsonio.dumps(missing))

    # ---- handlers: load ----------------------------------------------------------------------
    async def handle_load(self, req: InstanceRequest) -> web.StreamResponse:
        ext, ctx = self.extension, req.ctx
        reader = BodyReader(req.body_chunks(), asyncio.get_running_loop())
        await in_own_thread(load_archive, reader, ext, lambda items: self.put_blobs(ctx, items, ext))
        return web.Response()
