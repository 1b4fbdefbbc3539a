"""`stabilis` command line: demo, ingest, run, report."""

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


if __name__ == "__main__":
    app()
