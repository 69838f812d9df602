"""annotation's three indexes against a plain dict model, under random posts, deletes, moves and
label writes (hypothesis), through the model methods of a live server's instances."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvid.datatype.common.elements import parse_elements
from dvid.datatype.common.geometry import Box
from dvid.errors import BadRequest

EDGE = 40
BS = 16
TAGS = ("a", "b", "c")
KINDS = ("PreSyn", "PostSyn", "Note")

coord = st.integers(0, EDGE - 1)
point = st.tuples(coord, coord, coord)
element = st.fixed_dictionaries(
    {"Pos": point, "Kind": st.sampled_from(KINDS), "Tags": st.lists(st.sampled_from(TAGS), unique=True)}
)
op = st.one_of(
    st.tuples(st.just("post"), st.lists(element, min_size=1, max_size=6)),
    st.tuples(st.just("delete"), st.integers(0, 1000)),
    st.tuples(st.just("move"), st.integers(0, 1000), point),
    st.tuples(st.just("label"), point, st.tuples(st.integers(1, 20), st.integers(1, 20), st.integers(1, 20)),
              st.integers(0, 3)),
)  # fmt: skip


def setup(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelblk", "seg", BlockSize=f"{BS},{BS},{BS}")
    server.new_instance(uuid, "annotation", "synapses")
    r = requests.post(server.api(f"node/{uuid}/synapses/sync"), json={"sync": "seg"}, timeout=10)
    assert r.status_code == 200
    repo, node = server.manager.resolve(uuid)
    ancestry = repo.dag.ancestry(node.version)
    ann, seg = repo.instance("synapses"), repo.instance("seg")
    return ann, ann.context(ancestry), seg, seg.context(ancestry), ancestry


def check(ann, ctx, seg, sctx, model: dict) -> None:
    stored = {}
    for _, value in ann.iter_all_blocks(ctx):
        for e in json.loads(value):
            assert tuple(e["Pos"]) not in stored
            stored[tuple(e["Pos"])] = (e["Kind"], sorted(e["Tags"] or ()))
    assert stored == model
    for tag in TAGS:
        got = json.loads(ann.index_json(ctx, b"\x46\x01" + tag.encode() + b"\x00", tag, ""))
        assert sorted(tuple(e["Pos"]) for e in got) == sorted(p for p, (_, t) in model.items() if tag in t)
    pts = sorted(model)
    labels = seg.labels_at(sctx, np.array(pts, dtype=np.int64).reshape(-1, 3)).tolist()
    want = Counter()
    for p, label in zip(pts, labels, strict=True):
        want[(model[p][0], label)] += 1
    for label in range(1, 4):
        got = json.loads(ann.index_json(ctx, b"\x47\x01" + label.to_bytes(8, "big"), "label", ""))
        assert sorted(tuple(e["Pos"]) for e in got) == [
            p for p, lb in zip(pts, labels, strict=True) if lb == label
        ]
        for e in got:
            assert e["Kind"] == model[tuple(e["Pos"])][0]
    assert ann.label_kind_counts(ctx) == dict(want)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=1, max_size=25))
def test_indexes_agree_with_a_dict_model(server, ops):
    ann, ctx, seg, sctx, ancestry = setup(server)
    model: dict = {}
    for o in ops:
        if o[0] == "post":
            els = [{**e, "Pos": list(e["Pos"])} for e in o[1]]
            ann.post_elements(ctx, ancestry, parse_elements(els))
            for e in els:
                model[tuple(e["Pos"])] = (e["Kind"], sorted(e["Tags"]))
        elif o[0] in ("delete", "move") and model:
            p = sorted(model)[o[1] % len(model)]
            if o[0] == "delete":
                ann.delete_element(ctx, ancestry, p)
                del model[p]
            else:
                to = o[2]
                if to in model and to != p:
                    try:
                        ann.move_element(ctx, ancestry, p, to)
                    except BadRequest:
                        pass
                    else:
                        raise AssertionError("move onto an element must fail")
                else:
                    ann.move_element(ctx, ancestry, p, to)
                    model[to] = model.pop(p)
        elif o[0] == "label":
            _, off, size, label = o
            data = np.full(size[::-1], label, dtype=np.uint64)
            seg.write(sctx, Box(off, size), data)
        check(ann, ctx, seg, sctx, model)
