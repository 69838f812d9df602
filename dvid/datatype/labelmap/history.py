"""Reading labelmap's mutation log: ``mutations`` (one version's edits), ``mutations-range`` (a
chain of versions), ``history`` (the edits that shaped a body), ``supervoxel-splits`` and
``lastmod`` (a body's last edit, from its label index)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from dvid.dag.ancestry import Ancestry
from dvid.datatype.common import jsonio
from dvid.datatype.common.numbers import parse_label
from dvid.datatype.common.request import InstanceRequest, json_bytes_response
from dvid.datatype.labelmap import mutationlog
from dvid.datatype.labelmap.core import LabelMapCore
from dvid.errors import BadRequest


class LabelMapHistory(LabelMapCore):
    """The mutation log's endpoints over :class:`LabelMapCore`."""

    async def handle_mutations(self, req: InstanceRequest) -> web.StreamResponse:
        records = await req.small(mutationlog.records, req.ctx, req.uuid)
        return json_bytes_response(b"[" + b",".join(records) + b"]")

    def version_chain(self, begin: str, end: str) -> list[tuple[str, Ancestry]]:
        """Versions from ``end`` up its first parents to ``begin`` (inclusive) or the root."""
        assert self.repo_access is not None
        end_ancestry = self.repo_access.version_ancestry(end)
        begin_version = self.repo_access.version_ancestry(begin).version
        chain = []
        version: int | None = end_ancestry.version
        while version is not None:
            uuid = self.repo_access.version_uuid(version)
            chain.append((uuid, self.repo_access.version_ancestry(uuid)))
            if version == begin_version:
                break
            version = self.repo_access.first_parent(version)
        return chain

    async def handle_mutations_range(self, req: InstanceRequest) -> web.StreamResponse:
        if len(req.args) < 2:
            raise BadRequest("expect mutations-range/<begin UUID>/<end UUID>")

        def gather() -> list[bytes]:
            out: list[bytes] = []
            for uuid, ancestry in self.version_chain(req.args[0], req.args[1]):
                out += mutationlog.records(self.context_at(ancestry), uuid)
            return out

        records = await asyncio.to_thread(gather)
        return json_bytes_response(b"[" + b",".join(records) + b"]")

    async def handle_lastmod(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("lastmod")
        label = parse_label(req.arg(0, "a label"))
        index = await req.small(self.indexes.get, req.ctx, label)
        if index is None or index.is_empty:
            return web.Response(status=404)
        user, app, when = map(json.dumps, (index.last_mod_user, index.last_mod_app, index.last_mod_time))
        body = (
            f'{{"mutation id": {index.last_mutid}, "last mod user": {user}, '
            f'"last mod app": {app}, "last mod time": {when} }}'
        )
        return web.Response(body=body.encode(), content_type="application/json")

    async def handle_supervoxel_splits(self, req: InstanceRequest) -> web.StreamResponse:
        """``["uuid", [[mutid, old, remain, split], ...], ...]`` over this version and its ancestors,
        nearest first."""

        def gather() -> list[Any]:
            out: list[Any] = []
            assert self.repo_access is not None
            for version in sorted(req.ancestry.order, key=req.ancestry.order.__getitem__):
                uuid = self.repo_access.version_uuid(version)
                splits = []
                for raw in mutationlog.records(req.ctx, uuid):
                    rec = json.loads(raw)
                    if rec.get("Action") == "split-supervoxel-complete":
                        splits.append(
                            [
                                rec["MutationID"],
                                rec["Supervoxel"],
                                rec["RemainSupervoxel"],
                                rec["SplitSupervoxel"],
                            ]
                        )
                    elif rec.get("Action") == "split-complete":
                        for old, pair in rec.get("SVSplits", {}).items():
                            splits.append([rec["MutationID"], int(old), pair["Remain"], pair["Split"]])
                if splits:
                    out += [uuid, splits]
            return out

        return json_bytes_response(jsonio.dumps(await asyncio.to_thread(gather)))

    async def handle_history(self, req: InstanceRequest) -> web.StreamResponse:
        """The edits, in the versions from ``from`` down to ``to``, of the bodies that at ``from``
        held the supervoxels ``label`` has at ``to``: DVID's objects written back to back."""
        if len(req.args) < 3:
            raise BadRequest(
                "ERROR: DVID requires label ID, 'from' UUID, and 'to' UUID to follow 'history' command"
            )
        label = parse_label(req.arg(0, "a label"))
        self.check_indexed("history")
        body = await asyncio.to_thread(self.history, label, req.args[1], req.args[2])
        return web.Response(body=body, content_type="application/json")

    def history(self, label: int, begin: str, end: str) -> bytes:
        assert self.repo_access is not None
        end_ctx = self.context_at(self.repo_access.version_ancestry(end))
        index = self.indexes.get(end_ctx, label)
        if index is None or index.is_empty:
            return b""
        chain = list(reversed(self.version_chain(begin, end)))  # oldest first
        begin_ctx = self.context_at(chain[0][1])
        tracked = set(self.mapping.lookup(begin_ctx, index.supervoxels()).tolist()) - {0}
        out: list[bytes] = []
        for uuid, ancestry in chain:
            for raw in mutationlog.records(self.context_at(ancestry), uuid):
                entry = _history_entry(json.loads(raw), tracked)
                if entry is not None:
                    out.append(entry)
        return b"".join(out)


def _history_entry(rec: dict[str, Any], tracked: set[int]) -> bytes | None:
    """One record as ``history`` writes it, if it touches a tracked body (tracking what it makes)."""
    action = rec.get("Action", "").removesuffix("-complete")
    fields: list[tuple[str, Any]]
    if action == "merge" and (rec["Target"] in tracked or tracked.intersection(rec["Labels"])):
        tracked.update([rec["Target"], *rec["Labels"]])
        fields = [("Target", rec["Target"]), ("Labels", rec["Labels"])]
    elif action == "cleave" and rec["OrigLabel"] in tracked:
        tracked.add(rec["CleavedLabel"])
        fields = [("OrigLabel", rec["OrigLabel"]), ("CleavedLabel", rec["CleavedLabel"]),
                  ("CleavedSupervoxels", rec.get("CleavedSupervoxels", []))]  # fmt: skip
    elif action == "split" and rec["Target"] in tracked:
        tracked.add(rec["NewLabel"])
        fields = [("Target", rec["Target"]), ("NewLabel", rec["NewLabel"]), ("Coarse", False)]
    elif action == "split-supervoxel" and rec["Body"] in tracked:
        fields = [("Supervoxel", rec["Supervoxel"]), ("SplitSupervoxel", rec["SplitSupervoxel"]),
                  ("RemainSupervoxel", rec["RemainSupervoxel"])]  # fmt: skip
    else:
        if action == "renumber" and rec["OrigLabel"] in tracked:
            tracked.add(rec["NewLabel"])
        return None
    body = ",".join(f'"{k}":{json.dumps(v, separators=(",", ":"))}' for k, v in fields)
    return f'{{"Action":"{action}",{body}}}'.encode()
