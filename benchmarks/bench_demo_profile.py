"""Benchmark: where the demo run's time goes, per Dagster step (and what is step overhead).

    .venv/bin/python benchmarks/bench_demo_profile.py [--scale 1.0] [--seed 7] [--landing DIR]

Simulates the demo pilot (or reuses `--landing DIR/demo-cluster-a` from an earlier run), then
materializes every asset through Dagster exactly as `stabilis demo` does, in a temporary
folder, and prints from the run's event log: each step's wall time (step start → step
success, asset checks included), the time outside any step (run start/stop, planning, the
executor between steps) and the process CPU time. Timings inflate on a busy machine: the
load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--landing", type=Path, default=None,
                    help="folder holding an already simulated demo-cluster-a/")
    ap.add_argument("--top", type=int, default=25, help="slowest steps to list")
    args = ap.parse_args()

    t_import = time.perf_counter()
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from pipelines.demo import SLUG, generate_demo_pilot
    from pipelines.resources import PilotPaths
    from pipelines.runner import run_pilot

    t_import = time.perf_counter() - t_import
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        landing = args.landing
        t_sim = 0.0
        if landing is None:
            t0 = time.perf_counter()
            generate_demo_pilot(base / "landing", seed=args.seed, scale=args.scale)
            t_sim = time.perf_counter() - t0
            landing = base / "landing"
        resources = {
            "warehouse": DuckDBResource(database=str(base / "w.duckdb")),
            "paths": PilotPaths(landing_dir=str(landing), reports_dir=str(base / "reports")),
        }
        instance = dg.DagsterInstance.ephemeral()
        # per-step process CPU: the in-process executor reports each event synchronously,
        # so the CPU clock read when STEP_START / STEP_SUCCESS pass through is the step's
        cpu_at: dict[tuple[str, str], float] = {}
        handle = instance.handle_new_event

        def timed_handle(event, **kw):  # noqa: ANN001, ANN003, ANN202
            de = event.dagster_event
            if de is not None and de.step_key:
                cpu_at[(de.step_key, de.event_type_value)] = time.process_time()
            return handle(event, **kw)

        instance.handle_new_event = timed_handle  # type: ignore[method-assign]
        c0, t0 = time.process_time(), time.perf_counter()
        try:
            result = run_pilot(SLUG, resources=resources, dagster_instance=instance)
            run_id, failed = result.run_id, ""
        except Exception as e:  # still print the steps that ran (e.g. a report bug)
            run_id = instance.get_runs(limit=1)[0].run_id
            failed = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        starts: dict[str, float] = {}
        steps: dict[str, float] = {}
        cpus: dict[str, float] = {}
        for rec in instance.get_records_for_run(run_id, limit=100_000).records:
            ev = rec.event_log_entry
            de = ev.dagster_event
            if de is None or not de.step_key:
                continue
            if de.event_type_value == "STEP_START":
                starts[de.step_key] = ev.timestamp
            elif de.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                steps[de.step_key] = ev.timestamp - starts[de.step_key]
                end = cpu_at.get((de.step_key, de.event_type_value))
                begin = cpu_at.get((de.step_key, "STEP_START"))
                if end is not None and begin is not None:
                    cpus[de.step_key] = end - begin
    in_steps = sum(steps.values())
    if failed:
        print(f"RUN FAILED ({failed}); timings of the steps that succeeded:")
    print(f"demo pilot {SLUG}, scale {args.scale}; load average {load0:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end (2 cores)")
    print(f"  imports (dagster + definitions)     {t_import:7.2f} s")
    if t_sim:
        print(f"  simulate + write Parquet            {t_sim:7.2f} s")
    print(f"  Dagster run (wall)                  {wall:7.2f} s   (process CPU {cpu:.2f} s)")
    print(f"    inside steps                      {in_steps:7.2f} s   ({len(steps)} steps)")
    print(f"    outside steps (run overhead)      {wall - in_steps:7.2f} s")
    print(f"    CPU inside steps                  {sum(cpus.values()):7.2f} s")
    print("  slowest steps by CPU (process CPU and wall; an asset check is its own step):")
    for key, c in sorted(cpus.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"    {key:<36} {c:7.2f} s cpu {steps[key]:8.2f} s wall")
    small = [c for c in cpus.values() if c < 0.5]
    print(f"  {len(small)} steps under 0.5 s CPU take {sum(small):.2f} s CPU together")


if __name__ == "__main__":
    main()
