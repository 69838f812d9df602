"""The shell examples of README.md and docs/*.md run as written against a live ``dvid serve``.

Every fenced ``bash``/``sh``/``shell`` block of a document runs, in order, in one bash process
(``set -eo pipefail``: the first failing command fails the test) in a fresh directory, against a
``dvid serve`` subprocess on a free port (``localhost:8000`` in the text is rewritten to it). A
block that cannot run here (one that installs, or needs systemd) is preceded by an HTML comment
``<!-- not-run: why -->``. ``console`` blocks are transcripts, not scripts, and are not run.

``# → TEXT`` after a command, on its line or alone on the next, is what the command prints:
the test asserts it (``<uuid>`` stands for any 32-hex-digit UUID).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
SHELLS = ("bash", "sh", "shell")
NOT_RUN = re.compile(r"^<!--\s*not-run\b.*-->$")
FENCE = re.compile(r"^```(\S*)\s*$")
OUTPUT = "# → "
UUID = "<uuid>"


@dataclass
class Command:
    text: str
    line: int  # in the markdown file
    expected: str | None = None


@dataclass
class Document:
    path: Path
    runnable: list[list[Command]] = field(default_factory=list)
    not_run: list[int] = field(default_factory=list)  # first lines of blocks marked not-run


def _commands(lines: list[tuple[int, str]], path: Path) -> list[Command]:
    """A block's logical commands (continued lines joined), each with its ``# →`` output."""
    commands: list[Command] = []
    current: list[str] = []
    start = 0
    depth = 0  # inside for/while/if ... done/fi
    for number, raw in lines:
        stripped = raw.strip()
        if stripped.startswith(OUTPUT.strip()) and not current:
            if not commands or commands[-1].expected is not None:
                raise AssertionError(f"{path.name}:{number}: an output line follows no command")
            commands[-1].expected = stripped[len(OUTPUT) :]
            continue
        code, _, out = raw.partition(OUTPUT)
        if not current:
            start = number
        current.append(code.rstrip() if out else raw)
        words = code.split()
        depth += sum(w in ("do", "then") for w in words) - sum(w in ("done", "fi") for w in words)
        continued = code.rstrip().endswith(("\\", "|", "&&", "||")) or depth > 0
        if out and continued:
            raise AssertionError(f"{path.name}:{number}: '# →' inside a command that goes on")
        if not continued:
            commands.append(Command("\n".join(current), start, out.strip() if out else None))
            current = []
    if current:
        raise AssertionError(f"{path.name}: a shell block ends inside a command (line {start})")
    return commands


def parse(path: Path) -> Document:
    doc = Document(path)
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group(1):
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        if m.group(1) in SHELLS:
            before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            if NOT_RUN.match(before):
                doc.not_run.append(i + 1)
            else:
                body = [(n + 1, lines[n]) for n in range(i + 1, end)]
                doc.runnable.append(_commands(body, path))
        i = end + 1
    return doc


DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(tmp_path):
    """``dvid serve`` in a subprocess, run from an empty directory: ``(port, directory)``."""
    port = _free_port()
    work = tmp_path / "work"
    work.mkdir()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvid", "serve", "--port", str(port)],
        cwd=work,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/heartbeat", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "dvid serve did not answer within 30 s"
            time.sleep(0.1)
        yield port, work
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def script_for(doc: Document, port: int, outdir: Path) -> tuple[str, list[tuple[Command, Path]]]:
    """The document's runnable blocks as one bash script; each command with an expected output
    writes it to a file of ``outdir``."""
    parts = ["set -eo pipefail", "set -x"]
    checks: list[tuple[Command, Path]] = []
    for block in doc.runnable:
        for cmd in block:
            text = cmd.text.replace("localhost:8000", f"localhost:{port}")
            if cmd.expected is None:
                parts.append(text)
                continue
            out = outdir / f"{len(checks):03d}"
            parts.append(f"{{\n{text}\n}} > '{out}'")
            checks.append((cmd, out))
    return "\n".join(parts) + "\n", checks


def matches(expected: str, printed: str) -> bool:
    pattern = "[0-9a-f]{32}".join(re.escape(piece) for piece in expected.split(UUID))
    return re.fullmatch(pattern, printed.rstrip("\n")) is not None


@pytest.mark.parametrize("path", [p for p in DOCUMENTS if parse(p).runnable], ids=lambda p: p.name)
def test_shell_examples_run_as_written(path: Path, live_server, tmp_path):
    port, work = live_server
    assert shutil.which("curl"), (
        "the documentation's examples use curl: install it (Debian: apt-get install curl)"
    )
    doc = parse(path)
    outdir = tmp_path / "outputs"
    outdir.mkdir()
    script, checks = script_for(doc, port, outdir)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        ["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, f"{path.name}: a command failed\n{proc.stderr[-4000:]}"
    for cmd, out in checks:
        printed = out.read_text()
        assert matches(cmd.expected or "", printed), (
            f"{path.name}:{cmd.line}: `{cmd.text}` printed {printed!r}, the document says {cmd.expected!r}"
        )


def test_readme_quickstart_is_run_and_checked():
    """The README's examples are run (not marked away) and most of what they print is checked."""
    doc = parse(ROOT / "README.md")
    commands = [cmd for block in doc.runnable for cmd in block]
    assert len(doc.runnable) >= 3 and len(commands) >= 30
    assert sum(cmd.expected is not None for cmd in commands) >= 12
    assert all("curl -s " not in c.text or "-w '%{http_code}" in c.text for c in commands), (
        "a curl whose failure must show uses -sSf"
    )


def test_readme_setup_is_exactly_two_commands_and_ci_runs_the_second():
    doc = parse(ROOT / "README.md")
    lines = (ROOT / "README.md").read_text().splitlines()
    start = doc.not_run[0]
    end = next(j for j in range(start, len(lines)) if lines[j].startswith("```"))
    commands = [ln for ln in lines[start:end] if ln.strip() and not ln.lstrip().startswith("#")]
    assert commands == ["pip install . && dvid serve", "pip install -e '.[test]' && python -m pytest"]
    assert "pip install -e '.[test]' && python -m pytest" in (ROOT / ".ci" / "run").read_text()


def test_not_run_marks_are_rare_and_explained():
    marked = {p.relative_to(ROOT).as_posix(): parse(p).not_run for p in DOCUMENTS if parse(p).not_run}
    assert sum(len(v) for v in marked.values()) <= 6, marked
    for p in DOCUMENTS:
        for line in p.read_text().splitlines():
            if NOT_RUN.match(line.strip()):
                assert re.match(r"^<!--\s*not-run:\s*\S", line.strip()), (
                    f"{p.name}: say why a block is not run"
                )


def test_output_comments_are_checked_literally():
    assert matches('{"child":"<uuid>"}', '{"child":"0123456789abcdef0123456789abcdef"}')
    assert not matches('{"child":"<uuid>"}', '{"child":"0123"}')
    assert matches("world", "world\n") and not matches("world", "world!")
    cmds = _commands(
        [(1, "echo a   # → a"), (2, "printf 'b\\n'"), (3, "# → b"), (4, "echo c  # not output")], ROOT
    )
    assert [(c.text, c.expected) for c in cmds] == [
        ("echo a", "a"),
        ("printf 'b\\n'", "b"),
        ("echo c  # not output", None),
    ]
