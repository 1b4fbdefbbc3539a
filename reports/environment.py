"""Section 1: investigation environment (sources, spans, inventory, workload mix, jobs)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from reports import fmt
from reports.coverage import Coverage
from reports.sections.common import Reader
from reports.types import Table


@dataclass
class Environment:
    sources: Table
    quarantine: Table
    spans: Table
    table_rows: Table
    inventory: Table
    mix_class: Table
    mix_priority: Table
    jobs: Table


def environment(w: Reader, cov: Coverage) -> Environment:
    src = w.q("ingest_log", """SELECT source_index, source_kind, target_table, file, sha256,
                rows_in, rows_stored, rows_quarantined FROM ingest_log WHERE pilot = ?
                ORDER BY source_index, file""")
    src_rows = [[str(r["source_index"]), r["source_kind"], r["target_table"] or "—", r["file"],
                 r["sha256"][:12] + "…", fmt.count(r["rows_in"]), fmt.count(r["rows_stored"]),
                 fmt.count(r["rows_quarantined"])] for r in src.iter_rows(named=True)]
    if src_rows:
        src_rows.append(["", "all sources", "", f"{src.height} files", "",
                         fmt.count(src["rows_in"].sum()), fmt.count(src["rows_stored"].sum()),
                         fmt.count(src["rows_quarantined"].sum())])
    sources = Table("Telemetry sources (ingest log; full checksums in the provenance block)",
                    ["#", "Kind", "Table", "File", "sha256", "Rows in", "Stored",
                     "Quarantined"], src_rows, basis=None, num_cols=(5, 6, 7), wrap_cols=(3,),
                    empty="No ingest log rows for this pilot.")

    qdf = w.q("quarantine", """SELECT coalesce(target_table, '—') AS t, reason, count(*) AS n
                FROM quarantine WHERE pilot = ? GROUP BY ALL ORDER BY n DESC, reason""")
    quarantine = Table("Quarantined rows by reason", ["Target table", "Reason", "Rows"],
                       [[r["t"], r["reason"], fmt.count(r["n"])] for r in qdf.iter_rows(
                           named=True)], basis=None, num_cols=(2,),
                       empty="No rows were quarantined.")

    spans: list[list[str]] = []
    for label, table, lo, hi in (
            ("Phases", "phases", "min(start_ts)", "max(end_ts)"),
            ("Requests (per-request rows)", "requests", "min(arrival_ts)", "max(arrival_ts)"),
            ("Arrival trace (arrivals)", "arrivals", "min(ts)", "max(ts)"),
            ("Time-series samples", "samples", "min(ts)", "max(ts)"),
            ("Scheduler jobs", "jobs", "min(submit_ts)", "max(coalesce(end_ts, submit_ts))")):
        d = w.q(table, f"SELECT {lo} AS lo, {hi} AS hi FROM {table} WHERE pilot = ?")
        if d.is_empty() or d["lo"][0] is None:
            spans.append([label, "—", "—", "no rows"])
        else:
            spans.append([label, fmt.ts(d["lo"][0]), fmt.ts(d["hi"][0]),
                          fmt.duration(d["hi"][0] - d["lo"][0])])
    span_table = Table("Time span covered", ["Data", "From", "To", "Span"], spans, basis=None)

    counts = []
    for t in ("requests", "arrivals", "jobs", "samples", "quarantine", "ingest_log", "phases",
              "sla_targets", "thresholds"):
        d = w.q(t, f"SELECT count(*) AS n FROM {t} WHERE pilot = ?")
        counts.append([t, "table not built" if d.is_empty() else fmt.count(d["n"][0])])
    table_rows = Table("Rows per staging table", ["Table", "Rows"], counts, basis=None,
                       num_cols=(1,))

    # pools, nodes and GPUs from every table that names them (requests, samples, jobs);
    # the distinct triples first, so the four counts read a small set, not every row
    where = [f"SELECT pool, node, gpu FROM {t} WHERE pilot = $1" for t in ("requests", "samples")
             if w.has(t)]
    if w.has("jobs"):
        where.append("SELECT pool, node, NULL AS gpu FROM jobs WHERE pilot = $1")
    inv = w.q("phases", f"""
        WITH g AS (SELECT DISTINCT pool, node, gpu FROM ({" UNION ALL ".join(where)}))
        SELECT (SELECT count(DISTINCT pool) FROM g) AS pools,
               (SELECT count(DISTINCT node) FROM g) AS nodes,
               (SELECT count(DISTINCT (node, gpu)) FROM g WHERE gpu IS NOT NULL) AS gpus,
               (SELECT string_agg(DISTINCT pool, ', ' ORDER BY pool) FROM g) AS pool_names
        """) if where else pl.DataFrame()
    # the workload mix by model class and by priority class in one scan of requests (a
    # pilot's largest table: each scan is seconds at 100 M attempts)
    mixes = w.q("requests", """SELECT CASE WHEN grouping(model_class) = 0 THEN 'model_class'
                    ELSE 'priority' END AS col, coalesce(model_class, priority) AS k,
                    count(*) AS attempts, count(*) FILTER (WHERE attempt = 0) AS first
                    FROM requests WHERE pilot = ?
                    GROUP BY GROUPING SETS ((model_class), (priority))""")
    prio_names = [] if mixes.is_empty() else sorted(
        mixes.filter(pl.col("col") == "priority")["k"].to_list())
    arr = w.q("arrivals", "SELECT count(*) AS n, string_agg(DISTINCT source, ', ') AS src "
                          "FROM arrivals WHERE pilot = ?")
    inv_rows: list[list[str]] = []
    if not inv.is_empty():
        r = inv.row(0, named=True)
        p = ", ".join(prio_names)
        inv_rows = [["Pools", fmt.count(r["pools"]), r["pool_names"] or "—"],
                    ["Nodes", fmt.count(r["nodes"]), "requests, samples and jobs"],
                    ["GPUs", fmt.count(r["gpus"]), "distinct (node, gpu) in requests and "
                     "samples"],
                    ["Priority classes", str(len(prio_names)), p or "— (no per-request rows)"]]
    if not arr.is_empty() and arr["n"][0]:
        inv_rows.append(["Arrivals (trace)", fmt.count(arr["n"][0]),
                         f"arrival trace ({arr['src'][0] or 'source not named'}): timestamps "
                         "and token counts only, no pool, node or GPU"])
    inventory = Table("Inventory (distinct values in the staging tables)",
                      ["Entity", "Count", "Values / source"], inv_rows, basis=None,
                      num_cols=(1,), empty="No requests, arrivals, samples or jobs for this "
                                           "pilot.")

    def mix(col: str, caption: str) -> Table:
        d = mixes.filter(pl.col("col") == col).sort(
            ["attempts", "k"], descending=[True, False]) if not mixes.is_empty() else mixes
        tot = float(d["attempts"].sum()) if not d.is_empty() else 0.0
        return Table(caption, [col.replace("_", " ").capitalize(), "Attempts",
                               "First attempts", "Share of attempts"],
                     [[r["k"], fmt.count(r["attempts"]), fmt.count(r["first"]),
                       fmt.share(r["attempts"], tot)] for r in d.iter_rows(named=True)],
                     basis=None, num_cols=(1, 2, 3),
                     empty=f"No per-request rows (requests): the mix by {col.replace('_', ' ')} "
                           "is not measured.")

    return Environment(sources, quarantine, span_table, table_rows, inventory,
                       mix("model_class", "Workload mix by model class"),
                       mix("priority", "Workload mix by priority class"), _jobs_table(w))


def _jobs_table(w: Reader) -> Table:
    """The scheduler jobs sharing the GPUs, per pool and phase (job_timeline)."""
    jt = w.q("job_timeline", """SELECT coalesce(pool, '(no pool)') AS pool,
                coalesce(phase, '(outside the phases)') AS phase, count(*) AS jobs,
                count(*) FILTER (WHERE start_ts IS NOT NULL) AS started,
                count(*) FILTER (WHERE NOT end_known AND start_ts IS NOT NULL) AS running,
                median(wait_s) AS wait_p50, max(duration_s) AS longest,
                sum(gpu_hours) AS gpu_hours, count(gpu_hours) AS with_gpus
                FROM job_timeline WHERE pilot = ? GROUP BY ALL ORDER BY 1, 2""")
    rows = [[r["pool"], r["phase"], fmt.count(r["jobs"]), fmt.count(r["started"]),
             fmt.count(r["running"]),
             "—" if r["wait_p50"] is None else fmt.long_duration(r["wait_p50"]),
             "—" if r["longest"] is None else fmt.long_duration(r["longest"]),
             "not measured: needs GPU counts (AllocTRES gres/gpu)" if not r["with_gpus"]
             else f"{r['gpu_hours']:,.1f}"] for r in jt.iter_rows(named=True)]
    return Table("Scheduler jobs sharing the GPUs, by pool and the phase each started in "
                 "(job_timeline)",
                 ["Pool", "Phase", "Jobs", "Started", "Still running", "Wait P50",
                  "Longest run", "GPU-hours"], rows, num_cols=(2, 3, 4, 5, 6, 7),
                 empty="No scheduler jobs (jobs): batch occupancy and the job timeline are not "
                       "measured; they need a sacct export.")

