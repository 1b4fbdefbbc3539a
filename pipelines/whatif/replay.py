"""What-if replay input: a phase's observed workload as simulator input (Dagster-free).

What is replayed and how (METRICS.md, What-if):
- arrivals: the first attempts (attempt = 0) of a window of the phase, with their pool,
  priority class, model class and token counts, at their observed arrival times. Retries are
  *not* replayed: the client model (fitted below) creates them from the simulated outcomes.
  A trace (`arrivals` table, Azure / Mooncake / BurstGPT file) gives times and tokens only:
  one pool, one class, one priority;
- service times: **empirical resampling** of observed execution times (end_ts - start_ts), one
  donor per logical request (its ok attempt, else its longest timed-out one as a censored
  donor, drawn by Kaplan-Meier weights: `service_donors`, `fit_donors`) per pool x model class x
  size bucket (quartiles of input + output tokens within
  the pool and class), falling back to pool x class, class, everything. The first-token
  offset is drawn with its service time (same observed attempt). Resampling, not the
  request's own time: timed-out attempts have no observed service time, and seeds then differ
  in their draws so the spread across seeds is a real uncertainty. Services past the longest
  completed one are known only to time out, and are replayed as timing out;
- GPU slots: the distinct GPUs of each pool (requests, samples, jobs), on their nodes;
- batch jobs: observed jobs of each pool, by submit time (start if unknown) and held
  duration (end - start); a job already holding GPUs when the window opens is submitted at the
  window start with its remaining duration. The engine re-decides when a job starts;
- client: the pilot's timeout (pilots.config_json `timeout_ms`); queue abandonment limit,
  retry probability, backoff, attempt cap, error / cancel rates and dispatch latency fitted
  from the phase's attempts (`fit_client`);
- GPU telemetry (gpu_util, sm_active, power_w) is *modeled* from the replayed busy
  intervals with the simulator's default per-class efficiencies: utilisation figures of a
  replay are model outputs, not measurements.

A pilot without per-request rows replays its `arrivals` trace with a *declared* service
model instead (pipelines/whatif/declared.py): parametric service times, declared GPU slots.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl

from pipelines.simulator.cluster import Cluster
from pipelines.simulator.model import (
    MODEL_CLASSES,
    PRIORITIES,
    US,
    ClientSpec,
    JobSpec,
    PolicyWindow,
    PoolJobs,
    PoolSpec,
    PoolWorkload,
    SimConfig,
)
from pipelines.simulator.policies import Policy
from pipelines.simulator.scenarios import DEMO_SERVICES
from pipelines.simulator.workload import STREAM_REPLAY, stream

SIZE_BUCKETS = 4
MINUTE_US = 60_000_000
LEVEL_MIN_ATTEMPTS = 5  # a pool-minute with fewer ok attempts keeps level 1
WARMUP_MINUTES = 15.0  # arrivals replayed before a measured window so its queues are warm
DEFAULT_GPN = 8
# whatif_status.basis: a replay of observed requests, or of a trace with a declared model
PER_REQUEST = "per-request replay"
TRACE_BASIS = "arrival trace + declared service model"


class NoReplayInput(ValueError):
    """The warehouse lacks what a replay needs (no arrivals in the window, no service times):
    a not-modeled state with this reason, not invalid input."""


@dataclass
class ServiceDonors:
    """Observed (service, first-token offset) pairs, grouped into cells for resampling."""

    service_us: np.ndarray  # int64, sorted by cell
    prefill_us: np.ndarray  # int64, -1 = no first token
    cells: dict[tuple, tuple[int, int]]  # key -> (start, count) in the arrays
    edges: dict[tuple[str, str], np.ndarray]  # (pool, class) -> token-size bucket edges
    parametric: str | None = None  # parametric_service spec (traces, declared models)
    token_scale: bool = False  # parametric draws scaled by tokens / mean tokens of the draw
    # key -> cumulative Kaplan-Meier weights of the cell's donors (in array order, last = 1):
    # a draw is the donor where the cumulative weight first exceeds the uniform
    cum: dict[tuple, np.ndarray] = field(default_factory=dict)

    def draw(self, pools: list[str], classes: list[str], tokens: np.ndarray,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        n = len(pools)
        u = rng.random(n)
        if self.parametric is not None:
            svc = parametric_service(self.parametric, u, rng)
            if self.token_scale:
                svc = scale_by_tokens(svc, tokens)
            return svc, np.full(n, -1, np.int64)
        idx = np.empty(n, dtype=np.int64)
        keys = pl.DataFrame({"pool": pools, "cls": classes, "tok": tokens}).with_row_index()
        for (pool, cls), grp in keys.group_by(["pool", "cls"], maintain_order=True):
            rows = grp["index"].to_numpy()
            e = self.edges.get((pool, cls))
            bucket = (np.searchsorted(e, grp["tok"].to_numpy(), "right") if e is not None
                      else np.zeros(len(rows), dtype=np.int64))
            for b in np.unique(bucket).tolist():
                m = rows[bucket == b]
                key = self._cell(pool, cls, b)
                start, count = self.cells[key]
                pick = (np.searchsorted(self.cum[key], u[m], "right") if key in self.cum
                        else (u[m] * count).astype(np.int64))
                idx[m] = start + np.minimum(pick, count - 1)
        return self.service_us[idx], self.prefill_us[idx]

    def _cell(self, pool: str, cls: str, b: int) -> tuple:
        for key in ((pool, cls, b), (pool, cls), (cls,), ()):
            if key in self.cells:
                return key
        raise NoReplayInput("no observed service times to resample")


SERVICE_SPECS = "exp:MEAN_MS, lognormal:MEDIAN_MS,SIGMA, gamma:MEAN_MS,CV or det:MEAN_MS"


def parametric_service(spec: str, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A parametric service-time model -> service times in microseconds (at least 1):
    `exp:MEAN_MS`, `lognormal:MEDIAN_MS,SIGMA`, `gamma:MEAN_MS,CV`, `det:MEAN_MS`.
    Exponential draws by inversion of the common uniforms `u`; the others draw from `rng`."""
    kind, _, args = spec.partition(":")
    try:
        vals = [float(x) for x in args.split(",") if x]
    except ValueError:
        vals = []
    if kind == "exp" and len(vals) == 1:
        ms = -np.log1p(-u) * vals[0]
    elif kind == "lognormal" and len(vals) == 2:
        ms = np.exp(np.log(vals[0]) + vals[1] * rng.standard_normal(len(u)))
    elif kind == "gamma" and len(vals) == 2 and vals[1] > 0:
        shape = 1 / vals[1] ** 2  # mean = shape * scale, CV = 1 / sqrt(shape)
        ms = rng.gamma(shape, vals[0] / shape, len(u))
    elif kind == "det" and len(vals) == 1:
        ms = np.full(len(u), vals[0])
    else:
        raise ValueError(f"service model {spec!r}: expected {SERVICE_SPECS}")
    return np.maximum(np.rint(ms * 1000), 1).astype(np.int64)


def scale_by_tokens(svc: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Service times proportional to each request's tokens, same mean over the requests that
    have tokens (a request without tokens keeps its draw)."""
    has = tokens > 0
    if not has.any():
        return svc
    factor = np.where(has, tokens / tokens[has].mean(), 1.0)
    return np.maximum(np.rint(svc * factor), 1).astype(np.int64)


def km_weights(x: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """Kaplan-Meier probability of each donor of a cell (in the given order, sum 1).

    `x`: a completed donor's service time, or a censored donor's censoring point (what it ran
    before the timeout cut it: its service is longer). Waiting and service are independent, so
    the censoring is uninformative and the estimator unbiased. A censored donor carries no mass
    of its own: it passes it on to the longer donors. Mass beyond the longest completed service
    (services no attempt was seen to complete) stays on the censored donors past it, whose
    value in the arrays is long enough to time out again."""
    n = len(x)
    order = np.lexsort((censored, x))  # events before censorings at ties (convention)
    ev = ~censored[order]
    at_risk = n - np.arange(n)
    surv = np.cumprod(1.0 - ev / at_risk)
    prev = np.concatenate(([1.0], surv[:-1]))
    mass = np.where(ev, prev / at_risk, 0.0)
    tail = float(surv[-1]) if n else 0.0
    if tail > 0:
        last = int(np.flatnonzero(ev)[-1]) if ev.any() else -1
        mass[last + 1:] += tail / (n - last - 1)  # all censored (events end at `last`)
    w = np.empty(n)
    w[order] = mass
    return w


def fit_donors(ok: pl.DataFrame) -> ServiceDonors:
    """`ok`: pool, model_class, tokens, service_us, prefill_us of observed ok attempts, and
    optionally `censor_us`: for a timed-out donor, what it ran before the timeout (then
    `service_us` is a value that times out again). Draws follow the cell's Kaplan-Meier
    estimate, so a donor that timed out after a long wait stands for the longer services it
    may have had, not for a certain timeout."""
    if ok.height == 0:
        raise NoReplayInput("no ok attempts with start and end times: cannot fit service times")
    if "censor_us" not in ok.columns:
        ok = ok.with_columns(censor_us=pl.lit(None, pl.Int64))
    edges: dict[tuple[str, str], np.ndarray] = {}
    parts = []
    for (pool, cls), g in ok.group_by(["pool", "model_class"], maintain_order=True):
        tok = g["tokens"].to_numpy()
        e = np.unique(np.quantile(tok, np.linspace(0, 1, SIZE_BUCKETS + 1)[1:-1]))
        edges[(pool, cls)] = e
        parts.append(g.with_columns(bucket=pl.Series(np.searchsorted(e, tok, "right"))))
    df = pl.concat(parts).sort("pool", "model_class", "bucket", maintain_order=True)
    svc = df["service_us"].to_numpy().astype(np.int64)
    pre = df["prefill_us"].fill_null(-1).to_numpy().astype(np.int64)
    cens = df["censor_us"].is_not_null().to_numpy()
    x = df["censor_us"].fill_null(df["service_us"]).to_numpy().astype(np.int64)
    cells: dict[tuple, tuple[int, int]] = {}
    idx_of: dict[tuple, np.ndarray] = {}
    keyed = df.with_row_index()
    for cols in (["pool", "model_class", "bucket"], ["pool", "model_class"]):
        for key, g in keyed.group_by(cols, maintain_order=True):
            ix = g["index"].to_numpy()
            cells[tuple(key)] = (int(ix[0]), len(ix))  # contiguous: sorted by these keys
            idx_of[tuple(key)] = ix
    # class-level and global cells need their own contiguous copies
    extra_s, extra_p, off = [], [], len(svc)
    for key, g in keyed.group_by(["model_class"], maintain_order=True):
        ix = g["index"].to_numpy()
        cells[tuple(key)] = (off, len(ix))
        idx_of[tuple(key)] = ix
        extra_s.append(svc[ix])
        extra_p.append(pre[ix])
        off += len(ix)
    cells[()] = (0, len(svc))
    idx_of[()] = np.arange(len(svc))
    cum = {}
    if cens.any():  # without censored donors every donor weighs the same: uniform draws
        for key, ix in idx_of.items():
            c = np.cumsum(km_weights(x[ix], cens[ix]))
            cum[key] = c / c[-1]
    return ServiceDonors(np.concatenate([svc, *extra_s]), np.concatenate([pre, *extra_p]),
                         cells, edges, cum=cum)


@dataclass
class ReplayInput:
    """Everything a replay needs, independent of policy and seed."""

    pilot: str
    phase: str
    start: datetime  # replay window, naive UTC
    end: datetime
    arrivals: pl.DataFrame  # pool, priority, model_class, arrival_us (rel.), input/output tokens
    donors: ServiceDonors
    cluster: Cluster
    pool_specs: tuple[PoolSpec, ...]
    jobs: list[PoolJobs]
    client: ClientSpec
    treatment_pools: tuple[str, ...]  # pools of the treatment segment ('all' = every pool)
    adjustments: tuple[str, ...]  # pilot.yaml adjustments
    notes: list[str] = field(default_factory=list)
    basis: str = PER_REQUEST  # whatif_status.basis: what the replay was built from
    service_model: str | None = None  # a declared service model, in words
    # start of the measured window: a warm-up [start, measure_start) fills the queues first
    measure_start: datetime | None = None
    # pool, m (epoch minute), factor: the observed service-time level of each pool-minute
    # relative to its pool x class median (slowdowns, contention); None = no time variation
    service_level: pl.DataFrame | None = None

    @property
    def phase_start(self) -> datetime:
        return self.measure_start or self.start

    @property
    def observed(self) -> bool:
        """Whether the window has observed requests to measure and compare the replay with."""
        return self.basis == PER_REQUEST

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()

    def config(self, policies: dict[str, frozenset[Policy]], seed: int) -> SimConfig:
        return SimConfig(
            start=self.start, duration_s=self.duration_s, pools=self.pool_specs,
            services=DEMO_SERVICES, client=self.client, jobs=JobSpec(),
            policy={p: (PolicyWindow(0.0, ps),) for p, ps in policies.items()},
            gpus_per_node=self.cluster.gpus_per_node, telemetry=True, seed=seed,
        )

    def workloads(self, seed: int) -> list[PoolWorkload]:
        """Per pool, the observed arrivals with service times drawn for this seed."""
        rng = stream(seed, STREAM_REPLAY)
        a = self.arrivals
        tokens = (a["input_tokens"].fill_null(0) + a["output_tokens"].fill_null(0)).to_numpy()
        svc, pre = self.donors.draw(a["pool"].to_list(), a["model_class"].to_list(), tokens, rng)
        if self.service_level is not None and self.service_level.height:
            # donors are level-free (divided by their minute's level); each replayed request
            # gets the level observed in its pool at its arrival minute, so slow periods stay
            # where they were instead of being spread over the phase
            base = epoch(self.start)
            f = (a.select("pool", m=(pl.col("arrival_us") + base) // MINUTE_US)
                 .join(self.service_level, on=["pool", "m"], how="left", maintain_order="left")
                 ["factor"].fill_null(1.0).to_numpy())
            svc = np.maximum(np.rint(svc * f), 1).astype(np.int64)
            pre = np.where(pre >= 0, np.rint(pre * f), pre).astype(np.int64)
        pre = np.where(pre > svc, svc, pre)
        pool_ix = {n: i for i, n in enumerate(self.cluster.pool_names)}
        pidx = a["pool"].replace_strict(pool_ix, return_dtype=pl.Int32).to_numpy()
        prio = a["priority"].replace_strict({p: i for i, p in enumerate(PRIORITIES)},
                                            default=2, return_dtype=pl.Int8).to_numpy()
        cls = a["model_class"].replace_strict({c: i for i, c in enumerate(MODEL_CLASSES)},
                                              default=len(MODEL_CLASSES) - 1,
                                              return_dtype=pl.Int8).to_numpy()
        arr = a["arrival_us"].to_numpy().astype(np.int64)
        inp = a["input_tokens"].fill_null(0).to_numpy().astype(np.int32)
        out = a["output_tokens"].fill_null(-1).to_numpy().astype(np.int32)
        wls = []
        for p in range(len(self.cluster.pool_names)):
            m = np.flatnonzero(pidx == p)
            m = m[np.argsort(arr[m], kind="stable")]
            wls.append(PoolWorkload(arr[m], prio[m], cls[m], inp[m], out[m], svc[m], pre[m], []))
        return wls


# --- reading the warehouse -----------------------------------------------------------------


def phase_bounds(con: duckdb.DuckDBPyConnection, pilot: str, phase: str
                 ) -> tuple[datetime, datetime]:
    """[start, end) of the pilot's phase; ValueError when pilot.yaml declared no such phase."""
    row = con.execute("SELECT start_ts, end_ts FROM phases WHERE pilot = ? AND phase = ?",
                      [pilot, phase]).fetchone()
    if row is None:
        raise ValueError(f"pilot {pilot!r} has no phase {phase!r}")
    return row[0], row[1]


def choose_window(con: duckdb.DuckDBPyConnection, pilot: str, start: datetime, end: datetime,
                  minutes: float | None, source: str = "requests") -> tuple[datetime, datetime]:
    """A `minutes` slice of [start, end): the one whose first-attempt count is closest to the
    phase's average (a representative, not a peak, slice); whole phase if minutes is None."""
    total = (end - start).total_seconds()
    if minutes is None or minutes * 60 >= total:
        return start, end
    length = timedelta(minutes=minutes)
    step = min(length, timedelta(minutes=5))
    ts = "arrival_ts" if source == "requests" else "ts"
    where = "AND attempt = 0" if source == "requests" else ""
    per_min = con.execute(
        f"SELECT epoch_us({ts}) // 60000000 AS m, count(*) FROM {source} "
        f"WHERE pilot = ? AND {ts} >= ? AND {ts} < ? {where} GROUP BY 1",
        [pilot, start, end]).fetchall()
    counts = dict(per_min)
    m0 = int((start - datetime(1970, 1, 1)).total_seconds() // 60)
    n_min = int(total // 60)
    series = np.array([counts.get(m0 + i, 0) for i in range(n_min)], dtype=float)
    w, s = int(minutes), int(step.total_seconds() // 60)
    target = series.sum() / n_min * w
    best = min(range(0, n_min - w + 1, max(s, 1)),
               key=lambda i: (abs(series[i:i + w].sum() - target), i))
    lo = start + timedelta(minutes=best)
    return lo, lo + length


def pilot_config(con: duckdb.DuckDBPyConnection, pilot: str) -> dict:
    """The pilot's validated pilot.yaml as stored in `pilots.config_json` ({} without it)."""
    row = con.execute("SELECT config_json FROM pilots WHERE pilot = ?", [pilot]).fetchone()
    return json.loads(row[0]) if row else {}


def fit_client(con: duckdb.DuckDBPyConnection, pilot: str, start: datetime, end: datetime,
               timeout_ms: float | None) -> ClientSpec:
    """Client behaviour seen in [start, end): timeout, abandonment, retries, failures, dispatch.

    An attempt that failed (timeout, dropped) failed at its `end_ts`: for a dropped attempt
    that is when it left the queue (TELEMETRY.md lets it be NULL: such an attempt counts for
    the retry probability but not for the backoff, whose start is unknown). The timeout is
    pilot.yaml's `timeout_ms`, else the median time from arrival to end of the attempts that
    timed out; the abandonment limit the median wait of attempts dropped before starting
    (else the longest started wait, when drops exist)."""
    q = con.execute(
        """
        WITH r AS (
            SELECT *, epoch_us(start_ts) - epoch_us(arrival_ts) AS wait_us,
                   epoch_us(end_ts) - epoch_us(arrival_ts) AS held_us
            FROM requests WHERE pilot = $p AND arrival_ts >= $s AND arrival_ts < $e
        ),
        fails AS (
            SELECT coalesce(parent_request_id, request_id) AS root, attempt,
                   epoch_us(end_ts) AS fail_us
            FROM r WHERE status IN ('timeout', 'dropped')
        ),
        retries AS (
            SELECT parent_request_id AS root, attempt, epoch_us(arrival_ts) AS arr_us
            FROM r WHERE attempt > 0
        )
        SELECT
            max(wait_us) FILTER (WHERE start_ts IS NOT NULL),
            count(*) FILTER (WHERE status = 'dropped' AND start_ts IS NULL),
            median(held_us) FILTER (WHERE status = 'dropped' AND start_ts IS NULL),
            median(held_us) FILTER (WHERE status = 'timeout'),
            max(attempt),
            (SELECT count(*) FROM fails),
            (SELECT count(*) FROM retries),
            (SELECT count(*) FROM fails f WHERE f.attempt = (SELECT max(attempt) FROM r)),
            (SELECT avg(x.arr_us - f.fail_us) FROM retries x
               JOIN fails f ON f.root = x.root AND f.attempt = x.attempt - 1
              WHERE x.attempt = 1 AND f.fail_us IS NOT NULL),
            avg(CASE WHEN status = 'error' THEN 1.0 ELSE 0.0 END)
                FILTER (WHERE start_ts IS NOT NULL),
            avg(CASE WHEN status = 'cancelled' THEN 1.0 ELSE 0.0 END)
                FILTER (WHERE start_ts IS NOT NULL),
            avg(epoch_us(start_ts) - epoch_us(dispatch_ts)) FILTER (WHERE dispatch_ts IS NOT NULL)
        FROM r
        """, {"p": pilot, "s": start, "e": end}).fetchone()
    (max_wait, drops, drop_wait_us, timeout_held_us, max_att, fails, retries, fails_at_cap,
     backoff_us, err, canc, disp_us) = q
    eligible = max((fails or 0) - (fails_at_cap or 0), 0)
    if drop_wait_us is not None:
        max_queue_ms: float | None = round(drop_wait_us / 1000, 3)
    else:  # drops without a drop time: the limit shows as the longest started wait
        max_queue_ms = math.ceil(max_wait / 1000) if drops and max_wait else None
    if timeout_ms is None and timeout_held_us is not None:
        timeout_ms = round(timeout_held_us / 1000, 3)
    # first retries: backoff x U(0.5, 1.5) jitter (mean 1), so the mean gap is the backoff
    return ClientSpec(
        timeout_ms=timeout_ms,
        max_queue_ms=max_queue_ms,
        retry_prob=min(1.0, (retries or 0) / eligible) if eligible else 0.0,
        backoff_ms=(backoff_us or 1_000_000) / 1000,
        max_attempts=int(max_att or 0) + 1,
        error_rate=float(err or 0.0),
        cancel_rate=float(canc or 0.0),
        dispatch_latency_ms=float(disp_us or 0.0) / 1000,
    )


def observed_cluster(con: duckdb.DuckDBPyConnection, pilot: str, pools: list[str]
                     ) -> tuple[Cluster, list[str]]:
    """GPU slots per pool from every table that names them; nodes padded to equal size."""
    rows = con.execute(
        """
        SELECT DISTINCT pool, node, gpu FROM (
            SELECT pool, node, gpu FROM requests WHERE pilot = $p AND gpu IS NOT NULL
            UNION ALL
            SELECT pool, node, gpu FROM samples WHERE pilot = $p AND gpu IS NOT NULL
            UNION ALL
            SELECT pool, node, unnest(gpu_ids) AS gpu FROM jobs
             WHERE pilot = $p AND gpu_ids IS NOT NULL
        ) WHERE pool IS NOT NULL
        ORDER BY ALL
        """, {"p": pilot}).fetchall()
    by_pool: dict[str, dict[str, list[str]]] = {p: {} for p in pools}
    for pool, node, gpu in rows:
        if pool in by_pool:
            by_pool[pool].setdefault(node or f"{pool}-node", []).append(gpu)
    sizes = [len(g) for nodes in by_pool.values() for g in nodes.values()]
    gpn = max(sizes) if sizes else DEFAULT_GPN
    notes: list[str] = []
    gpu_names, node_names, gpu_pool, gpu_node, offset = [], [], [], [], [0]
    for p, pool in enumerate(pools):
        nodes = by_pool[pool] or {f"{pool}-node-0": []}
        for node, gpus in sorted(nodes.items()):
            if len(gpus) < gpn:
                notes.append(f"{pool}/{node}: {gpn - len(gpus)} unseen GPU slot(s) assumed")
            gpus = gpus + [f"{node}-slot-{i}" for i in range(len(gpus), gpn)]
            for g in gpus:
                gpu_names.append(g)
                gpu_pool.append(p)
                gpu_node.append(len(node_names))
            node_names.append(node)
        offset.append(len(gpu_names))
    cluster = Cluster(
        pool_names=tuple(pools), pool_offset=np.asarray(offset, dtype=np.int64),
        gpu_pool=np.asarray(gpu_pool, dtype=np.int32),
        gpu_node=np.asarray(gpu_node, dtype=np.int32),
        gpu_reserved=np.zeros(len(gpu_names), dtype=bool),
        node_names=tuple(node_names), gpu_names=tuple(gpu_names), gpus_per_node=gpn)
    return cluster, notes


def observed_jobs(con: duckdb.DuckDBPyConnection, pilot: str, pools: list[str],
                  start: datetime, end: datetime, gpn: int) -> list[PoolJobs]:
    """Jobs holding or wanting GPUs inside [start, end), per pool, relative to `start`."""
    df = con.execute(
        """
        SELECT pool, kind, state, coalesce(priority, 0) AS priority, gpus,
               greatest(epoch_us(coalesce(submit_ts, start_ts)), epoch_us($s)) - epoch_us($s)
                   AS submit_us,
               epoch_us(end_ts) - greatest(epoch_us(start_ts), epoch_us($s)) AS duration_us
        FROM jobs
        WHERE pilot = $p AND start_ts IS NOT NULL AND end_ts IS NOT NULL AND gpus > 0
          AND end_ts > $s AND coalesce(submit_ts, start_ts) < $e
        ORDER BY submit_us, pool, kind, state, priority, gpus, duration_us
        """, {"p": pilot, "s": start, "e": end}).pl()
    out = []
    for pool in pools:
        g = df.filter((pl.col("pool") == pool) & (pl.col("duration_us") > 0))
        n = g.height
        out.append(PoolJobs(
            submit_us=g["submit_us"].to_numpy().astype(np.int64),
            gpus=np.minimum(g["gpus"].to_numpy(), gpn).astype(np.int32),
            duration_us=g["duration_us"].to_numpy().astype(np.int64),
            kind=g["kind"].to_numpy().astype(str), state=g["state"].to_numpy().astype(str),
            priority=g["priority"].to_numpy().astype(float),
            # unobserved: the simulator's defaults (only GPU telemetry of the replay uses them)
            efficiency=np.full(n, 0.7), util_level=np.full(n, 0.96),
            stalled=np.zeros(n, dtype=bool)))
    return out


def reserved_nodes(jobs: PoolJobs, nodes: int, gpn: int, seconds: float) -> int:
    """Nodes batch separation would set aside: enough for the jobs' mean GPU demand."""
    held = float((jobs.gpus * (jobs.duration_us / US)).sum()) / max(seconds, 1.0)
    return int(min(max(math.ceil(held / gpn), 1), max(nodes - 1, 0)))


def load_replay(con: duckdb.DuckDBPyConnection, pilot: str, phase: str = "baseline",
                minutes: float | None = None, arrivals: pl.DataFrame | None = None,
                warmup_minutes: float = 0.0) -> ReplayInput:
    """Build the replay input of `pilot`'s `phase` (whole, or a `minutes` slice of it).

    `warmup_minutes`: the arrivals of that many minutes before the window are replayed too,
    so the measured window starts with the queues the workload builds, not empty ones (only
    [measure_start, end) is measured). `arrivals` (columns ts, input_tokens, output_tokens[,
    pool, priority, model_class]) replaces the observed first attempts, e.g. the pilot's
    `arrivals` trace table."""
    p_start, p_end = phase_bounds(con, pilot, phase)
    measure_start, end = choose_window(con, pilot, p_start, p_end, minutes)
    start = measure_start - timedelta(minutes=warmup_minutes)
    cfg = pilot_config(con, pilot)
    base = epoch(start)
    if arrivals is None:
        arr = con.execute(
            """
            SELECT pool, CAST(priority AS VARCHAR) AS priority,
                   CAST(model_class AS VARCHAR) AS model_class,
                   epoch_us(arrival_ts) - $b AS arrival_us, input_tokens, output_tokens
            FROM requests
            WHERE pilot = $p AND attempt = 0 AND arrival_ts >= $s AND arrival_ts < $e
            -- ties in text order, whether the warehouse stores these as ENUMs (declaration
            -- order) or as VARCHAR (older warehouses): the same replay from the same rows
            ORDER BY arrival_us, pool, priority, model_class, input_tokens, output_tokens
            """, {"p": pilot, "s": start, "e": end, "b": base}).pl()
    else:
        arr = normalise_arrivals(arrivals, start, end)
    if arr.height == 0:
        raise NoReplayInput(f"no arrivals in {phase} window {start} - {end}")
    timeout_us = int((cfg.get("timeout_ms") or 0) * 1000)
    ok = service_donors(con, pilot, p_start, p_end, timeout_us)
    level = service_levels(con, pilot, min(start, p_start), max(end, p_end))
    ok = (ok.join(level, on=["pool", "m"], how="left", maintain_order="left")
          .with_columns(f=pl.col("factor").fill_null(1.0))
          .with_columns(service_us=pl.max_horizontal((pl.col("service_us") / pl.col("f"))
                                                     .round(), 1).cast(pl.Int64),
                        prefill_us=(pl.col("prefill_us") / pl.col("f")).round()
                        .cast(pl.Int64),
                        censor_us=(pl.col("censor_us") / pl.col("f")).round()
                        .cast(pl.Int64))
          .drop("m", "factor", "f"))
    pools = sorted(set(arr["pool"].unique().to_list())
                   | set(con.execute("SELECT DISTINCT pool FROM requests WHERE pilot = ?",
                                     [pilot]).pl()["pool"].to_list()))
    cluster, notes = observed_cluster(con, pilot, pools)
    gpn = cluster.gpus_per_node
    jobs = observed_jobs(con, pilot, pools, start, end, gpn)
    whole = observed_jobs(con, pilot, pools, p_start, p_end, gpn)
    specs, reserved = [], cluster.gpu_reserved.copy()
    for p, pool in enumerate(pools):
        n_nodes = cluster.pool_gpus(p) // gpn
        k = reserved_nodes(whole[p], n_nodes, gpn, (p_end - p_start).total_seconds())
        hi = int(cluster.pool_offset[p + 1])
        reserved[hi - k * gpn: hi] = True
        mix = ok.filter(pl.col("pool") == pool)["model_class"].value_counts()
        mix_arr = arr.filter(pl.col("pool") == pool)["model_class"].value_counts()
        model_mix = {c: float(n) for c, n in zip(mix["model_class"], mix["count"], strict=True)}
        for c, n in zip(mix_arr["model_class"], mix_arr["count"], strict=True):
            model_mix.setdefault(c, float(n))
        specs.append(PoolSpec(pool, n_nodes, 0.0, model_mix or {"other": 1.0},
                              reserved_nodes=k))
    cluster = replace(cluster, gpu_reserved=reserved)
    treat = scope_pools(con, pilot, pools, notes)
    client = fit_client(con, pilot, p_start, p_end, cfg.get("timeout_ms"))
    return ReplayInput(
        pilot=pilot, phase=phase, start=start, end=end, arrivals=arr,
        donors=fit_donors(ok), cluster=cluster, pool_specs=tuple(specs), jobs=jobs,
        client=client, treatment_pools=treat,
        adjustments=tuple(cfg.get("adjustments") or ()), notes=notes,
        measure_start=measure_start, service_level=level)


def service_donors(con: duckdb.DuckDBPyConnection, pilot: str, start: datetime,
                   end: datetime, timeout_us: int) -> pl.DataFrame:
    """Service-time donors of the attempts arriving in [start, end): pool, model_class,
    tokens, service_us, censor_us, prefill_us, m (epoch minute of start_ts).

    One donor per logical request: a retry repeats its request's work, so donors taken per
    attempt would count a request once per attempt, and the requests that are retried (the
    ones that timed out: the long ones) several times. Its ok attempt when it has one; else
    its longest-running timed-out attempt, censored (service > what ran, `censor_us`;
    `service_us` = what ran + the timeout, which times out again): the draws follow the
    Kaplan-Meier estimate (fit_donors), so a timed-out donor does not count as a certain
    timeout (most timed out because they had waited first)."""
    return con.execute(
        """
        WITH started AS (
            SELECT pool, model_class, status, attempt,
                   coalesce(parent_request_id, request_id) AS root,
                   coalesce(input_tokens, 0) + coalesce(output_tokens, 0) AS tokens,
                   epoch_us(end_ts) - epoch_us(start_ts) AS ran_us,
                   epoch_us(first_token_ts) - epoch_us(start_ts) AS prefill_us,
                   epoch_us(start_ts) // 60000000 AS m
            FROM requests
            WHERE pilot = $p AND start_ts IS NOT NULL AND end_ts > start_ts
              AND (status = 'ok' OR (status = 'timeout' AND $t > 0))
              AND arrival_ts >= $s AND arrival_ts < $e
            QUALIFY row_number() OVER (PARTITION BY root
                                       ORDER BY status = 'ok' DESC, ran_us DESC, attempt) = 1
        )
        -- model_class as text: the same order (and draws) from an ENUM as from a VARCHAR
        SELECT pool, CAST(model_class AS VARCHAR) AS model_class, tokens,
               ran_us + CASE WHEN status = 'timeout' THEN $t ELSE 0 END AS service_us,
               CASE WHEN status = 'timeout' THEN ran_us END AS censor_us,
               prefill_us, m
        FROM started
        ORDER BY ALL  -- a total order: the donor arrays (and so every draw) never depend on
                      -- the scan order
        """, {"p": pilot, "s": start, "e": end, "t": timeout_us}).pl()


def service_levels(con: duckdb.DuckDBPyConnection, pilot: str, start: datetime,
                   end: datetime) -> pl.DataFrame:
    """pool, m (epoch minute of start_ts), factor: the median over a pool-minute's ok attempts
    of service time / its pool x model-class median over [start, end). 1 = a typical minute;
    4 = services ran four times slower (a slowdown, contention). Minutes with fewer than
    LEVEL_MIN_ATTEMPTS ok attempts are left out (level 1)."""
    return con.execute(
        """
        WITH ok AS (
            SELECT pool, model_class, epoch_us(start_ts) // 60000000 AS m,
                   CAST(epoch_us(end_ts) - epoch_us(start_ts) AS DOUBLE) AS svc
            FROM requests
            WHERE pilot = $p AND status = 'ok' AND end_ts > start_ts
              AND start_ts >= $s AND start_ts < $e
        ),
        med AS (SELECT pool, model_class, median(svc) AS med FROM ok GROUP BY ALL)
        SELECT ok.pool, ok.m, median(ok.svc / med.med) AS factor
        FROM ok JOIN med USING (pool, model_class)
        WHERE med.med > 0
        GROUP BY ok.pool, ok.m
        HAVING count(*) >= $n
        ORDER BY ALL
        """, {"p": pilot, "s": start, "e": end, "n": LEVEL_MIN_ATTEMPTS}).pl()


def scope_pools(con: duckdb.DuckDBPyConnection, pilot: str, pools: list[str],
                    notes: list[str]) -> tuple[str, ...]:
    """Pools of the treatment segment (pilot_scope); a scope by priority or share cannot be
    replayed per pool, so the declared adjustments then apply to every pool (noted)."""
    scope = con.execute("SELECT kind, pools FROM pilot_scope WHERE pilot = ?",
                        [pilot]).fetchone()
    if scope is None or scope[0] == "all":
        return tuple(pools)
    if scope[0] == "pools":
        return tuple(scope[1])
    notes.append(f"scope by {scope[0]}: declared adjustments applied to every pool")
    return tuple(pools)


def epoch(dt: datetime) -> int:
    return (dt - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def normalise_arrivals(df: pl.DataFrame, start: datetime, end: datetime,
                       pool: str = "trace", priority: str = "P2", model_class: str = "llm"
                       ) -> pl.DataFrame:
    """A trace frame (ts, input_tokens, output_tokens, ...) -> replay arrivals in [start, end)."""
    base = epoch(start)
    out = df.filter((pl.col("ts") >= start) & (pl.col("ts") < end)).sort("ts")
    return out.select(
        (pl.col("pool") if "pool" in out.columns else pl.lit(pool)).alias("pool"),
        (pl.col("priority") if "priority" in out.columns else pl.lit(priority)).alias("priority"),
        (pl.col("model_class") if "model_class" in out.columns
         else pl.lit(model_class)).alias("model_class"),
        (pl.col("ts").cast(pl.Datetime("us")).dt.epoch("us") - base).alias("arrival_us"),
        pl.col("input_tokens").cast(pl.Int32),
        pl.col("output_tokens").cast(pl.Int32),
    )


# --- trace files ---------------------------------------------------------------------------

TRACE_ORIGIN = datetime(2026, 1, 1)  # relative traces are anchored here


def read_trace(path: str, kind: str) -> pl.DataFrame:
    """Azure CSV (absolute TIMESTAMP), Mooncake JSONL (ms from start), BurstGPT CSV (s from
    start) -> ts, input_tokens, output_tokens."""
    if kind == "azure":
        df = pl.read_csv(path, columns=["TIMESTAMP", "ContextTokens", "GeneratedTokens"])
        ts = pl.col("TIMESTAMP").str.slice(0, 26).str.to_datetime("%Y-%m-%d %H:%M:%S%.f",
                                                                     time_unit="us")
        return df.select(ts.alias("ts"), pl.col("ContextTokens").alias("input_tokens"),
                         pl.col("GeneratedTokens").alias("output_tokens")).sort("ts")
    if kind == "mooncake":
        df = pl.read_ndjson(path).select("timestamp", "input_length", "output_length")
        rel, tin, tout = "timestamp", "input_length", "output_length"
        unit = 1000
    elif kind == "burstgpt":
        df = pl.read_csv(path)
        rel, tin, tout = "Timestamp", "Request tokens", "Response tokens"
        unit = 1_000_000
    else:
        raise ValueError(f"trace kind {kind!r}: expected azure, mooncake or burstgpt")
    return df.select(
        (pl.lit(TRACE_ORIGIN) + pl.duration(microseconds=(pl.col(rel).cast(pl.Float64) * unit)
                                            .round().cast(pl.Int64))).alias("ts"),
        pl.col(tin).cast(pl.Int32).alias("input_tokens"),
        pl.col(tout).cast(pl.Int32).alias("output_tokens"),
    ).sort("ts")


def slot_cluster(pools: dict[str, int], per_gpu: int = 1) -> Cluster:
    """Declared GPUs per pool as simulator slots: `per_gpu` slots per GPU (requests one GPU
    serves at once), nodes of up to 8 GPUs that divide every pool (one node per pool
    otherwise)."""
    g = math.gcd(*pools.values())
    gpn = min(g, DEFAULT_GPN) if g % min(g, DEFAULT_GPN) == 0 else g
    names, nodes, gpu_pool, gpu_node, offset = [], [], [], [], [0]
    for p, (pool, gpus) in enumerate(pools.items()):
        for i in range(gpus // gpn):
            for j in range(gpn * per_gpu):
                gpu = i * gpn + j // per_gpu
                names.append(f"GPU-{pool}-{gpu:04d}"
                             + (f"-slot-{j % per_gpu}" if per_gpu > 1 else ""))
                gpu_pool.append(p)
                gpu_node.append(len(nodes))
            nodes.append(f"{pool}-node-{i:03d}")
        offset.append(len(names))
    return Cluster(
        pool_names=tuple(pools), pool_offset=np.asarray(offset, dtype=np.int64),
        gpu_pool=np.asarray(gpu_pool, dtype=np.int32),
        gpu_node=np.asarray(gpu_node, dtype=np.int32),
        gpu_reserved=np.zeros(len(names), dtype=bool), node_names=tuple(nodes),
        gpu_names=tuple(names), gpus_per_node=gpn * per_gpu)


def no_jobs() -> PoolJobs:
    return PoolJobs(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64),
                    np.zeros(0, str), np.zeros(0, str), np.zeros(0), np.zeros(0), np.zeros(0),
                    np.zeros(0, bool))


def parametric_donors(service: str, token_scale: bool = False) -> ServiceDonors:
    """No observed donors: every service time is drawn from the parametric model."""
    return ServiceDonors(np.zeros(0, np.int64), np.zeros(0, np.int64), {}, {},
                         parametric=service, token_scale=token_scale)


def trace_replay(trace: pl.DataFrame, service: str, gpus: int, timeout_ms: float | None = None,
                 priority: str = "P2", model_class: str = "llm",
                 minutes: float | None = None) -> ReplayInput:
    """A trace on `gpus` slots of one pool, with a parametric service-time model."""
    start = trace["ts"].min()
    end = trace["ts"].max() + timedelta(microseconds=1)
    if minutes is not None:
        end = min(end, start + timedelta(minutes=minutes))
    arr = normalise_arrivals(trace, start, end, priority=priority, model_class=model_class)
    cluster = slot_cluster({"trace": gpus})
    nodes = gpus // cluster.gpus_per_node
    return ReplayInput(
        pilot="trace", phase="trace", start=start, end=end, arrivals=arr,
        donors=parametric_donors(service), cluster=cluster,
        pool_specs=(PoolSpec("trace", nodes, 0.0, {model_class: 1.0}, reserved_nodes=0),),
        jobs=[no_jobs()], client=ClientSpec(timeout_ms=timeout_ms), treatment_pools=("trace",),
        adjustments=(), notes=[], basis=TRACE_BASIS,
        service_model=service)
