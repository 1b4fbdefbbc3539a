"""Benchmark: the report of the demo pilot — statistics, model, HTML and PDF timed separately.

    .venv/bin/python benchmarks/bench_report.py [--scale 0.1] [--seed 7] [--warehouse PATH]

Without --warehouse it simulates and ingests the demo pilot into a temporary folder first
(not timed), builds every SQL table, then times: the bootstrap intervals (metrics_ci), the
energy–latency correlation, the report model, the HTML render and the PDF render. With
--warehouse it reads an existing warehouse (read-only for the report; statistics are rebuilt
on a temporary copy).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--warehouse", type=Path, default=None)
    args = ap.parse_args()

    from pipelines.statistics import build_energy_latency_corr, build_metrics_ci
    from pipelines.warehouse import connect
    from reports.model import build_report_model
    from reports.render import render_html, write_pdf

    timings: list[tuple[str, float, float]] = []

    def timed(label: str, fn, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        # wall and CPU time: on a busy machine CPU time is the fairer figure for the
        # single-threaded steps (Altair/vl-convert, WeasyPrint)
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(*a, **kw)
        timings.append((label, time.perf_counter() - t0, time.process_time() - c0))
        return out

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        db = base / "w.duckdb"
        if args.warehouse:
            shutil.copy(args.warehouse, db)
            con = connect(db)
            pilot = con.execute("SELECT pilot FROM pilots LIMIT 1").fetchone()[0]
        else:
            from pipelines.config import load_pilot
            from pipelines.demo import generate_demo_pilot
            from pipelines.ingest.load import ingest_pilot
            from pipelines.sql_models import build_all
            from pipelines.warehouse import ensure_schema

            os.environ.setdefault("STABILIS_SECRET", "bench-secret")
            pilot_dir = generate_demo_pilot(base / "landing", seed=args.seed, scale=args.scale)
            con = connect(db)
            ensure_schema(con)
            cfg = load_pilot(pilot_dir)
            ingest_pilot(con, cfg)
            build_all(con, cfg.pilot)
            pilot = cfg.pilot
        logical = con.execute("SELECT count(*) FROM int_logical_requests").fetchone()[0]
        timed("statistics: metrics_ci (block bootstrap)", build_metrics_ci, con, pilot)
        timed("statistics: energy_latency_corr", build_energy_latency_corr, con, pilot)
        model = timed("report model", build_report_model, con, pilot, run_id="bench",
                      pipeline_version="bench", generated_at=datetime.now(UTC))
        html = timed("render HTML", render_html, model)
        out = base / "report.pdf"
        timed("render PDF", write_pdf, html, out)
        from pypdf import PdfReader

        n_pages = len(PdfReader(out).pages)
        svgs = [len(c.svg) for c in model.charts if c.svg]
        con.close()

    print(f"pilot {pilot}: {logical:,} logical requests; {n_pages} PDF pages; "
          f"HTML {len(html) / 1e6:.2f} MB; largest SVG {max(svgs or [0]) / 1e3:.0f} kB "
          f"({len(svgs)} of {len(model.charts)} visuals drawn)")
    width = max(len(k) for k, _, _ in timings)
    print(f"  {'step':<{width}}  {'wall':>8}  {'cpu':>8}")
    for label, secs, cpu in timings:
        print(f"  {label:<{width}}  {secs:7.2f}s  {cpu:7.2f}s")
    rep = [(s, c) for k, s, c in timings if k in ("report model", "render HTML", "render PDF")]
    print(f"  {'report total (model + HTML + PDF)':<{width}}  {sum(s for s, _ in rep):7.2f}s  "
          f"{sum(c for _, c in rep):7.2f}s")
    print(f"  load average now: {os.getloadavg()[0]:.1f} (timings inflate on a busy machine)")


if __name__ == "__main__":
    main()
