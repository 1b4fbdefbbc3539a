"""The DuckDB warehouse file: connection, staging schema, SQL file access."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"

# Bounded memory (issue #8): DuckDB's own buffer pool is capped below the 4 GiB peak-RSS goal
# so that Python, Polars and the DuckDB allocations outside the pool fit beside it; operators
# past the cap (sorts, hash joins, aggregates) spill to `temp_directory` instead of growing.
MEMORY_ENV = "STABILIS_DUCKDB_MEMORY"
THREADS_ENV = "STABILIS_DUCKDB_THREADS"
DEFAULT_MEMORY_LIMIT = "2.5GB"


def duckdb_config(path: Path) -> dict[str, str]:
    """Connection settings of the warehouse at `path` (Dagster's DuckDBResource takes them too).

    - memory_limit: STABILIS_DUCKDB_MEMORY (a DuckDB size, e.g. "2.5GB", "8GB"), default 2.5GB;
    - temp_directory: `<warehouse>.tmp/` beside the file, where operators spill;
    - preserve_insertion_order=false: lets large INSERT/COPY stream without buffering to keep
      row order; every reader that needs an order says ORDER BY (SQL tables are sets);
    - threads: STABILIS_DUCKDB_THREADS when set (DuckDB's default is every core);
    - storage_compatibility_version=latest: a warehouse file created from now on uses the
      installed DuckDB's storage format, whose string compression (DICT_FSST) writes the
      wide intermediate tables with about 30 % less CPU than the v0.10.2 default (Dictionary
      and FSST analysed separately) at the same size. A file made before keeps its format.
    """
    path = Path(path)
    cfg = {
        "memory_limit": os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY_LIMIT,
        "temp_directory": str(path.with_name(path.name + ".tmp")),
        "preserve_insertion_order": "false",
        "storage_compatibility_version": "latest",
    }
    if os.environ.get(THREADS_ENV):
        cfg["threads"] = os.environ[THREADS_ENV]
    return cfg


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse at `path`, memory-bounded (duckdb_config)."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only, config=duckdb_config(path))


def read_sql(relpath: str | Path) -> str:
    """Text of a SQL file under sql/, e.g. read_sql("staging/requests.sql")."""
    return (SQL_DIR / relpath).read_text(encoding="utf-8")


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every staging table (the DDL is idempotent: CREATE TABLE IF NOT EXISTS)."""
    for ddl in sorted((SQL_DIR / "staging").glob("*.sql")):
        con.execute(ddl.read_text(encoding="utf-8"))


def stored_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """(table, column, type) of every base table of the warehouse, in column order. Views
    (int_logical_requests) are left out: they hold no rows of their own, so code that deletes
    or scans a pilot's stored rows must not visit them."""
    return [(t, c, d) for t, c, d in con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "JOIN information_schema.tables USING (table_catalog, table_schema, table_name) "
        "WHERE table_schema = 'main' AND table_catalog = current_database() "
        "AND table_type = 'BASE TABLE' ORDER BY table_name, ordinal_position").fetchall()]
