"""Run the warehouse's SQL models on Apache Spark (PySpark), translated from DuckDB's dialect.

    spark = shared_session()                           # local[2], or remote= a Spark Connect URL
    eng = SparkEngine(spark)
    eng.register_parquet(export_tables(con, STAGING_INPUTS, folder, pilot))
    results = eng.run(pilot)                           # {model name: DataFrame}, MODELS order

Input tables come from Parquet (exported from DuckDB or written by a pilot's own jobs) or from
DataFrames; each model's output is registered under its table name so later models read it,
exactly as in the DuckDB warehouse.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from pipelines.engine.translate import translate_model, translate_steps
from pipelines.metric_catalog import CATALOG
from pipelines.sql_models import BY_NAME, MODELS, SqlModel

if TYPE_CHECKING:  # pyspark is an optional extra
    from pyspark.sql import DataFrame, SparkSession

# Staging tables the SQL models read (the rest of the warehouse is derived from these).
STAGING_INPUTS: tuple[str, ...] = (
    "requests", "samples", "jobs", "arrivals", "phases", "pilot_scope", "sla_targets",
    "thresholds",
)
# Tables of a few rows (a pilot's settings) or a few thousand (per metric, quantile or job)
# whatever the pilot's traffic. A CTE reading only these is recomputed where it is read
# rather than run as a Spark job of its own (shared_ctes.py).
SMALL_TABLES = frozenset({"phases", "pilot_scope", "sla_targets", "thresholds", "pilots",
                          "int_thresholds", "metric_catalog", "int_headline_quantiles",
                          "latency_histogram_quantiles", "job_timeline", "metrics_headline"})

SESSION_CONF: dict[str, str] = {
    # ANSI mode set explicitly: its default changed (off in 3.x, on in 4.x) and it decides
    # whether overflows and bad casts raise (as in DuckDB) or become NULL
    "spark.sql.ansi.enabled": "true",
    "spark.sql.session.timeZone": "UTC",  # our timestamps are UTC wall times
    # DuckDB TIMESTAMP Parquet columns read as TIMESTAMP (UTC), not TIMESTAMP_NTZ, so
    # unix_micros/timestamp_micros apply to them without casts
    "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
    "spark.sql.shuffle.partitions": "4",  # small: pilots' derived tables are small
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}

# A local (CI, laptop) driver: the serial GC suits a small heap on 2 cores. C1-only JIT was
# tried (faster session start) but exact PERCENTILE aggregates ran 2.3x slower without C2
# (metrics_headline parity 81 s -> 36 s with C2, measured under similar load).
LOCAL_JVM_OPTIONS = "-XX:+UseSerialGC"


def spark_session(
    master: str = "local[2]",
    *,
    remote: str | None = None,
    app_name: str = "stabilis",
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """A SparkSession with the project's settings: `local[2]` bound to 127.0.0.1 by default,
    a cluster master URL (`spark://...`, `yarn`), or a Spark Connect `remote`
    (`sc://host:15002`, Databricks Connect)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if remote:
        builder = builder.remote(remote)
    else:
        builder = builder.master(master)
        if master.startswith("local"):
            # driver and executor are one JVM: a heartbeat that stalls on a starved CPU only
            # kills the session (seen at 10 M under load), so it is given an hour
            builder = (builder.config("spark.driver.bindAddress", "127.0.0.1")
                       .config("spark.driver.host", "127.0.0.1")
                       .config("spark.driver.extraJavaOptions", LOCAL_JVM_OPTIONS)
                       .config("spark.network.timeout", "3600s")
                       .config("spark.executor.heartbeatInterval", "60s"))
    for key, value in {**SESSION_CONF, **(conf or {})}.items():
        if remote and key.startswith("spark.ui"):
            continue  # a static setting of the server, not of a Connect session
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if not remote:
        spark.sparkContext.setLogLevel("ERROR")
    return spark


# One session per process and settings: a JVM (or a Connect channel) is slow to start, and
# a process can hold one local SparkContext anyway.
_SESSIONS: dict[tuple, SparkSession] = {}


def _alive(spark: SparkSession) -> bool:
    stopped = getattr(spark, "is_stopped", None)  # Spark Connect sessions say it
    if stopped is not None:
        return not stopped
    return getattr(getattr(spark, "_sc", None), "_jsc", None) is not None  # classic


def shared_session(
    master: str = "local[2]",
    *,
    remote: str | None = None,
    app_name: str = "stabilis",
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """spark_session(...), created once per process and reused while it is running."""
    key = (master, remote, app_name, tuple(sorted((conf or {}).items())))
    spark = _SESSIONS.get(key)
    if spark is None or not _alive(spark):
        spark = _SESSIONS[key] = spark_session(master, remote=remote, app_name=app_name,
                                               conf=conf)
    return spark


def export_tables(
    con: duckdb.DuckDBPyConnection,
    tables: Iterable[str],
    folder: Path,
    pilot: str | None = None,
) -> dict[str, Path]:
    """Write DuckDB tables (one pilot's rows, or all) to `folder/<table>.parquet`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for t in tables:
        path = folder / f"{t}.parquet"
        where = "" if pilot is None else " WHERE pilot = " + _quote(pilot)
        con.execute(f"COPY (SELECT * FROM \"{t}\"{where}) TO '{path}' (FORMAT parquet)")
        out[t] = path
    return out


def _is_connect(spark: SparkSession) -> bool:
    """A Spark Connect session (its plans are resolved on the server, when they run)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class SparkEngine:
    """Registers input tables as temp views and runs translated SQL models on a session."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.list_columns: set[str] = set()  # array columns of registered tables

    def _note_lists(self, df: DataFrame) -> None:
        from pyspark.sql.types import ArrayType

        self.list_columns |= {f.name for f in df.schema.fields
                              if isinstance(f.dataType, ArrayType)}

    def register(self, name: str, source: str | Path | DataFrame) -> None:
        """Make `source` (a Parquet path or a DataFrame) readable as table `name`."""
        df = (self.spark.read.parquet(str(source)) if isinstance(source, str | Path)
              else source)
        self._note_lists(df)
        df.createOrReplaceTempView(name)

    def register_parquet(self, tables: Mapping[str, str | Path]) -> None:
        for name, path in tables.items():
            self.register(name, path)

    def drop(self, names: Iterable[str]) -> None:
        """Forget registered tables, so that a later query cannot read them by mistake."""
        for name in names:
            self.spark.catalog.dropTempView(name)

    def register_metric_catalog(self) -> None:
        """metrics_headline joins units from the Python catalog (as build_model does)."""
        rows = [(m.name, m.label, m.unit, m.better, m.definition) for m in CATALOG]
        schema = "name STRING, label STRING, unit STRING, better STRING, definition STRING"
        self.spark.createDataFrame(rows, schema).createOrReplaceTempView("metric_catalog")

    def sql(self, model: SqlModel | str, pilot: str) -> str:
        m = BY_NAME[model] if isinstance(model, str) else model
        return translate_model(m, pilot, list_columns=self.list_columns)

    def run_model(self, model: SqlModel | str, pilot: str) -> DataFrame:
        """The model's result for `pilot`. Each CTE the model's SQL reads more than once is
        computed first, once (localCheckpoint), where Spark would compute it at every read
        (shared_ctes.py); the rest is lazy: Spark runs it when the result is read."""
        m = BY_NAME[model] if isinstance(model, str) else model
        steps, final = translate_steps(m.sql(), pilot, list_columns=self.list_columns,
                                       view_prefix=f"__cte_{m.name}_", small=SMALL_TABLES)
        views: list[str] = []
        try:
            for view, sql in steps:
                self.spark.sql(sql).localCheckpoint(eager=True).createOrReplaceTempView(view)
                views.append(view)
            result = self.spark.sql(final)
        except BaseException:
            with contextlib.suppress(Exception):  # the step's own error is the one to see
                self.drop(views)
            raise
        if not _is_connect(self.spark):
            # a classic session has resolved the views into the result's plan (as PySpark's
            # own `spark.sql(text, df=...)` does); Spark Connect resolves them when the
            # result runs, so there they stay, replaced at the model's next run
            self.drop(views)
        return result

    def run(
        self,
        pilot: str,
        models: Iterable[SqlModel] = MODELS,
        *,
        checkpoint: bool = True,
    ) -> dict[str, DataFrame]:
        """Run `models` in order, each registered under its name for the ones after it.

        checkpoint=True materialises each result once and cuts its lineage
        (localCheckpoint): later models then read a table, not the whole plan of every
        upstream query (with the plans inlined, analysing `findings` ran the driver out of
        heap). On a cluster, prefer writing each result out (write_parquet) and registering
        the files.
        """
        self.register_metric_catalog()
        out: dict[str, DataFrame] = {}
        for m in models:
            df = self.run_model(m, pilot)
            if checkpoint:
                df = df.localCheckpoint(eager=True)
            self._note_lists(df)
            df.createOrReplaceTempView(m.name)
            out[m.name] = df
        return out

    def write_parquet(self, results: Mapping[str, DataFrame], folder: Path) -> dict[str, Path]:
        """Write results as `folder/<table>.parquet` (DuckDB reads them back for the report)."""
        out: dict[str, Path] = {}
        for name, df in results.items():
            path = Path(folder) / f"{name}.parquet"
            df.write.mode("overwrite").parquet(str(path))
            out[name] = path
        return out
