"""The DuckDB warehouse file: connection, staging schema, SQL file access."""

from __future__ import annotations

from pathlib import Path

import duckdb

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path))


def read_sql(relpath: str | Path) -> str:
    """Text of a SQL file under sql/, e.g. read_sql("staging/requests.sql")."""
    return (SQL_DIR / relpath).read_text(encoding="utf-8")


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every staging table (the DDL is idempotent: CREATE TABLE IF NOT EXISTS)."""
    for ddl in sorted((SQL_DIR / "staging").glob("*.sql")):
        con.execute(ddl.read_text(encoding="utf-8"))
