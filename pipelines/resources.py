"""Where things live: the warehouse file, the landing folder of pilots, the report folder.

Defaults sit under the project's data folder (STABILIS_DATA_DIR, default ./data) so a fresh
clone needs no configuration; every path can be set per deployment.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Literal

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from pipelines.warehouse import duckdb_config

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def data_dir() -> Path:
    return Path(os.environ.get("STABILIS_DATA_DIR", "data")).resolve()


def default_warehouse_path() -> str:
    return str(data_dir() / "warehouse.duckdb")


class PilotPaths(dg.ConfigurableResource):
    """Landing folder `<landing>/<pilot>/pilot.yaml` and report output `<reports>/<pilot>/`."""

    landing_dir: str
    reports_dir: str

    def _checked(self, pilot: str) -> str:
        # A partition key becomes a path component: refuse anything but a slug.
        if not SLUG.match(pilot):
            raise ValueError(
                f"pilot {pilot!r} is not a valid slug; expected [a-z0-9][a-z0-9-]{{0,62}}"
            )
        return pilot

    def pilot_dir(self, pilot: str) -> Path:
        return Path(self.landing_dir) / self._checked(pilot)

    def report_dir(self, pilot: str) -> Path:
        return Path(self.reports_dir) / self._checked(pilot)


class SqlEngine(dg.ConfigurableResource):
    """Which engine runs the `.sql` models: `duckdb` (default, the warehouse file) or `spark`
    (the same files translated by pipelines.engine; needs the optional extra `spark`). Either
    way the result lands in the DuckDB warehouse (pipelines.engine.build).

    Spark settings: `spark_remote` (Spark Connect URL, e.g. `sc://host:15002`, Databricks
    Connect) wins over `spark_master` (`local[2]`, `spark://host:7077`, `yarn` on EMR);
    `spark_conf` adds session settings (ANSI mode, time zone, ... are set by the engine);
    `exchange_dir` is where Parquet goes between DuckDB and Spark (default: the warehouse's
    tmp dir), a folder a remote Spark must see too (a shared mount).
    """

    engine: Literal["duckdb", "spark"] = "duckdb"
    spark_master: str = "local[2]"
    spark_remote: str | None = None
    spark_app_name: str = "stabilis"
    spark_conf: dict[str, str] = {}
    exchange_dir: str | None = None

    @classmethod
    def from_env(cls) -> SqlEngine:
        """Settings from the environment (`default_resources`), each optional:
        STABILIS_SQL_ENGINE, STABILIS_SPARK_MASTER, STABILIS_SPARK_REMOTE,
        STABILIS_SPARK_EXCHANGE_DIR."""
        engine = os.environ.get("STABILIS_SQL_ENGINE") or "duckdb"
        if engine not in ("duckdb", "spark"):
            raise ValueError(f"STABILIS_SQL_ENGINE={engine!r}: expected duckdb or spark")
        return cls(
            engine=engine,
            spark_master=os.environ.get("STABILIS_SPARK_MASTER") or "local[2]",
            spark_remote=os.environ.get("STABILIS_SPARK_REMOTE") or None,
            exchange_dir=os.environ.get("STABILIS_SPARK_EXCHANGE_DIR") or None,
        )

    @property
    def is_spark(self) -> bool:
        return self.engine == "spark"

    def spark_session(self):  # -> pyspark.sql.SparkSession (optional dependency)
        """The process's SparkSession for the configured master/remote, started on first use
        (import deferred: optional)."""
        if not self.is_spark:
            raise ValueError("engine is duckdb: no Spark session to open")
        from pipelines.engine.spark import shared_session

        return shared_session(self.spark_master, remote=self.spark_remote,
                              app_name=self.spark_app_name, conf=self.spark_conf)

    def spark_engine(self):  # -> pipelines.engine.spark.SparkEngine
        from pipelines.engine.spark import SparkEngine

        return SparkEngine(self.spark_session())


class Warehouse(DuckDBResource):
    """The warehouse file (Dagster's DuckDBResource), with one connection held open for the
    whole run.

    Every step still takes its own connection (`get_connection`) and closes it. While the
    run's connection is open, DuckDB gives those out from the database it already has open:
    without it each of a run's ~50 steps opened the file, read its catalog and checkpointed
    it on close (a small pilot's run: 7.7-8.6 -> 5.8-7.1 s). Runs use the in-process executor
    (definitions.py), so the file was locked by the run from step to step anyway; it is
    released when the run ends, failed or not (teardown_after_execution). DuckDB settings are
    per database, so a step that changes one puts it back (ingest's `SET threads` does).
    """

    _held: contextlib.ExitStack | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        held = contextlib.ExitStack()
        held.enter_context(self.get_connection())  # the same settings as every step's
        self._held = held

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None


def default_resources() -> dict[str, object]:
    base = data_dir()
    base.mkdir(parents=True, exist_ok=True)
    return {
        # same memory limit and spill folder as every other connection (pipelines.warehouse)
        "warehouse": Warehouse(
            database=default_warehouse_path(),
            connection_config=duckdb_config(Path(default_warehouse_path())),
        ),
        "paths": PilotPaths(landing_dir=str(base / "landing"), reports_dir=str(base / "reports")),
        "sql_engine": SqlEngine.from_env(),
    }
