"""What-if replay input from an arrival trace and a declared service model (Dagster-free).

A pilot without per-request rows has no service times to resample; when it has `arrivals`
(an Azure / Mooncake / BurstGPT trace) and pilot.yaml declares a `whatif:` service model,
the replay takes:
- arrivals: the trace's arrivals in a window of the phase (the same representative-slice
  rule as a per-request replay, inside the span the trace covers), each given the declared
  priority class (default: the lowest class with an SLA target, else P2) and model class
  `llm`; with several declared pools, each arrival goes to a
  pool drawn in proportion to its GPUs (fixed draw, the same under every policy and seed);
- service times: drawn per seed from the declared distribution (mean, CV), optionally
  proportional to the arrival's tokens; no first-token time (a trace has none);
- slots: the declared GPUs x concurrency_per_gpu per pool;
- jobs: the pilot's scheduler jobs on a declared pool (if any) hold all slots of their GPUs;
- client: the pilot's timeout; no retries, abandonment or failures (a trace shows none).
Nothing observed is measured beside it: the what-if has no baseline_replay comparison.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl

from pipelines.config import WhatIfModel
from pipelines.simulator.model import ClientSpec, PoolJobs, PoolSpec
from pipelines.whatif.replay import (
    TRACE_BASIS,
    NoReplayInput,
    ReplayInput,
    choose_window,
    normalise_arrivals,
    observed_jobs,
    parametric_donors,
    phase_bounds,
    pilot_config,
    reserved_nodes,
    scope_pools,
    slot_cluster,
)

MODEL_CLASS = "llm"
POOL_DRAW_SEED = 0  # pool assignment of trace arrivals: one draw for every policy and seed


def service_spec(model: WhatIfModel) -> str:
    """The declared service time as a `parametric_service` spec (milliseconds)."""
    s = model.service
    mean_ms = s.mean_s * 1000
    if s.distribution == "exponential":
        return f"exp:{mean_ms:g}"
    if s.distribution == "deterministic":
        return f"det:{mean_ms:g}"
    if s.distribution == "gamma":
        return f"gamma:{mean_ms:g},{s.cv:g}"
    # lognormal with mean m and CV c: sigma^2 = ln(1 + c^2), median = m / sqrt(1 + c^2)
    sigma = float(np.sqrt(np.log1p(s.cv ** 2)))
    return f"lognormal:{mean_ms / np.sqrt(1 + s.cv ** 2):g},{sigma:g}"


def arrival_priority(con: duckdb.DuckDBPyConnection, pilot: str, model: WhatIfModel) -> str:
    """The declared class, else the lowest class with an SLA target (adherence has a target),
    else P2."""
    if model.priority is not None:
        return model.priority
    row = con.execute("SELECT max(priority) FROM sla_targets WHERE pilot = ?",
                      [pilot]).fetchone()
    return row[0] if row and row[0] else "P2"


def describe(model: WhatIfModel, priority: str | None = None) -> str:
    """The declared model in words (whatif_status.service_model, the report)."""
    s = model.service
    words = f"{s.distribution} service time, mean {s.mean_s:g} s"
    if s.distribution in ("lognormal", "gamma"):
        words += f", CV {s.cv:g}"
    if s.scale_by_tokens:
        words += ", proportional to each request's tokens"
    servers = f"{model.gpus} GPU(s)"
    if model.concurrency_per_gpu > 1:
        servers += (f" x {model.concurrency_per_gpu} concurrent requests = "
                    f"{model.gpus * model.concurrency_per_gpu} servers")
    if len(model.pools) > 1:
        servers += " (" + ", ".join(f"{p}: {n}" for p, n in model.pools) + ")"
    return f"{words}; {servers}; every arrival {priority or model.priority or 'P2'}"


def trace_span(con: duckdb.DuckDBPyConnection, pilot: str, start: datetime, end: datetime
               ) -> tuple[datetime, datetime] | None:
    """[first, last] arrival of the trace inside [start, end), whole minutes; None if none."""
    lo, hi = con.execute(
        "SELECT min(ts), max(ts) FROM arrivals WHERE pilot = ? AND ts >= ? AND ts < ?",
        [pilot, start, end]).fetchone()
    if lo is None:
        return None
    lo = lo.replace(second=0, microsecond=0)
    hi = min(end, hi.replace(second=0, microsecond=0) + timedelta(minutes=1))
    return max(start, lo), hi


def load_declared_replay(con: duckdb.DuckDBPyConnection, pilot: str, model: WhatIfModel,
                         phase: str = "baseline", minutes: float | None = 30.0) -> ReplayInput:
    """Replay input of `pilot`'s `phase` arrivals with the declared service model."""
    p_start, p_end = phase_bounds(con, pilot, phase)
    span = trace_span(con, pilot, p_start, p_end)
    if span is None:
        raise NoReplayInput(f"no arrivals in the {phase} phase {p_start} - {p_end}")
    start, end = choose_window(con, pilot, *span, minutes, source="arrivals")
    trace = con.execute(
        "SELECT ts, input_tokens, output_tokens FROM arrivals "
        "WHERE pilot = ? AND ts >= ? AND ts < ? ORDER BY ts", [pilot, start, end]).pl()
    pools = [p for p, _ in model.pools]
    gpus = np.array([n for _, n in model.pools], dtype=float)
    rng = np.random.default_rng(POOL_DRAW_SEED)
    trace = trace.with_columns(pool=pl.Series(
        np.asarray(pools)[rng.choice(len(pools), trace.height, p=gpus / gpus.sum())],
        dtype=pl.String))
    priority = arrival_priority(con, pilot, model)
    arr = normalise_arrivals(trace, start, end, priority=priority, model_class=MODEL_CLASS)
    if arr.height == 0:
        raise NoReplayInput(f"no arrivals in {phase} window {start} - {end}")
    per = model.concurrency_per_gpu
    cluster = slot_cluster(dict(model.pools), per)
    gpn = cluster.gpus_per_node // per  # GPUs per node
    notes: list[str] = []
    # jobs hold whole GPUs: every slot of each GPU they take
    jobs = [_slots(j, per) for j in observed_jobs(con, pilot, pools, start, end, gpn)]
    whole = observed_jobs(con, pilot, pools, p_start, p_end, gpn)
    unmatched = con.execute(
        "SELECT count(*) FROM jobs WHERE pilot = ? AND pool NOT IN (SELECT unnest(?)) "
        "AND end_ts > ? AND start_ts < ?", [pilot, pools, start, end]).fetchone()[0]
    if unmatched:
        notes.append(f"{unmatched} job(s) on pools the whatif block does not declare: "
                     "not replayed")
    specs, reserved, declared = [], cluster.gpu_reserved.copy(), dict(model.pools)
    for p, pool in enumerate(pools):
        n_nodes = cluster.pool_gpus(p) // cluster.gpus_per_node
        k = reserved_nodes(whole[p], n_nodes, gpn, (p_end - p_start).total_seconds())
        hi = int(cluster.pool_offset[p + 1])
        reserved[hi - k * cluster.gpus_per_node: hi] = True
        specs.append(PoolSpec(pool, n_nodes, 0.0, {MODEL_CLASS: 1.0}, reserved_nodes=k))
        held = float((whole[p].gpus * whole[p].duration_us).sum()) / 1e6 / max(
            (p_end - p_start).total_seconds(), 1.0)
        if held > 0.5 * declared[pool]:
            notes.append(f"{pool}: scheduler jobs hold {held:.1f} of its {declared[pool]} "
                         "declared GPUs on average; requests wait for them in the replay")
    cluster = replace(cluster, gpu_reserved=reserved)
    cfg = pilot_config(con, pilot)
    treat = scope_pools(con, pilot, pools, notes)
    if not set(treat) & set(pools):
        notes.append("no declared pool is in the pilot's scope: the declared adjustments "
                     "change nothing in the replay")
    return ReplayInput(
        pilot=pilot, phase=phase, start=start, end=end, arrivals=arr,
        donors=parametric_donors(service_spec(model), model.service.scale_by_tokens),
        cluster=cluster, pool_specs=tuple(specs), jobs=jobs,
        client=ClientSpec(timeout_ms=cfg.get("timeout_ms"), retry_prob=0.0),
        treatment_pools=treat, adjustments=tuple(cfg.get("adjustments") or ()), notes=notes,
        basis=TRACE_BASIS, service_model=describe(model, priority))


def _slots(jobs: PoolJobs, per: int) -> PoolJobs:
    """A pool's jobs with their GPUs counted as slots of the declared cluster."""
    return replace(jobs, gpus=(jobs.gpus * per).astype(np.int32))
