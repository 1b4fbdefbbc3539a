"""`stabilis` command line: demo, ingest, run, pull, report, backfill."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipelines.resources import data_dir

# No pretty exceptions: Rich's traceback with locals has spun for minutes on Dagster's
# circular exception chains while holding the warehouse lock. A failure prints one line
# (`_fail`); `--debug` re-raises with Python's plain traceback.
app = typer.Typer(
    help="Stabilis: operational synchronization reports from GPU serving telemetry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Text from pilot.yaml and telemetry is never read as Rich markup: styled output is built
# from Text pieces, never by formatting user text into a markup string.
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)
_debug = False


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of failures.")] = False,
) -> None:
    global _debug
    _debug = debug


def _fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line (plain text, never markup) and return the Exit to raise."""
    errors.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def _one_line_errors(pilot: str | None = None) -> Iterator[None]:
    """Any exception in the block ends the command with one line naming pilot and step."""
    from pipelines.cli_errors import one_line

    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as e:
        if _debug:
            raise
        raise _fail(one_line(e, pilot=pilot)) from None


def _print_counts(title: str, counts: dict[str, int | None]) -> None:
    table = Table(title=Text(title))
    table.add_column("asset")
    table.add_column("rows", justify="right")
    for name, rows in counts.items():
        table.add_row(Text(name), "" if rows is None else f"{rows:,}")
    console.print(table)


def _report_paths(pilot: str) -> tuple[Path, Path]:
    d = data_dir() / "reports" / pilot
    return d / "report.html", d / "report.pdf"


def _print_report_paths(pilot: str) -> None:
    html, pdf = _report_paths(pilot)
    console.print(Text(f"report.html: {html}\nreport.pdf:  {pdf}"))


def _landing_problem(pilot: str) -> str | None:
    """Why `pilot` cannot run from the landing folder, or None."""
    from pipelines.config import PILOT_FILE
    from pipelines.resources import SLUG

    if not SLUG.fullmatch(pilot):
        return f"{pilot!r} is not a pilot slug (lower-case letters, digits, '-')"
    yaml_path = data_dir() / "landing" / pilot / PILOT_FILE
    if not yaml_path.is_file():
        return (f"pilot {pilot}: no {yaml_path} (copy the pilot folder into "
                f"{data_dir() / 'landing'})")
    return None


def _check_landing(pilot: str) -> None:
    """Refuse an unknown pilot before anything (a partition) is registered for it."""
    problem = _landing_problem(pilot)
    if problem:
        raise _fail(problem, 2)


def _check_warehouse(pilot: str) -> None:
    """`report` needs the pilot's tables: refuse a pilot the warehouse does not hold."""
    import duckdb

    from pipelines.resources import default_warehouse_path

    path = Path(default_warehouse_path())
    found = False
    if path.is_file():
        try:
            with duckdb.connect(str(path), read_only=True) as con:
                found = bool(con.execute("SELECT count(*) FROM pilots WHERE pilot = ?",
                                         [pilot]).fetchone()[0])
        except duckdb.Error as e:
            raise _fail(f"pilot {pilot}: cannot read the warehouse {path}: "
                        f"{str(e).splitlines()[0]}") from None
    if not found:
        raise _fail(f"pilot {pilot}: not in the warehouse {path} "
                    f"(run `stabilis run {pilot}` first)", 2)


def _run(pilot: str, selection: list[str] | None = None) -> None:
    from pipelines.runner import materialized_row_counts, run_pilot

    t0 = time.perf_counter()
    with _one_line_errors(pilot), _progress(pilot) as on_step:
        result = run_pilot(pilot, selection=selection, on_step=on_step)
    _print_counts(
        f"pilot {pilot}: {time.perf_counter() - t0:.1f} s", materialized_row_counts(result)
    )


@contextmanager
def _progress(pilot: str) -> Iterator[Callable[[str, str, int, int], None]]:
    """Per-step progress: a bar with step i/N and the step's name on a terminal, one line
    per finished step otherwise (CI logs, `| tee`)."""
    if not console.is_terminal:
        started: dict[str, float] = {}

        def line(event: str, step: str, done: int, total: int) -> None:
            if event == "start":
                started[step] = time.perf_counter()
                return
            took = time.perf_counter() - started.get(step, time.perf_counter())
            console.print(Text(f"[{done}/{total}] {pilot}: {step} {event} ({took:.1f} s)"))

        yield line
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(f"{pilot}: starting", total=None)

        def update(event: str, step: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total,
                       description=f"{pilot}: {step}" if event == "start" else None)

        yield update


@app.command()
def demo(
    scale: float = typer.Option(1.0, help="Share of the full demo volume (1.0 = ≥1 M attempts)."),
    seed: int = typer.Option(7, help="Simulator seed; same seed, same pilot."),
) -> None:
    """Simulate the demo pilot, materialize every asset for it, print the report paths."""

    from pipelines.demo import generate_demo_pilot

    t0 = time.perf_counter()
    with _one_line_errors(), console.status("simulating the demo pilot …"):
        pilot_dir = generate_demo_pilot(data_dir() / "landing", seed=seed, scale=scale)
    console.print(Text(f"demo telemetry: {pilot_dir} ({time.perf_counter() - t0:.1f} s)"))
    _run(pilot_dir.name)
    _print_report_paths(pilot_dir.name)


@app.command()
def ingest(
    pilot_dir: Annotated[Path, typer.Argument(help="Folder holding pilot.yaml.")],
) -> None:
    """Validate pilot.yaml and load its sources into the warehouse (no report).

    Exits 2 when pilot.yaml is refused, 1 when every source failed."""
    from pipelines.config import PilotConfigError, load_pilot
    from pipelines.ingest.load import ingest_pilot
    from pipelines.resources import default_warehouse_path
    from pipelines.warehouse import connect, ensure_schema

    try:
        cfg = load_pilot(pilot_dir)
    except PilotConfigError as e:
        for p in e.problems:  # "key: why"; file-level problems already start with pilot.yaml
            where = "" if p.startswith("pilot.yaml") else "pilot.yaml: "
            errors.print(Text.assemble(("error: ", "bold red"), where + p), soft_wrap=True)
        raise typer.Exit(2) from None
    with _one_line_errors(cfg.pilot):
        con = connect(Path(default_warehouse_path()))
        try:
            ensure_schema(con)
            summary = ingest_pilot(con, cfg)
            rows = con.execute(
                "SELECT source_index, source_kind, file, rows_in, rows_stored, rows_quarantined"
                " FROM ingest_log WHERE pilot = ? ORDER BY source_index, file",
                [cfg.pilot],
            ).fetchall()
        finally:
            con.close()
    table = Table(title=Text(f"pilot {cfg.pilot}: ingested"))
    for col in ("#", "kind", "file", "rows in", "stored", "quarantined"):
        table.add_column(col)
    for i, kind, f, ri, rs, rq in rows:
        table.add_row(str(i), Text(kind), Text(Path(f).name), f"{ri:,}", f"{rs:,}", f"{rq:,}")
    console.print(table)
    for i, f, warning in summary.warnings:
        console.print(Text.assemble((f"source {i} warning ", "yellow"),
                                    f"{Path(f).name}: {warning}"), soft_wrap=True)
    for i, f, reason in summary.failed_sources:
        errors.print(Text.assemble((f"source {i} failed ", "red"), f"{f}: {reason}"),
                     soft_wrap=True)
    failed = {i for i, _, _ in summary.failed_sources}
    if cfg.sources and len(failed) == len(cfg.sources):
        raise _fail(f"pilot {cfg.pilot}: every source failed; nothing was stored")


@app.command()
def run(
    pilot: str = typer.Argument(..., help="Pilot slug; its folder is <landing>/<pilot>."),
    refresh: Annotated[bool, typer.Option(
        "--refresh", help="Pull every prometheus-api source again before the run (else a "
                          "source's saved snapshot is read; one is pulled only if missing).")
    ] = False,
) -> None:
    """Materialize every asset of one pilot (ingest → metrics → report)."""
    _check_landing(pilot)
    _pull_sources(pilot, refresh=refresh, since=None, strict=False)
    _run(pilot)
    _print_report_paths(pilot)


@app.command()
def pull(
    pilot: str = typer.Argument(..., help="Pilot slug; its folder is <landing>/<pilot>."),
    since: Annotated[str | None, typer.Option(
        "--since", help="Pull only the last DURATION (e.g. 24h, 90m) and keep the earlier "
                        "windows of the snapshot: a nightly incremental pull.")] = None,
) -> None:
    """Pull the pilot's prometheus-api sources into their snapshot (`pulled/`), replacing it.

    Only the server's query API is called (read-only). Exits 1 when a source's pull failed
    (its previous snapshot, if any, is kept), 2 when the pilot has no such source."""
    _check_landing(pilot)
    _pull_sources(pilot, refresh=True, since=since, strict=True)


def _pull_sources(pilot: str, *, refresh: bool, since: str | None, strict: bool) -> None:
    """Pull the pilot's live sources (all with `refresh`, else those without a snapshot) and
    print one line per source. `strict` (the pull command): a failure ends the command
    once every source was tried; otherwise it is a warning and the run goes on (the source
    then fails alone at ingest, or reads its previous snapshot)."""
    from pipelines.config import PilotConfigError, load_pilot
    from pipelines.ingest.prometheus_api import api_sources, ensure_snapshots, parse_duration

    try:
        cfg = load_pilot(data_dir() / "landing" / pilot)
    except PilotConfigError as e:
        if not strict:
            return  # `run` reports a bad pilot.yaml itself, as the ingest step's failure
        raise _fail(f"pilot {pilot}: pilot.yaml: {'; '.join(e.problems)}", 2) from None
    if not api_sources(cfg):
        if strict:
            raise _fail(f"pilot {pilot}: no prometheus-api source in pilot.yaml; nothing to "
                        "pull", 2)
        return
    try:
        since_s = None if since is None else parse_duration(since)
    except ValueError as e:
        raise _fail(f"pilot {pilot}: --since {e}", 2) from None
    with _one_line_errors(pilot):
        results = ensure_snapshots(cfg, refresh=refresh, since_s=since_s)
    failed = []
    for r in results:
        src = f"pilot {pilot}: pull: source {r.source_index} (prometheus-api)"
        rel = r.folder.relative_to(cfg.root).as_posix()
        if r.skipped:
            continue
        if r.error is not None:
            failed.append(r)
            errors.print(Text.assemble(("error: ", "bold red") if strict
                                       else ("warning: ", "bold yellow"),
                                       f"{src}: {r.error}"), soft_wrap=True)
            continue
        kept = f", {r.kept} kept" if r.kept else ""
        bad = f", {r.failed_windows} window(s) failed" if r.failed_windows else ""
        console.print(Text(f"{src}: {_n(r.responses, 'response')} ({_n(r.requests, 'request')}"
                           f"{kept}{bad}) into {rel}/ in {r.seconds:.1f} s"), soft_wrap=True)
    if strict and failed:
        raise typer.Exit(1)


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@app.command()
def report(pilot: str = typer.Argument(..., help="Pilot slug already in the warehouse.")) -> None:
    """Re-render the report of a pilot from the warehouse as it is."""
    _check_warehouse(pilot)
    _run(pilot, selection=["report"])
    _print_report_paths(pilot)


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

    selection: list[str] | None = None
    if from_asset:
        try:
            selection = downstream_selection(from_asset)
        except KeyError:
            raise _fail(f"unknown asset {from_asset!r}", 2) from None
        console.print(Text(f"selection: {', '.join(selection)}"))
    needs_landing = selection is None or bool(set(selection) & set(STAGING_TABLES))
    failed: list[str] = []
    for pilot in pilots:
        problem = _landing_problem(pilot) if needs_landing else None
        if problem:
            errors.print(Text.assemble(("error: ", "bold red"), problem), soft_wrap=True)
            failed.append(pilot)
            continue
        try:
            _run(pilot, selection)
        except typer.Exit:  # one pilot's failure (already printed) does not stop the others
            failed.append(pilot)
            continue
        _print_report_paths(pilot)
    if failed:
        raise _fail(f"{len(failed)} of {len(pilots)} pilots failed: {', '.join(failed)}")


pilots_app = typer.Typer(help="List the pilots, or remove one.", no_args_is_help=False)
app.add_typer(pilots_app, name="pilots")


@pilots_app.callback(invoke_without_command=True)
def pilots(ctx: typer.Context) -> None:
    """Every pilot: in landing, registered as a partition, its last run and its report."""
    if ctx.invoked_subcommand is not None:
        return
    from pipelines.pilot_registry import pilot_rows

    with _one_line_errors():
        rows = pilot_rows(data_dir())
    table = Table(title="pilots")
    for col in ("pilot", "landing", "registered", "last run", "status", "report"):
        table.add_column(col)
    for r in rows:
        table.add_row(Text(r.pilot), "yes" if r.landing else "no",
                      "yes" if r.registered else "no", r.last_run or "", r.status or "",
                      Text(str(r.report) if r.report else ""))
    console.print(table if rows else Text(f"no pilot in {data_dir()}"))


@pilots_app.command("remove")
def pilots_remove(
    pilot: Annotated[str, typer.Argument(help="Pilot slug to unregister.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Unregister a pilot's partition and delete its rows from the warehouse (its landing
    folder and reports are left in place)."""
    from pipelines.pilot_registry import remove_pilot

    if not yes and not typer.confirm(f"remove pilot {pilot} (partition and warehouse rows)?"):
        raise _fail("not removed", 1)
    with _one_line_errors(pilot):
        rows, partition = remove_pilot(data_dir(), pilot)
    if not rows and not partition:
        raise _fail(f"pilot {pilot}: neither registered nor in the warehouse", 2)
    console.print(Text(f"pilot {pilot}: {rows:,} warehouse rows deleted; partition "
                       + ("removed" if partition else "was not registered")))


@app.command()
def reveal(
    pilot: Annotated[str, typer.Argument(help="Pilot slug (folder under landing) or a folder "
                                              "holding its pilot.yaml.")],
    values: Annotated[list[str] | None, typer.Argument(
        help="Raw identifiers you already hold (node names, job ids, ...).")] = None,
    from_file: Annotated[Path | None, typer.Option(
        "--from-file", help="Also read one raw identifier per line from FILE ('-': stdin).")
    ] = None,
    kind: Annotated[str | None, typer.Option(
        "--kind", help="Token kind (node, gpu, job, req, ...); default: every kind.")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", help="Print only the raw values whose token is this one.")] = None,
) -> None:
    """Print which token each raw identifier became, with the pilot's secret (read from the
    variable pilot.yaml names). Nothing is written; the secret is never printed."""
    from pipelines.config import PILOT_FILE, PilotConfigError
    from pipelines.reveal import kinds_for, pilot_anonymizer, pilot_secret_env, read_values
    from pipelines.reveal import reveal as reveal_pairs

    folder = Path(pilot)
    if not (folder / PILOT_FILE).is_file():
        _check_landing(pilot)
        folder = data_dir() / "landing" / pilot
    try:
        name, secret_env = pilot_secret_env(folder)
    except PilotConfigError as e:
        raise _fail(f"pilot {pilot}: pilot.yaml: {'; '.join(e.problems)}", 2) from None
    with _one_line_errors(name):
        kinds = kinds_for(kind, token)
        lines: list[str] = []
        if from_file is not None:
            lines = (sys.stdin.read() if str(from_file) == "-"
                     else from_file.read_text(encoding="utf-8")).splitlines()
        pairs = reveal_pairs(pilot_anonymizer(secret_env), read_values(values or [], lines),
                             kinds, token)
    if token is not None and not pairs:
        raise _fail(f"pilot {name}: no value given has token {token}")
    table = Table(title=Text(f"pilot {name}: raw value → token"))
    for col in ("kind", "raw value", "token"):
        table.add_column(col)
    for p in pairs:
        table.add_row(p.kind, Text(p.value), p.token)
    console.print(table)


# `stabilis whatif` lives in pipelines/whatif/cli.py (owned with the what-if simulator).
from pipelines.whatif.cli import register as _register_whatif  # noqa: E402

_register_whatif(app)


def main() -> None:
    """Console entry point: any exception that escaped a command still ends in one line."""
    from pipelines.cli_errors import one_line

    try:
        app()
    except Exception as e:
        if _debug:
            raise
        errors.print(Text.assemble(("error: ", "bold red"), one_line(e)), soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
