"""One Dagster asset per `.sql` model: same name for the file, the table and the asset.

The `sql_engine` resource picks the engine that computes it (DuckDB, or Spark through
pipelines.engine.build); either way the table lands in the DuckDB warehouse.

Its code version is a hash of the .sql file text (editing the SQL marks the asset stale in
the UI, and the nightly schedule re-runs the pilots); its checks (assets/checks.py
TABLE_RULES) run in the same step on the rows just written.
"""

from contextlib import closing

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from assets.checks import table_check_results, table_check_specs
from assets.table_metadata import OWNERS, table_metadata, text_version
from pipelines.partitions import pilot_partitions
from pipelines.resources import SqlEngine
from pipelines.sql_models import BY_NAME, SqlModel, build_model

# Staging tables whose absence a derived table can name: the telemetry an operator adds.
TELEMETRY_TABLES = ("requests", "samples", "jobs", "arrivals")


def _description(model: SqlModel) -> str:
    lines = []
    for line in model.sql().splitlines():
        if not line.startswith("--"):
            break
        lines.append(line.lstrip("- ").rstrip())
    return " ".join(lines) or model.name


def _build(
    con: duckdb.DuckDBPyConnection, model: SqlModel, pilot: str, sql_engine: SqlEngine,
    run_id: str,
) -> int:
    if not sql_engine.is_spark:
        return build_model(con, model, pilot)
    # deferred: pyspark and sqlglot are the optional extra `spark`
    from pipelines.engine.build import build_on_spark, exchange_folder

    folder = exchange_folder(con, run_id, sql_engine.exchange_dir)
    return build_on_spark(con, sql_engine.spark_engine(), model, pilot, folder)


def staging_inputs(model: SqlModel) -> set[str]:
    """The telemetry tables `model` reads, directly or through other models."""
    seen: set[str] = set()
    todo = list(model.deps)
    while todo:
        dep = todo.pop()
        if dep in seen:
            continue
        seen.add(dep)
        if dep in BY_NAME:
            todo.extend(BY_NAME[dep].deps)
    return seen & set(TELEMETRY_TABLES)


def empty_state(con: duckdb.DuckDBPyConnection, model: SqlModel, pilot: str) -> dict[str, str]:
    """Metadata for a table that came out empty for the pilot: 'not measured' and the
    telemetry it reads that the pilot does not have (empty inputs are a state, not a failure).
    """
    missing = [t for t in sorted(staging_inputs(model))
               if not con.execute(f"SELECT count(*) FROM {t} WHERE pilot = ?",  # noqa: S608
                                  [pilot]).fetchone()[0]]
    needs = ", ".join(missing) if missing else "none missing: no row crossed its rule"
    return {"state": "not measured" if missing else "measured: no rows",
            "needs": f"rows in {needs}" if missing else needs}


def _errors(sql_engine: SqlEngine) -> tuple[type[BaseException], ...]:
    # Spark fails from several layers (translation, pyspark, py4j, Spark Connect's gRPC, a
    # missing extra): every one is this step's failure, reported like DuckDB's
    return (Exception,) if sql_engine.is_spark else (duckdb.Error,)


def sql_code_version(model: SqlModel) -> str:
    return text_version(model.sql())


def sql_asset(model: SqlModel) -> dg.AssetsDefinition:
    @dg.asset(
        name=model.name,
        group_name=model.layer,
        deps=[dg.AssetKey(d) for d in model.deps],
        kinds={"duckdb", "sql"},
        partitions_def=pilot_partitions,
        description=_description(model),
        owners=OWNERS,
        code_version=sql_code_version(model),
        check_specs=table_check_specs(model.name),
    )
    def _asset(
        context: dg.AssetExecutionContext, warehouse: DuckDBResource, sql_engine: SqlEngine
    ) -> dg.MaterializeResult:
        pilot = context.partition_key
        sql_file = str(model.path.relative_to(model.path.parents[2]))
        # closing(): DuckDBResource does not close the connection when the step raises,
        # which would keep the warehouse file open (and locked) after a failed step
        with warehouse.get_connection() as con, closing(con):
            try:
                rows = _build(con, model, pilot, sql_engine, context.run.run_id)
            except _errors(sql_engine) as e:
                # the run's failure names the pilot, the SQL file, the engine and its reason
                raise dg.Failure(
                    description=f"pilot {pilot}: {sql_file} failed on {sql_engine.engine}: {e}",
                    metadata={"pilot": pilot, "source": sql_file, "engine": sql_engine.engine,
                              "reason": str(e)},
                ) from e
            extra = table_metadata(con, model.name, pilot)
            if rows == 0:
                extra.update(empty_state(con, model, pilot))
            checks = table_check_results(con, model.name, pilot)
        return dg.MaterializeResult(
            metadata={"dagster/row_count": rows, "sql_file": sql_file,
                      "engine": sql_engine.engine, **extra},
            check_results=checks,
        )

    return _asset


def layer_assets(layer: str) -> list[dg.AssetsDefinition]:
    from pipelines.sql_models import MODELS

    return [sql_asset(m) for m in MODELS if m.layer == layer]
