"""Shared test setup: the anonymization secret every pilot.yaml in the tests names, and the
order in which `make test` (`-n 2 --dist loadfile`) hands files to its two workers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Ingestion refuses to run without the pilot secret (observer-only); tests use a fixed one.
os.environ.setdefault("STABILIS_SECRET", "stabilis-test-secret-not-for-real-pilots")
# `make test` exports DAGSTER_HOME (the project's .dagster_home, the instance `make dev`
# shows). Tests run pilots in an ephemeral instance; a test that needs a persistent one sets
# its own. Otherwise every pilot a test ran was recorded in the developer's UI history, each
# event written through SQLite (a pilot-matrix run took ~2x as long).
os.environ.pop("DAGSTER_HOME", None)
# every chart spec a test draws is checked against the Vega-Lite schema (reports/charts.py)
os.environ["STABILIS_CHECK_CHART_SPECS"] = "1"

# The units that take longest, longest first (measured alone with --durations, 2026-12-04).
# Handed out first so that neither worker is left running one long file alone at the end;
# every other file follows, most tests first (xdist's own order). Update when a file grows.
# "spark" is the three Spark files as one unit: one worker, one JVM (tests/spark_session.py),
# one start-up, where loadfile could send them to both workers and start two.
LONGEST_FIRST = (
    "spark",
    "tests/test_pilot_matrix.py",
    "tests/test_dagster.py",
    "tests/test_prometheus_api.py",
)


def unit(nodeid: str) -> str:
    """The unit of work a test belongs to: its file, or "spark" for the Spark files."""
    path = nodeid.split("::", 1)[0]
    return "spark" if Path(path).name.startswith("test_spark_") else path


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ARG001
    """Longest units first, the rest by descending number of tests (stable within a file)."""
    size: dict[str, int] = {}
    for item in items:
        size[unit(item.nodeid)] = size.get(unit(item.nodeid), 0) + 1

    def rank(item: pytest.Item) -> tuple[int, int]:
        u = unit(item.nodeid)
        first = LONGEST_FIRST.index(u) if u in LONGEST_FIRST else len(LONGEST_FIRST)
        return first, -size[u]

    items.sort(key=rank)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # before xdist's own; no xdist: unused
def pytest_xdist_make_scheduler(config, log):  # noqa: ANN201
    """`--dist loadfile`, with the Spark files as one unit and the units in collection order
    (above), not re-sorted by xdist by their number of tests (which put the 8 long tests of
    test_pilot_matrix.py behind dozens of quick files)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongestFirst(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit(nodeid)

    config.option.loadscopereorder = False
    return LongestFirst(config, log)


@pytest.fixture(scope="module")
def warehouse_builds() -> dict[str, Path]:
    """The warehouses tests/built_warehouse.py built for this module, by name."""
    return {}
