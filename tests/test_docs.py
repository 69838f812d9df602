"""docs/api is generated from the help texts; README commands stay true."""

from __future__ import annotations

from pathlib import Path

from dvid import docgen

ROOT = Path(__file__).resolve().parent.parent


def test_docs_api_matches_help_texts():
    pages = docgen.render()
    for name, text in pages.items():
        path = docgen.DOCS_API / name
        assert path.exists(), f"missing docs/api/{name}: run python -m dvid.docgen"
        assert path.read_text() == text, f"docs/api/{name} is stale: run python -m dvid.docgen"


def test_every_registered_type_has_a_page_and_help():
    pages = docgen.render()
    for name in ("keyvalue",):
        assert f"{name}.md" in pages
        assert len(pages[f"{name}.md"]) > 500, "a datatype's help text is its API reference"


def test_readme_names_the_two_setup_commands_and_ci_runs_the_tests():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "dvid serve" in readme
    assert "python -m pytest" in readme and "python -m pytest" in ci
