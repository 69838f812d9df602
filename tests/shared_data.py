"""Where DVID's own test data is: ``shared/data`` beside the repository (as CI lays it out), or the
directory named by ``DVID_TEST_DATA``."""

from __future__ import annotations

import os
from pathlib import Path

DATA = Path(os.environ.get("DVID_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
