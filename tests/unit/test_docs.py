"""The documentation a clone carries is whole: every relative link resolves inside the repository,
and nothing points at material beside it (a clone has no ../shared)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", *patterns], capture_output=True, text=True, check=True)
    return [REPO / line for line in out.stdout.splitlines()]


MARKDOWN = _tracked("*.md")


def test_there_is_documentation_to_check() -> None:
    assert len(MARKDOWN) > 10 and REPO / "docs" / "cluster.md" in MARKDOWN  # negative control


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve_inside_the_repository(doc: Path) -> None:
    for target in LINK.findall(doc.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        resolved = (doc.parent / target).resolve()
        assert resolved.is_relative_to(REPO), f"{doc.name} links outside the repository: {target}"
        assert resolved.exists(), f"{doc.name} links to a missing file: {target}"


def test_nothing_refers_to_material_beside_the_repository() -> None:
    offenders = [str(p.relative_to(REPO)) for p in _tracked("*.md", "*.py", "*.yaml", "*.tpl", "Makefile")
                 if p.is_file() and "../shared" in p.read_text(errors="replace") and p.name != "test_docs.py"]
    assert offenders == []


def test_the_integrators_limits_table_states_the_amount_bounds_the_provider_api_enforces() -> None:
    from gameplane.contracts.games import MAX_AMOUNT_MINOR

    limits = (REPO / "docs" / "integration" / "limits.md").read_text()
    rows = [line for line in limits.splitlines() if line.startswith("| ") and line.count("|") == 4]
    documented: dict[str, int] = {}
    for row in rows:
        currencies, _, maximum = (cell.strip() for cell in row.strip("|").split("|"))
        if maximum.replace(",", "").isdigit():
            documented.update({c.strip(): int(maximum.replace(",", "")) for c in currencies.split(",")})
    assert documented == MAX_AMOUNT_MINOR
