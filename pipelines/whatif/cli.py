"""`stabilis whatif`: replay a pilot's phase (or a trace file) under policies, print and save.

    stabilis whatif PILOT --policy priority --policy jsq [--phase baseline] [--minutes 30]
        (whole phases by default: the baseline calibrated, the validation arrivals replayed)
    stabilis whatif --trace FILE --kind azure --service lognormal:900,0.8 --gpus 16 \\
        --policy burst_buffering [--json out.json]

Policies: fifo_shared, priority, batch_separation, burst_buffering, segmentation, jsq,
power_of_two, random_routing, `a+b` compositions, and `declared` (the pilot's adjustments on
its treatment pools). Nothing is written to the warehouse; `--store` writes the pilot's
what-if tables as the asset does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()


def _show(results: pl.DataFrame, title: str, segment: str) -> None:
    from pipelines.whatif import HEADLINE, last_phase

    r = last_phase(results).filter(
        (pl.col("segment") == segment) & (pl.col("breakdown") == "overall")
        & pl.col("metric").is_in(HEADLINE))
    table = Table(title=title)
    table.add_column("metric")
    policies = list(dict.fromkeys(r["policy"].to_list()))
    has_measured = r["measured_value"].is_not_null().any()
    if has_measured:
        table.add_column("measured", justify="right")
    for p in policies:
        table.add_column(p, justify="right")
    for m in HEADLINE:
        rows = r.filter(pl.col("metric") == m)
        if rows.height == 0:
            continue
        cells = [m]
        if has_measured:
            v = rows["measured_value"][0]
            cells.append("" if v is None else f"{v:.4g}")
        for p in policies:
            x = rows.filter(pl.col("policy") == p)
            if x.height == 0 or x["predicted_value"][0] is None:
                cells.append("")
                continue
            v, d, sd = x["predicted_value"][0], x["predicted_change"][0], x["spread"][0]
            ch = "" if p == "fifo_shared" or d is None else f" ({d:+.3g}"
            ch += "" if not ch or sd is None else f" ±{sd:.2g})"
            ch += ")" if ch and sd is None else ""
            cells.append(f"{v:.4g}{ch}")
        table.add_row(*cells)
    console.print(table)


def whatif(
    pilot: Annotated[str | None, typer.Argument(help="Pilot slug in the warehouse.")] = None,
    policy: Annotated[list[str] | None, typer.Option(
        "--policy", help="Policy set to replay (repeat; a+b composes). Default: all.")] = None,
    phase: Annotated[str, typer.Option(help="Phase to replay.")] = "baseline",
    minutes: Annotated[float | None, typer.Option(
        help="Replay a representative slice of this many minutes of each phase (a trace: its "
             "first minutes). Default: the whole phase or trace.")] = None,
    seeds: Annotated[int, typer.Option(help="Seeds per policy (common random numbers; the "
                                            "spread across them is shown).")] = 10,
    trace: Annotated[Path | None, typer.Option(help="Arrival trace file instead of a pilot.")
                     ] = None,
    kind: Annotated[str, typer.Option(help="Trace format: azure | mooncake | burstgpt.")
                    ] = "azure",
    service: Annotated[str, typer.Option(
        help="Trace service times: exp:MEAN_MS, lognormal:MEDIAN_MS,SIGMA, gamma:MEAN_MS,CV "
             "or det:MEAN_MS.")] = "exp:1000",
    gpus: Annotated[int, typer.Option(help="GPU slots for a trace replay.")] = 8,
    timeout_ms: Annotated[float | None, typer.Option(help="Client timeout (trace).")] = None,
    sla_ms: Annotated[float, typer.Option(help="End-to-end SLA of every class (trace).")
                      ] = 10_000.0,
    segment: Annotated[str, typer.Option(help="Segment to print: all|treatment|control.")
                       ] = "all",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")
                        ] = None,
    store_tables: Annotated[bool, typer.Option(
        "--store", help="Write whatif_results / whatif_model_error for the pilot.")] = False,
) -> None:
    """Model-based what-if: replay a phase (or a trace) under policies, same metric SQL."""
    from pipelines.whatif import run_whatif, store

    names = policy or None
    seed_list = tuple(range(1, max(seeds, 1) + 1))
    mins = minutes or None
    if trace is not None:
        run = _trace_run(trace, kind, service, gpus, timeout_ms, sla_ms, names, seed_list, mins)
        title = f"what-if on {trace.name} ({kind}, {gpus} GPU slots, service {service})"
    else:
        if pilot is None:
            console.print("[red]give a PILOT or --trace FILE[/red]")
            raise typer.Exit(2)
        from pipelines.resources import default_warehouse_path
        from pipelines.warehouse import connect

        con = connect(Path(default_warehouse_path()))
        try:
            with console.status(f"replaying {pilot} {phase} …"):
                run = run_whatif(con, pilot, names, phase, mins, seed_list)
            if store_tables:
                store(con, pilot, run)
        except ValueError as e:
            console.print(f"[red]{escape(str(e))}[/red]", highlight=False)
            raise typer.Exit(2) from None
        finally:
            con.close()
        title = f"what-if: {pilot} {phase} ({run.status.basis}"
        title += f": {run.status.service_model})" if run.status.service_model else ")"
    from pipelines.whatif import last_phase

    r = run.results
    shown = last_phase(r)
    if shown.height:
        title += (f" — {shown['phase'][0]} replay {shown['replay_start'][0]} → "
                  f"{shown['replay_end'][0]}, {len(seed_list)} seed(s), modeled")
    _show(r, escape(title), segment)
    # the effect (a difference-in-differences) exists on the treatment segment only
    me = run.model_error.filter((pl.col("segment") == segment)
                                | ((pl.col("comparison") == "effect") & (segment == "all")))
    if me.height:
        t = Table(title="model error: calibration (today's replay vs measured levels), effect "
                        "(predicted vs measured DiD and its interval), validation levels")
        for c in ("comparison", "segment", "metric", "measured", "interval", "modeled",
                  "seeds min–max", "error_rel", "verdict"):
            t.add_column(c, justify="left" if c in ("comparison", "segment", "metric")
                         else "right")
        for row in me.iter_rows(named=True):
            def f(x: float | None) -> str:
                return "" if x is None else f"{x:.4g}"
            iv = ("" if row["measured_lo"] is None
                  else f"[{f(row['measured_lo'])}, {f(row['measured_hi'])}]")
            verdict = ("" if row["inside"] is None
                       else "inside" if row["inside"] else "outside")
            t.add_row(row["comparison"], row["segment"], row["metric"], f(row["measured"]), iv,
                      f(row["modeled"]), f"{f(row['modeled_min'])}–{f(row['modeled_max'])}",
                      f(row["error_rel"]), verdict)
        console.print(t)
    console.print(f"{run.attempts:,} attempts simulated; "
                  + ", ".join(f"{k} {v:.1f}" for k, v in run.timings.items()))
    for n in run.notes:
        console.print(f"note: {n}", highlight=False)
    if json_out is not None:
        doc = {"results": r.to_dicts(), "model_error": run.model_error.to_dicts(),
               "timings_s": run.timings, "attempts": run.attempts, "notes": run.notes}
        json_out.write_text(json.dumps(doc, default=str, indent=1))
        console.print(f"json: {json_out}")


def _trace_run(trace: Path, kind: str, service: str, gpus: int, timeout_ms: float | None,
               sla_ms: float, names: list[str] | None, seeds: tuple[int, ...],
               minutes: float | None):
    from pipelines.config import DEFAULT_THRESHOLDS, PRIORITIES
    from pipelines.whatif import DECLARED, DEFAULT_POLICIES, run_whatif
    from pipelines.whatif.replay import read_trace, trace_replay

    try:
        df = read_trace(str(trace), kind)
        rep = trace_replay(df, service, gpus, timeout_ms, minutes=minutes)
        length = (df["ts"].max() - df["ts"].min()).total_seconds() / 60 if df.height else 0.0
        if minutes is not None and minutes < length:
            console.print(f"note: replaying the first {minutes:g} min of the trace "
                          f"({length:.1f} min long); drop --minutes to replay it whole",
                          highlight=False)
    except (ValueError, OSError, pl.exceptions.PolarsError) as e:
        console.print(f"[red]{escape(str(e))}[/red]", highlight=False)
        raise typer.Exit(2) from None
    config = {
        "sla_targets": pl.DataFrame({"priority": list(PRIORITIES),
                                     "e2e_ms": [sla_ms] * len(PRIORITIES),
                                     "ttft_ms": [None] * len(PRIORITIES)},
                                    schema_overrides={"ttft_ms": pl.Float64}),
        "pilot_scope": pl.DataFrame({"kind": ["all"]}),
        "thresholds": pl.DataFrame({"name": list(DEFAULT_THRESHOLDS),
                                    "value": [float(v) for v in DEFAULT_THRESHOLDS.values()]}),
    }
    names = [n for n in (names or DEFAULT_POLICIES) if n != DECLARED]
    with console.status(f"replaying {trace.name} …"):
        return run_whatif(None, "trace", names, seeds=seeds, rep=rep, config=config)


def register(app: typer.Typer) -> None:
    app.command(name="whatif")(whatif)
