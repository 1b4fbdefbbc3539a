"""`stabilis` command line: demo, ingest, run, report, backfill."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipelines.resources import data_dir

app = typer.Typer(
    help="Stabilis: operational synchronization reports from GPU serving telemetry.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


def _print_counts(title: str, counts: dict[str, int | None]) -> None:
    table = Table(title=title)
    table.add_column("asset")
    table.add_column("rows", justify="right")
    for name, rows in counts.items():
        table.add_row(name, "" if rows is None else f"{rows:,}")
    console.print(table)


def _report_paths(pilot: str) -> tuple[Path, Path]:
    d = data_dir() / "reports" / pilot
    return d / "report.html", d / "report.pdf"


def _run(pilot: str, selection: list[str] | None = None) -> None:
    from pipelines.runner import materialized_row_counts, run_pilot

    t0 = time.perf_counter()
    with console.status(f"materializing pilot {pilot} …"):
        result = run_pilot(pilot, selection=selection)
    _print_counts(
        f"pilot {pilot}: {time.perf_counter() - t0:.1f} s", materialized_row_counts(result)
    )


@app.command()
def demo(
    scale: float = typer.Option(1.0, help="Share of the full demo volume (1.0 = ≥1 M attempts)."),
    seed: int = typer.Option(7, help="Simulator seed; same seed, same pilot."),
) -> None:
    """Simulate the demo pilot, materialize every asset for it, print the report paths."""

    from pipelines.demo import generate_demo_pilot


    t0 = time.perf_counter()
    with console.status("simulating the demo pilot …"):
        pilot_dir = generate_demo_pilot(data_dir() / "landing", seed=seed, scale=scale)
    console.print(f"demo telemetry: {pilot_dir} ({time.perf_counter() - t0:.1f} s)")
    _run(pilot_dir.name)
    html, pdf = _report_paths(pilot_dir.name)
    console.print(f"report.html: {html}\nreport.pdf:  {pdf}")


@app.command()
def ingest(
    pilot_dir: Annotated[Path, typer.Argument(help="Folder holding pilot.yaml.")],
) -> None:
    """Validate pilot.yaml and load its sources into the warehouse (no report)."""
    from pipelines.config import PilotConfigError, load_pilot
    from pipelines.ingest.load import ingest_pilot
    from pipelines.resources import default_warehouse_path
    from pipelines.warehouse import connect, ensure_schema

    try:
        cfg = load_pilot(pilot_dir)
    except PilotConfigError as e:
        for p in e.problems:
            console.print(f"[red]pilot.yaml:[/red] {p}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    con = connect(Path(default_warehouse_path()))
    ensure_schema(con)
    summary = ingest_pilot(con, cfg)
    rows = con.execute(
        "SELECT source_index, source_kind, file, rows_in, rows_stored, rows_quarantined "
        "FROM ingest_log WHERE pilot = ? ORDER BY source_index, file",
        [cfg.pilot],
    ).fetchall()
    table = Table(title=f"pilot {cfg.pilot}: ingested")
    for col in ("#", "kind", "file", "rows in", "stored", "quarantined"):
        table.add_column(col)
    for i, kind, f, ri, rs, rq in rows:
        table.add_row(str(i), kind, Path(f).name, f"{ri:,}", f"{rs:,}", f"{rq:,}")
    console.print(table)
    for i, f, reason in summary.failed_sources:
        console.print(f"[red]source {i} failed[/red] {f}: {reason}", highlight=False)


@app.command()
def run(
    pilot: str = typer.Argument(..., help="Pilot slug; its folder is <landing>/<pilot>."),
) -> None:
    """Materialize every asset of one pilot (ingest → metrics → report)."""
    _run(pilot)
    html, pdf = _report_paths(pilot)
    console.print(f"report.html: {html}\nreport.pdf:  {pdf}")


@app.command()
def report(pilot: str = typer.Argument(..., help="Pilot slug already in the warehouse.")) -> None:
    """Re-render the report of a pilot from the warehouse as it is."""
    _run(pilot, selection=["report"])
    html, pdf = _report_paths(pilot)
    console.print(f"report.html: {html}\nreport.pdf:  {pdf}")


def downstream_selection(asset: str) -> list[str]:
    """`asset` and everything downstream of it, as asset names (raises KeyError if unknown)."""
    import dagster as dg

    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    key = dg.AssetKey.from_user_string(asset)
    if not graph.has(key):
        raise KeyError(asset)
    keys = dg.AssetSelection.assets(key).downstream().resolve(graph)
    # ingest_pilot writes every staging table in one step: selecting one selects them all
    widened = {k2 for k in keys for k2 in graph.get(k).execution_set_asset_keys}
    keys = dg.AssetSelection.assets(*widened).downstream().resolve(graph)
    return sorted(k.to_user_string() for k in keys)


@app.command()
def backfill(
    pilots: Annotated[list[str], typer.Argument(help="Pilot slugs (folders under landing).")],
    from_asset: Annotated[
        str | None,
        typer.Option("--from", help="Re-materialize this asset and everything downstream."),
    ] = None,
) -> None:
    """Re-materialize pilots one after another (all assets, or --from ASSET downstream).

    Pilots run sequentially in this process: DuckDB has a single writer.
    """
    from assets.staging import STAGING_TABLES
    from pipelines.config import PILOT_FILE
    from pipelines.resources import SLUG

    selection: list[str] | None = None
    if from_asset:
        try:
            selection = downstream_selection(from_asset)
        except KeyError:
            console.print(f"[red]unknown asset[/red] {from_asset!r}", highlight=False)
            raise typer.Exit(2) from None
        console.print(f"selection: {', '.join(selection)}", highlight=False)
    needs_landing = selection is None or bool(set(selection) & set(STAGING_TABLES))
    failed: list[str] = []
    for pilot in pilots:
        if not SLUG.match(pilot):
            console.print(f"[red]{pilot!r}: not a pilot slug[/red]", highlight=False)
            failed.append(pilot)
            continue
        if needs_landing and not (data_dir() / "landing" / pilot / PILOT_FILE).is_file():
            console.print(
                f"[red]pilot {pilot}:[/red] no {data_dir() / 'landing' / pilot / PILOT_FILE}",
                highlight=False,
            )
            failed.append(pilot)
            continue
        try:
            _run(pilot, selection)
        except Exception as e:  # one pilot's failure does not stop the others
            console.print(f"[red]pilot {pilot} failed:[/red] {e}", highlight=False)
            failed.append(pilot)
    if failed:
        console.print(f"[red]failed:[/red] {', '.join(failed)}", highlight=False)
        raise typer.Exit(1)


# `stabilis whatif` lives in pipelines/whatif_cli.py (owned with the what-if simulator).
from pipelines.whatif_cli import register as _register_whatif  # noqa: E402

_register_whatif(app)


if __name__ == "__main__":
    app()
