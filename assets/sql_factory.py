"""One Dagster asset per `.sql` model: same name for the file, the table and the asset."""


import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from assets.table_metadata import OWNERS, table_metadata
from pipelines.partitions import pilot_partitions
from pipelines.sql_models import SqlModel, build_model


def _description(model: SqlModel) -> str:
    lines = []
    for line in model.sql().splitlines():
        if not line.startswith("--"):
            break
        lines.append(line.lstrip("- ").rstrip())
    return " ".join(lines) or model.name


def sql_asset(model: SqlModel) -> dg.AssetsDefinition:
    @dg.asset(
        name=model.name,
        group_name=model.layer,
        deps=[dg.AssetKey(d) for d in model.deps],
        kinds={"duckdb", "sql"},
        partitions_def=pilot_partitions,
        description=_description(model),
        owners=OWNERS,
    )
    def _asset(
        context: dg.AssetExecutionContext, warehouse: DuckDBResource
    ) -> dg.MaterializeResult:
        pilot = context.partition_key
        sql_file = str(model.path.relative_to(model.path.parents[2]))
        with warehouse.get_connection() as con:
            try:
                rows = build_model(con, model, pilot)
            except duckdb.Error as e:
                # the run's failure names the pilot, the SQL file and DuckDB's reason
                raise dg.Failure(
                    description=f"pilot {pilot}: {sql_file} failed: {e}",
                    metadata={"pilot": pilot, "source": sql_file, "reason": str(e)},
                ) from e
            extra = table_metadata(con, model.name, pilot)
        return dg.MaterializeResult(
            metadata={"dagster/row_count": rows, "sql_file": sql_file, **extra}
        )

    return _asset


def layer_assets(layer: str) -> list[dg.AssetsDefinition]:
    from pipelines.sql_models import MODELS

    return [sql_asset(m) for m in MODELS if m.layer == layer]
