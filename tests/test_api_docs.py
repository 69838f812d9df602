"""docs/python.md runs as written: its ```python blocks, in order, in one namespace, against a live
server (``http://localhost:8000`` in the text is rewritten to the test server's address)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[int, str]]:
    text = DOC.read_text()
    return [(text[: m.start()].count("\n") + 2, m.group(1)) for m in BLOCK.finditer(text)]


def test_the_tour_has_examples_of_every_part():
    code = "\n".join(body for _, body in blocks())
    assert len(blocks()) >= 15
    for needle in ("connect(", ".merge(", ".cleave(", ".sparsevol(", ".dataframe(", ".get_many(",
                   ".scale(", ".branch(", ".tag(", "Conflict", "NotFound"):  # fmt: skip
        assert needle in code, needle


def test_every_python_block_of_the_tour_runs(server):
    namespace: dict[str, object] = {"__name__": "tour"}
    printed = io.StringIO()
    for line, body in blocks():
        code = compile(body.replace("http://localhost:8000", server.url), f"{DOC.name}:{line}", "exec")
        with contextlib.redirect_stdout(printed):
            exec(code, namespace)
    out = printed.getvalue()
    assert "[11 21 21]" in out  # label_at of three points
    # each error the tour provokes was raised (its except branch printed)
    assert "409 found different values for a key among the parents of a merge" in out
    assert 'Cannot do POST on endpoint "raw" of locked node' in out
    assert "404 invalid data instance name 'no-such-instance'" in out
    assert "z start -10 is negative" in out
