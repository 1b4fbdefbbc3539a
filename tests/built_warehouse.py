"""A warehouse built once per test module, handed to each test as a copy of its own.

Building every SQL model takes over a second even for a hand-sized pilot (about 40 models,
each a transaction); a module whose parametrized tests each rebuilt the same warehouse spent
most of its time there. `warehouse_fixture(name, fill)` makes a fixture that builds it once
per module (`fill` writes the rows and builds the models) and gives each test a fresh copy of
the file (milliseconds): no test sees what another one wrote.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

Fill = Callable[[duckdb.DuckDBPyConnection], None]


def build_once(factory: pytest.TempPathFactory, name: str, fill: Fill) -> Path:
    """A closed warehouse file that `fill` wrote (seed rows, build models)."""
    path = factory.mktemp(name) / "w.duckdb"
    con = duckdb.connect(str(path))
    try:
        fill(con)
    finally:
        con.close()  # checkpointed: the one file holds everything
    return path


def copy_of(built: Path, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A connection to this test's own copy of `built`."""
    path = tmp_path / built.name
    shutil.copyfile(built, path)
    return duckdb.connect(str(path))


def warehouse_fixture(name: str, fill: Fill):  # noqa: ANN201  (a pytest fixture)
    """A fixture: a connection to the test's own copy of the warehouse `fill` builds, built
    once per module (`warehouse_builds`, tests/conftest.py, keeps the files by name)."""

    @pytest.fixture()
    def fixture(warehouse_builds: dict[str, Path], tmp_path_factory: pytest.TempPathFactory,
                tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
        if name not in warehouse_builds:
            warehouse_builds[name] = build_once(tmp_path_factory, name, fill)
        con = copy_of(warehouse_builds[name], tmp_path)
        yield con
        con.close()

    return fixture
