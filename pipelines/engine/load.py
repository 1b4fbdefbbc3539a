"""Load another engine's result of a `.sql` model into DuckDB with the model's own columns."""

from __future__ import annotations

from pathlib import Path

import duckdb


def parquet_select(
    con: duckdb.DuckDBPyConnection, parquet: Path, wanted: list[tuple[str, str]]
) -> str:
    """A SELECT of `parquet` (a file, or a folder of part files as Spark writes them) cast to
    `wanted` (name, DuckDB type): DuckDB's plan of the same SQL, so the table has the same
    columns and types whichever engine computed it. DuckDB reads the files itself."""
    parquet = Path(parquet)
    glob = str(parquet / "*.parquet") if parquet.is_dir() else str(parquet)
    src = "read_parquet('" + glob.replace("'", "''") + "')"
    have = {d[0]: str(d[1]) for d in con.execute(f"SELECT * FROM {src} LIMIT 0").description}
    names = [n for n, _ in wanted]
    if set(have) != set(names):
        # a renamed or missing column would otherwise land as NULLs or fail obscurely
        raise ValueError(f"{parquet}: columns {sorted(have)} are not the model's {sorted(names)}")

    def cast(name: str, dtype: str) -> str:
        if dtype == "TIMESTAMP" and have[name] == "TIMESTAMP WITH TIME ZONE":
            # Spark may write instants (TIMESTAMP_MICROS, UTC-adjusted): keep the UTC wall
            # time, not the one of DuckDB's session time zone
            return f"timezone('UTC', \"{name}\")"
        return f'CAST("{name}" AS {dtype})'

    return f"SELECT {', '.join(cast(n, t) for n, t in wanted)} FROM {src}"
