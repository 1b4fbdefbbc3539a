"""One Dagster asset per `.sql` model: same name for the file, the table and the asset."""


import dagster as dg
from dagster_duckdb import DuckDBResource

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
    )
    def _asset(
        context: dg.AssetExecutionContext, warehouse: DuckDBResource
    ) -> dg.MaterializeResult:
        with warehouse.get_connection() as con:
            rows = build_model(con, model, context.partition_key)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "sql_file": str(model.path.relative_to(model.path.parents[2])),
            }
        )

    return _asset


def layer_assets(layer: str) -> list[dg.AssetsDefinition]:
    from pipelines.sql_models import MODELS

    return [sql_asset(m) for m in MODELS if m.layer == layer]
