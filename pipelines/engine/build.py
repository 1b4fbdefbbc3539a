"""Build one `.sql` model's table for a pilot on Spark, landing it in the DuckDB warehouse.

DuckDB -> Parquet (the pilot's rows of the tables the model reads) -> Spark (the translated
SQL) -> Parquet -> DuckDB, the last step inside build_model's per-pilot transaction: the
table gets DuckDB's columns and types, re-runs are idempotent and a failure anywhere leaves
it as it was. No row goes through Python.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import suppress
from pathlib import Path

import duckdb

from pipelines.engine.spark import SparkEngine, export_tables
from pipelines.sql_models import BY_NAME, SqlModel, build_model


def exchange_folder(con: duckdb.DuckDBPyConnection, run_id: str, base: str | None = None) -> Path:
    """`<base>/spark/<run_id>/`, base defaulting to the warehouse's tmp dir (DuckDB's
    temp_directory, `<warehouse>.tmp/`): beside the data, on the disk sized for spills."""
    if base is None:
        (tmp,) = con.execute("SELECT current_setting('temp_directory')").fetchone()
        # an in-memory warehouse has no folder of its own
        base = tmp or str(Path(tempfile.gettempdir()) / "stabilis")
    return Path(base) / "spark" / run_id


def build_on_spark(
    con: duckdb.DuckDBPyConnection,
    eng: SparkEngine,
    model: SqlModel | str,
    pilot: str,
    folder: Path,
) -> int:
    """Run `model` for `pilot` on Spark and replace the pilot's rows of its DuckDB table;
    returns the pilot's row count (as build_model). `folder` holds the exchanged files while
    the step runs; they are removed after it, whatever the outcome."""
    m = BY_NAME[model] if isinstance(model, str) else model
    if m.view:  # a view over tables already landed: nothing for Spark to compute
        return build_model(con, m, pilot)
    work = Path(folder) / m.name
    shutil.rmtree(work, ignore_errors=True)  # leftovers of a crashed attempt
    try:
        eng.register_parquet(export_tables(con, m.deps, work / "inputs", pilot))
        # no checkpoint: the result is read once, by the write
        results = eng.run(pilot, [m], checkpoint=False)
        (result,) = eng.write_parquet(results, work / "result").values()
        return build_model(con, m, pilot, parquet=result)
    finally:
        # the session outlives the step: a later model must not read these views by mistake
        # (suppressed: a broken session's error must not hide the step's own)
        with suppress(Exception):
            eng.drop([*m.deps, m.name, "metric_catalog"])
        shutil.rmtree(work, ignore_errors=True)
        with suppress(OSError):
            Path(folder).rmdir()  # the run's folder, once its last model is done
