"""Where DVID's test volumes are: ``tests/data`` in this repository (see its README for their origin
and licence), or the directory named by ``DVID_TEST_DATA``."""

from __future__ import annotations

import os
from pathlib import Path

DATA = Path(os.environ.get("DVID_TEST_DATA") or Path(__file__).resolve().parent / "data")
