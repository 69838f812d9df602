"""Headless Chromium for the console's tests and benchmark: Debian's ``chromium``, driven by Playwright.

No browser is downloaded (there may be no network): the tests use the system's Chromium. When it
is missing, the test session installs Debian's ``chromium`` package with apt-get (as root, or
through password-less sudo), as ``playwright install --with-deps`` does for its users; when that
is impossible :class:`BrowserMissing` names the package (the tests fail with it, never skip).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

PACKAGE = "chromium"
#: Where tests write screenshots (a CI artifact; ignored by git).
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "console"


class BrowserMissing(RuntimeError):
    """No Chromium could be found or installed."""


#: What the machine's closed network needs: no background connections, no first-run work.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _found() -> str | None:
    for candidate in (os.environ.get("DVID_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _apt_install() -> str:
    """Install Debian's chromium; what apt-get said (for the failure message)."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available on this machine"
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    out = []
    for args in (["apt-get", "install", "-y", "--no-install-recommends", PACKAGE], ["apt-get", "update"],
                 ["apt-get", "install", "-y", "--no-install-recommends", PACKAGE]):  # fmt: skip
        if args[1] == "install" and _found():
            break
        proc = subprocess.run(prefix + args, env=env, capture_output=True, text=True, timeout=900)
        out.append(f"$ {' '.join(prefix + args)} -> {proc.returncode}\n{proc.stderr[-800:]}")
    return "\n".join(out)


def chromium_path() -> str:
    """The system Chromium, installed from Debian's package if needed; BrowserMissing otherwise."""
    path = _found()
    if path is None:
        report = _apt_install()
        path = _found()
        if path is None:
            raise BrowserMissing(
                f"the console's browser tests need Chromium: install Debian's package '{PACKAGE}'"
                f" (apt-get install {PACKAGE}) or set DVID_CHROMIUM to a Chromium binary.\n{report}"
            )
    return path
