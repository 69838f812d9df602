"""What of a record a read returns: ``show`` (stamps) and ``fields`` (spec §5.6)."""

from __future__ import annotations

from dataclasses import dataclass

from dvid.datatype.neuronjson.values import META_SUFFIXES, Record


@dataclass(frozen=True)
class Selection:
    """``show=user`` keeps ``*_user`` fields, ``show=time`` keeps ``*_time``, ``show=all`` both;
    anything else hides both (by suffix). ``fields`` (None: all) lists the fields to return:
    ``bodyid`` always comes along, and each listed field brings its stamps when ``show`` allows."""

    users: bool = False
    times: bool = False
    fields: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, show: str | None, fields: str | None) -> Selection:
        show = (show or "").strip().lower()
        listed = None
        if fields is not None and fields.strip():
            listed = tuple(dict.fromkeys(f for f in (s.strip() for s in fields.split(",")) if f))
        return cls(show in ("user", "all"), show in ("time", "all"), listed)

    @property
    def everything(self) -> bool:
        """Whether records are returned whole."""
        return self.users and self.times and self.fields is None

    def _allowed(self, field: str) -> bool:
        if field.endswith("_user"):
            return self.users
        if field.endswith("_time"):
            return self.times
        return True

    def apply(self, record: Record) -> Record:
        """The selected part of ``record`` (a new dict unless the record is returned whole)."""
        if self.everything:
            return record
        if self.fields is None:
            if not (self.users or self.times):  # the default: no metadata
                return {f: v for f, v in record.items() if not f.endswith(META_SUFFIXES)}
            return {f: v for f, v in record.items() if self._allowed(f)}
        out: Record = {}
        if "bodyid" in record:
            out["bodyid"] = record["bodyid"]
        for f in self.fields:
            if f in record and self._allowed(f):
                out[f] = record[f]
                for meta in (f + "_user", f + "_time"):
                    if meta in record and self._allowed(meta):
                        out[meta] = record[meta]
        return out

    def wants_bodyid_only(self) -> bool:
        """Whether ``bodyid`` was asked for by name (then records that hold nothing else count)."""
        return self.fields is not None and "bodyid" in self.fields
