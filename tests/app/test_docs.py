"""Docs that cannot drift: every Python block in README.md and docs/*.md runs; every share-link
key, link source and data source is documented; every benchmark script has its result in
benchmarks/RESULTS.md."""

import re
from pathlib import Path

import pytest

from widgets.share import KEYS, SOURCES
from widgets.state import ExplorerState

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
APP_DOC = REPO / "docs" / "app.md"
RESULTS = REPO / "benchmarks" / "RESULTS.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    """The code of every block fenced as ```python (```bash and others are not Python)."""
    return PYTHON_BLOCK.findall(text)


def section(text: str, heading: str) -> str:
    """The text under a Markdown heading, up to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}$", text, re.M)
    assert match, f"no heading {heading!r}"
    rest = text[match.end():]
    end = re.search(rf"^#{{1,{len(match.group(1))}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def test_python_blocks_are_found_and_others_are_not():
    """Only ```python blocks are run."""
    text = "```python\nx = 1\n```\n\n```bash\nls\n```\n```python\ny = 2\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = 2\n"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_python_block_runs(page, monkeypatch):
    """A page's blocks run in order in one namespace, as a reader pastes them into a notebook."""
    monkeypatch.chdir(REPO)
    namespace = {"__name__": "__docs__"}
    for number, code in enumerate(python_blocks(page.read_text()), 1):
        try:
            exec(compile(code, f"{page.name} block {number}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"{page.name}, Python block {number} failed:\n{code}") from error


def test_every_relative_link_leads_to_a_file():
    """Links between the pages (README.md, docs/, benchmarks/RESULTS.md) name files that exist."""
    for page in [*PAGES, RESULTS]:
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_every_share_link_key_and_link_source_is_documented():
    """Each key heads a row of the keys table under docs/app.md's 'Share links' (a row may name
    several, e.g. `T`, `seed`); the `source` row lists every value a link's source may take."""
    rows = [line.split("|")[1:3] for line in section(APP_DOC.read_text(), "Share links")
            .splitlines() if line.startswith("| `")]
    documented = {key: value for names, value in rows for key in re.findall(r"`([^`]+)`", names)}
    missing = [key for key in KEYS if key not in documented]
    assert not missing, f"share-link keys missing from docs/app.md's 'Share links': {missing}"
    missing = [value for value in SOURCES if f"`{value}`" not in documented["source"]]
    assert not missing, f"source= values missing from the `source` row of docs/app.md: {missing}"


def test_every_data_source_is_documented():
    """Each data-source name of the sidebar appears, in italics, in the README's tour and in
    docs/app.md."""
    names = ExplorerState.param.source.objects
    for page in (REPO / "README.md", APP_DOC):
        text = " ".join(page.read_text().split())  # a name may wrap across lines
        missing = [name for name in names if f"*{name}*" not in text]
        assert not missing, f"data sources missing from {page.name} (as *name*): {missing}"


def test_every_benchmark_script_has_a_result():
    """Each benchmarks/*.py has its own section in benchmarks/RESULTS.md."""
    text = RESULTS.read_text()
    scripts = sorted(p.name for p in (REPO / "benchmarks").glob("*.py"))
    assert scripts
    missing = [name for name in scripts if f"## `{name}`" not in text]
    assert not missing, f"benchmark scripts without a section in benchmarks/RESULTS.md: {missing}"
