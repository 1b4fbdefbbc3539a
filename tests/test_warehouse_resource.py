"""The run's warehouse resource (pipelines.resources.Warehouse): one database open for the whole
run, every step's connection taken from it, and the file released when the run ends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.resources import Warehouse
from pipelines.warehouse import duckdb_config


def _writable_elsewhere(path: Path) -> bool:
    """Whether another process can open the file for writing (DuckDB locks it per process)."""
    code = "import duckdb, sys; duckdb.connect(sys.argv[1]).close()"
    return subprocess.run([sys.executable, "-c", code, str(path)],
                          capture_output=True).returncode == 0


def test_steps_share_one_open_database_and_the_file_is_released_after(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    res = Warehouse(database=str(path), connection_config=duckdb_config(path))
    with dg.build_resources({"warehouse": res}) as r:  # what a run does: setup ... teardown
        with r.warehouse.get_connection() as con:
            before = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
            con.execute("SET threads = 1")  # a database-wide setting
        with r.warehouse.get_connection() as con:
            # a second step's connection: the same database, not the file opened again
            assert con.execute("SELECT current_setting('threads')").fetchone()[0] == 1
            con.execute(f"SET threads = {before}")
            con.execute("CREATE TABLE t AS SELECT 42 AS x")
        assert not _writable_elsewhere(path)  # held by the run
    assert _writable_elsewhere(path)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT x FROM t").fetchone() == (42,)


def test_a_failed_run_releases_the_file(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    res = Warehouse(database=str(path), connection_config=duckdb_config(path))

    @dg.asset
    def boom(warehouse: Warehouse) -> None:
        with warehouse.get_connection() as con:
            con.execute("CREATE TABLE t AS SELECT 1 AS x")
        raise RuntimeError("the step fails")

    result = dg.materialize([boom], resources={"warehouse": res}, raise_on_error=False)
    assert not result.success
    assert _writable_elsewhere(path)
