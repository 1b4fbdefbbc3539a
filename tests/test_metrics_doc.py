"""docs/METRICS.md names every metric, SQL table and threshold the code defines.

The report's numbers must each have one definition in the project's own METRICS.md; a name
added to the catalog, the SQL registry or the default thresholds without a definition there
fails here. A name counts only when written as code (`name`), as the definitions write it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.config import DEFAULT_THRESHOLDS
from pipelines.metric_catalog import CATALOG
from pipelines.sql_models import MODELS

DOC = Path(__file__).resolve().parents[1] / "docs" / "METRICS.md"


def _code_names(text: str) -> set[str]:
    """Every `…` span of the document, and each comma-separated name inside one."""
    names: set[str] = set()
    for span in re.findall(r"`([^`\n]+)`", text):
        names.add(span.strip())
        names.update(part.strip() for part in span.split(","))
    return names


@pytest.fixture(scope="module")
def documented() -> set[str]:
    assert DOC.is_file(), f"{DOC} is missing"
    return _code_names(DOC.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("kind", "names"),
    [
        ("metric (pipelines.metric_catalog.CATALOG)", [m.name for m in CATALOG]),
        ("table (pipelines.sql_models.MODELS)", [m.name for m in MODELS]),
        ("threshold (pipelines.config.DEFAULT_THRESHOLDS)", list(DEFAULT_THRESHOLDS)),
    ],
)
def test_every_name_is_defined(documented: set[str], kind: str, names: list[str]) -> None:
    missing = [n for n in names if n not in documented]
    assert not missing, f"docs/METRICS.md does not define these {kind} names: {missing}"


def test_name_match_is_exact() -> None:
    # a longer name in backticks must not stand in for a shorter one
    assert "p95_latency_s" not in _code_names("`burst_p95_latency_s` and p95_latency_s")
    assert "hcl_pp" in _code_names("| `effective_util`, `hcl_pp` |")
