"""A warehouse built once per test module, handed to each test as a copy of its own.

Building every SQL model takes over a second even for a hand-sized pilot (about 40 models,
each a transaction); a module whose parametrized tests each rebuilt the same warehouse spent
most of its time there. The build runs once (`build_once`), and each test gets a fresh copy
of the file (`copy_of`, milliseconds): no test sees what another one wrote.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest


def build_once(factory: pytest.TempPathFactory, name: str,
               fill: Callable[[duckdb.DuckDBPyConnection], None]) -> Path:
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
