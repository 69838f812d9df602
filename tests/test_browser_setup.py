"""How the browser tests find Chromium (bench/browser.py): the system's, else Debian's package
installed with apt-get, else a failure that names the package. The missing-browser paths are
simulated (this machine has Chromium); the found path is real."""

from __future__ import annotations

import subprocess

import pytest

from bench import browser


@pytest.mark.timeout(900)  # may install Debian's chromium first
def test_the_system_chromium_is_found_and_runs():
    path = browser.chromium_path()
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Chromium" in out.stdout


def test_dvid_chromium_overrides_the_search(monkeypatch, tmp_path):
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\necho Chromium 1.0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("DVID_CHROMIUM", str(fake))
    assert browser.chromium_path() == str(fake)


def test_a_missing_browser_is_installed_with_apt_get(monkeypatch):
    """No Chromium anywhere: apt-get installs Debian's package (as root), then it is used."""
    installed = {"done": False}
    calls = []

    def run(args, **kwargs):
        calls.append(args)
        if args[-1] == browser.PACKAGE and "install" in args:
            installed["done"] = True
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(browser, "_found", lambda: "/usr/bin/chromium" if installed["done"] else None)
    monkeypatch.setattr(browser.subprocess, "run", run)
    monkeypatch.setattr(browser.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        browser.shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None
    )
    assert browser.chromium_path() == "/usr/bin/chromium"
    assert calls[0] == ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]


def test_a_browser_that_cannot_be_had_fails_naming_the_package(monkeypatch):
    monkeypatch.setattr(browser, "_found", lambda: None)
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)  # no apt-get either
    with pytest.raises(browser.BrowserMissing, match="install Debian's package 'chromium'") as info:
        browser.chromium_path()
    assert "apt-get is not available" in str(info.value)
