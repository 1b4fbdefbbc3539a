"""Canonical tables (TELEMETRY.md) from engine outcomes: requests, jobs, samples, ground truth."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from pipelines.simulator.cluster import Cluster, uuid_strings
from pipelines.simulator.model import (
    DROPPED,
    MODEL_CLASSES,
    PRIORITIES,
    STATUSES,
    US,
    PoolJobs,
    PoolOutcome,
    PoolWorkload,
    SimConfig,
)
from pipelines.simulator.policies import policy_set
from pipelines.simulator.telemetry import Intervals, gpu_series, hold_power, queue_waiting
from pipelines.simulator.workload import STREAM_IDS, STREAM_TELEMETRY, power_holds, stream

TS = pl.Datetime("us")

REQUESTS_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "parent_request_id": pl.String(),
    "attempt": pl.Int32(),
    "pool": pl.String(),
    "node": pl.String(),
    "gpu": pl.String(),
    "model_class": pl.String(),
    "priority": pl.String(),
    "arrival_ts": TS,
    "dispatch_ts": TS,
    "start_ts": TS,
    "first_token_ts": TS,
    "end_ts": TS,
    "status": pl.String(),
    "input_tokens": pl.Int32(),
    "output_tokens": pl.Int32(),
}
JOBS_SCHEMA: dict[str, pl.DataType] = {
    "job_id": pl.String(),
    "kind": pl.String(),
    "queue": pl.String(),
    "priority": pl.Float64(),
    "submit_ts": TS,
    "eligible_ts": TS,
    "start_ts": TS,
    "end_ts": TS,
    "node": pl.String(),
    "pool": pl.String(),
    "gpus": pl.Int32(),
    "gpu_ids": pl.List(pl.String()),
    "state": pl.String(),
}
# Simulator-only facts kept beside the jobs table for the ground truth, never written out.
HIDDEN_JOB_COLUMNS: dict[str, pl.DataType] = {"_stalled": pl.Boolean(), "_efficiency": pl.Float64()}
SAMPLES_SCHEMA: dict[str, pl.DataType] = {
    "ts": TS,
    "series": pl.String(),
    "pool": pl.String(),
    "node": pl.String(),
    "gpu": pl.String(),
    "value": pl.Float64(),
    "le": pl.Float64(),
}
GROUND_TRUTH_SCHEMA: dict[str, pl.DataType] = {
    "type": pl.String(),
    "pool": pl.String(),
    "gpu": pl.String(),
    "job_id": pl.String(),
    "start_ts": TS,
    "end_ts": TS,
    "magnitude": pl.Float64(),
    "origin": pl.String(),  # injected (a cause we put in) | emergent (an effect we observed)
    "detail": pl.String(),
}


def epoch_us(dt: datetime) -> int:
    """Naive datetimes mean UTC."""
    return (dt - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def _ts(us: np.ndarray, valid: np.ndarray | None = None) -> pl.Series:
    s = pl.Series(us.astype(np.int64)).cast(TS)
    if valid is not None:
        s = pl.select(pl.when(pl.Series(valid)).then(s)).to_series()
    return s


def _names(names: tuple[str, ...] | list[str], idx: np.ndarray, valid: np.ndarray) -> pl.Series:
    """Gather names by index without per-row Python; null where not valid."""
    s = pl.Series(list(names), dtype=pl.String).gather(np.where(valid, idx, 0))
    return pl.select(pl.when(pl.Series(valid)).then(s)).to_series()


def requests_table(
    cfg: SimConfig,
    cluster: Cluster,
    workloads: list[PoolWorkload],
    outcomes: list[PoolOutcome],
) -> pl.DataFrame:
    base = epoch_us(cfg.start)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (
        "pool", "slot", "root_g", "attempt", "arr", "start", "end", "gpu", "status", "cls", "prio",
        "in", "out", "pre", "lat")}
    offset = 0
    mean_lat = cfg.client.dispatch_latency_ms * 1000
    for p, (wl, out) in enumerate(zip(workloads, outcomes, strict=True)):
        n = len(out.arrival_us)
        if (out.status < 0).any():
            raise AssertionError("engine left attempts pending")
        root = out.root
        parts["pool"].append(np.full(n, p, dtype=np.int32))
        parts["slot"].append(np.arange(n))
        parts["root_g"].append(root + offset)
        parts["attempt"].append(out.attempt)
        parts["arr"].append(out.arrival_us)
        parts["start"].append(out.start_us)
        parts["end"].append(out.end_us)
        gl = np.where(out.gpu >= 0, out.gpu + cluster.pool_offset[p], -1)
        parts["gpu"].append(gl)
        parts["status"].append(out.status)
        parts["cls"].append(wl.model_class[root])
        parts["prio"].append(wl.priority[root])
        parts["in"].append(wl.input_tokens[root])
        parts["out"].append(wl.output_tokens[root])
        parts["pre"].append(wl.prefill_us[root])
        lat_rng = stream(cfg.seed, STREAM_IDS, 100 + p)
        lat = lat_rng.exponential(mean_lat, n) if mean_lat > 0 else np.zeros(n)
        parts["lat"].append(np.rint(lat).astype(np.int64))
        offset += n
    c = {k: np.concatenate(v) for k, v in parts.items()}
    # Rows in arrival order (ties: pool, then slot): deterministic and file-friendly.
    order = np.lexsort((c["slot"], c["pool"], c["arr"]))
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    c = {k: v[order] for k, v in c.items()}
    ids = uuid_strings(stream(cfg.seed, STREAM_IDS), len(order))
    root_row = inv[c["root_g"]]

    started = c["start"] >= 0
    arr, st, en = c["arr"], c["start"], c["end"]
    dispatch = np.maximum(arr, st - c["lat"])
    ft = st + c["pre"]
    has_ft = started & (c["pre"] >= 0) & (ft <= en)
    # a dropped attempt ends when it left the queue (its wait is then known, right-censored)
    has_end = ~((c["status"] == DROPPED) & ~started & (en < 0))
    retry = c["attempt"] > 0
    return pl.DataFrame({
        "request_id": ids,
        "parent_request_id": pl.select(
            pl.when(pl.Series(retry)).then(ids.gather(root_row))).to_series(),
        "attempt": pl.Series(c["attempt"], dtype=pl.Int32),
        "pool": _names(cluster.pool_names, c["pool"], np.ones(len(order), bool)),
        "node": _names(cluster.node_names, cluster.gpu_node[np.maximum(c["gpu"], 0)], started),
        "gpu": _names(cluster.gpu_names, c["gpu"], started),
        "model_class": _names(MODEL_CLASSES, c["cls"], np.ones(len(order), bool)),
        "priority": _names(PRIORITIES, c["prio"], np.ones(len(order), bool)),
        "arrival_ts": _ts(base + arr),
        "dispatch_ts": _ts(base + dispatch, started),
        "start_ts": _ts(base + st, started),
        "first_token_ts": _ts(base + ft, has_ft),
        "end_ts": _ts(base + en, has_end),
        "status": _names(STATUSES, c["status"], np.ones(len(order), bool)),
        "input_tokens": pl.Series(c["in"], dtype=pl.Int32),
        "output_tokens": pl.select(pl.when(pl.Series(c["out"] >= 0))
                                   .then(pl.Series(c["out"], dtype=pl.Int32))).to_series(),
    }, schema=REQUESTS_SCHEMA)


def jobs_table(
    cfg: SimConfig, cluster: Cluster, jobs: list[PoolJobs], outcomes: list[PoolOutcome]
) -> pl.DataFrame:
    base = epoch_us(cfg.start)
    horizon = round(cfg.duration_s * US)
    rng = stream(cfg.seed, STREAM_IDS, 1)
    rows: list[tuple] = []
    for p, pj in enumerate(jobs):
        for j in range(len(pj)):
            rows.append((int(pj.submit_us[j]), p, j))
    rows.sort()
    first_id = int(rng.integers(3_000_000, 6_000_000))
    delay = np.where(rng.random(len(rows)) < 0.2, rng.uniform(0, 60 * US, len(rows)), 0)
    cols: dict[str, list] = {k: [] for k in (*JOBS_SCHEMA, *HIDDEN_JOB_COLUMNS)}
    for i, (submit, p, j) in enumerate(rows):
        pj, out = jobs[p], outcomes[p]
        st, en = int(out.job_start_us[j]), int(out.job_end_us[j])
        ran = 0 <= st < horizon
        gl = [int(cluster.pool_offset[p]) + g for g in out.job_gpus[j]] if ran else []
        kind = str(pj.kind[j])
        cols["job_id"].append(str(first_id + 7 * i))
        cols["kind"].append(kind)
        partition = "train" if kind == "training" else "batch"
        cols["queue"].append(f"{partition}-{cluster.pool_names[p]}")
        cols["priority"].append(float(pj.priority[j]))
        cols["submit_ts"].append(base + submit)
        cols["eligible_ts"].append(base + submit + int(min(delay[i], max(st - submit, 0))))
        cols["start_ts"].append(base + st if ran else None)
        cols["end_ts"].append(base + en if ran else None)
        cols["node"].append(cluster.node_names[cluster.gpu_node[gl[0]]] if ran else None)
        cols["pool"].append(cluster.pool_names[p])
        cols["gpus"].append(int(pj.gpus[j]))
        cols["gpu_ids"].append([cluster.gpu_names[g] for g in gl] if ran else None)
        # Still pending when the telemetry ends: the operator cancelled it.
        cols["state"].append(str(pj.state[j]) if ran else "CANCELLED")
        cols["_stalled"].append(bool(pj.stalled[j]))
        cols["_efficiency"].append(float(pj.efficiency[j]))
    df = pl.DataFrame(cols, schema={**JOBS_SCHEMA, **{k: pl.Int64 for k in (
        "submit_ts", "eligible_ts", "start_ts", "end_ts")}, **HIDDEN_JOB_COLUMNS})
    return df.with_columns(pl.col("submit_ts", "eligible_ts", "start_ts", "end_ts").cast(TS))


def samples_table(
    cfg: SimConfig,
    cluster: Cluster,
    workloads: list[PoolWorkload],
    jobs: list[PoolJobs],
    outcomes: list[PoolOutcome],
) -> pl.DataFrame:
    base = epoch_us(cfg.start)
    win = round(cfg.sample_window_s * US)
    nw = int(np.ceil(cfg.duration_s * US / win))
    eff = np.array([cfg.services[c].sm_efficiency if c in cfg.services else 0.6
                    for c in MODEL_CLASSES])
    rng = stream(cfg.seed, STREAM_TELEMETRY)
    rk, rs, re, rsm = [], [], [], []
    jk, js, je, ju, jsm = [], [], [], [], []
    qp, qa, qe = [], [], []
    for p, (wl, pj, out) in enumerate(zip(workloads, jobs, outcomes, strict=True)):
        m = out.start_us >= 0
        rk.append(out.gpu[m].astype(np.int64) + cluster.pool_offset[p])
        rs.append(out.start_us[m])
        re.append(out.end_us[m])
        # Per-request efficiency: the class's, +-10 % (prompt length, batch shape...).
        jitter = rng.uniform(0.9, 1.1, int(m.sum()))
        rsm.append(np.minimum(eff[wl.model_class[out.root[m]]] * jitter, 0.95))
        for j in range(len(pj)):
            for g in out.job_gpus[j]:
                jk.append(int(cluster.pool_offset[p]) + g)
                js.append(int(out.job_start_us[j]))
                je.append(int(out.job_end_us[j]))
                ju.append(float(pj.util_level[j]))
                jsm.append(float(pj.efficiency[j]))
        qp.append(np.full(len(out.arrival_us), p))
        qa.append(out.arrival_us)
        qe.append(np.where(m, out.start_us, out.end_us))
    rsm_a = np.concatenate(rsm)
    req = Intervals(np.concatenate(rk), np.concatenate(rs), np.concatenate(re),
                    np.ones(len(rsm_a)), rsm_a)
    job = Intervals(np.array(jk, dtype=np.int64), np.array(js, dtype=np.int64),
                    np.array(je, dtype=np.int64), np.array(ju), np.array(jsm))
    g = cluster.n_gpus
    util, sm, power = gpu_series(req, job, g, win, nw, rng)
    for p, s, e, watts in power_holds(cfg):  # injected power-latency decoupling
        lo, hi = cluster.pool_offset[p], cluster.pool_offset[p + 1]
        w0, w1 = int(s * US) // win, min(-(-int(e * US) // win), nw)
        power[lo:hi, w0:w1] = hold_power(power[lo:hi, w0:w1], watts, rng)
    q = queue_waiting(np.concatenate(qp), np.concatenate(qa), np.concatenate(qe),
                      len(cfg.pools), win, nw)

    gpu_idx = np.repeat(np.arange(g), nw)
    w_idx = np.tile(np.arange(nw), g)
    ones = np.ones(g * nw, dtype=bool)
    gpu_part = pl.DataFrame({
        "ts": _ts(base + w_idx * win),
        "pool": _names(cluster.pool_names, cluster.gpu_pool[gpu_idx], ones),
        "node": _names(cluster.node_names, cluster.gpu_node[gpu_idx], ones),
        "gpu": _names(cluster.gpu_names, gpu_idx, ones),
    })
    frames = [
        gpu_part.with_columns(series=pl.lit(name), value=pl.Series(v.ravel()))
        for name, v in (("gpu_util", util), ("sm_active", sm), ("power_w", power))
    ]
    npool = len(cfg.pools)
    frames.append(pl.DataFrame({
        "ts": _ts(base + np.tile(np.arange(nw), npool) * win),
        "pool": _names(cluster.pool_names, np.repeat(np.arange(npool), nw),
                       np.ones(npool * nw, bool)),
    }).with_columns(node=pl.lit(None, pl.String), gpu=pl.lit(None, pl.String),
                    series=pl.lit("queue_waiting"), value=pl.Series(q.ravel())))
    out = pl.concat([f.select("ts", "series", "pool", "node", "gpu", "value") for f in frames])
    return out.with_columns(le=pl.lit(None, dtype=pl.Float64)).select(list(SAMPLES_SCHEMA)).cast(
        SAMPLES_SCHEMA)


def ground_truth_table(
    cfg: SimConfig,
    cluster: Cluster,
    workloads: list[PoolWorkload],
    jobs_df: pl.DataFrame,
    requests_df: pl.DataFrame,
) -> pl.DataFrame:
    """Every injected event, plus the retry storms and policy changes they led to."""
    base = epoch_us(cfg.start)
    rows: list[dict] = []
    for p, wl in enumerate(workloads):
        for s, e, mult in wl.bursts:
            rows.append({"type": "burst", "pool": cluster.pool_names[p],
                         "start_ts": base + round(s * US), "end_ts": base + round(e * US),
                         "magnitude": mult, "origin": "injected",
                         "detail": "arrival rate multiplier"})
    ran = jobs_df.filter(pl.col("start_ts").is_not_null())
    for r in ran.iter_rows(named=True):
        for gpu in r["gpu_ids"]:
            common = {"pool": r["pool"], "gpu": gpu, "job_id": r["job_id"],
                      "start_ts": epoch_us(r["start_ts"]), "end_ts": epoch_us(r["end_ts"]),
                      "origin": "injected"}
            rows.append({"type": "batch_job", **common, "magnitude": float(r["gpus"]),
                         "detail": f"{r['kind']} job holding {r['gpus']} GPU(s)"})
            if r["_stalled"]:
                rows.append({"type": "stalled_job", **common,
                             "magnitude": r["_efficiency"],
                             "detail": "job holds the GPU at low SM activity (magnitude = "
                                       "its sm_active efficiency)"})
    for pool in cluster.pool_names:
        wins = cfg.windows_for(pool)
        for a, b in zip(wins, wins[1:], strict=False):
            if a.policies != b.policies:
                rows.append({"type": "policy_change", "pool": pool,
                             "start_ts": base + round(b.start_s * US),
                             "end_ts": base + round(cfg.duration_s * US), "magnitude": None,
                             "origin": "injected",
                             "detail": "+".join(sorted(policy_set(b.policies)))})
    rows.extend(retry_storms(requests_df))
    gt = pl.DataFrame(rows, schema={**GROUND_TRUTH_SCHEMA, "start_ts": pl.Int64,
                                    "end_ts": pl.Int64})
    gt = gt.with_columns(pl.col("start_ts", "end_ts").cast(TS))
    return gt.sort(["start_ts", "type", "pool", "gpu"], nulls_last=True).cast(
        GROUND_TRUTH_SCHEMA)


def retry_storms(requests_df: pl.DataFrame, min_retries: int = 5, min_share: float = 0.1
                 ) -> list[dict]:
    """Emergent: pool-minutes where retries are >= min_share of attempts, merged."""
    per_min = (
        requests_df.group_by("pool", minute=pl.col("arrival_ts").dt.truncate("1m"))
        .agg(n=pl.len(), retries=(pl.col("attempt") > 0).sum())
        .filter((pl.col("retries") >= min_retries)
                & (pl.col("retries") >= min_share * pl.col("n")))
        .sort("pool", "minute")
    )
    rows: list[dict] = []
    cur: dict | None = None
    for r in per_min.iter_rows(named=True):
        start = epoch_us(r["minute"])
        if cur and cur["pool"] == r["pool"] and cur["end_ts"] == start:
            cur["end_ts"] = start + 60 * US
            cur["magnitude"] = max(cur["magnitude"], float(r["retries"]))
            continue
        cur = {"type": "retry_storm", "pool": r["pool"], "start_ts": start,
               "end_ts": start + 60 * US, "magnitude": float(r["retries"]),
               "origin": "emergent", "detail": "retries per minute (peak)"}
        rows.append(cur)
    return rows
