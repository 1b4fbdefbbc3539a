"""The event loop: one pool at a time (pools share nothing under today's policies).

GPU state is a heap of integer keys `free_us << GS | local_gpu`: the top is the GPU that
becomes free first, ties broken by GPU index (deterministic, and cheaper than tuples).

Two loops:
- `_run_fifo`: FIFO admits the exact fast path. Attempts are taken in arrival order and start
  at max(arrival, earliest GPU free time); no waiting queue is materialised. Queue
  abandonment is exact too, because it depends only on the attempt's own wait.
- `_run_general`: a true event loop (arrivals, GPU frees, abandonment deadlines, job submits)
  with a waiting heap, for non-FIFO orders (priority).

A pool's policy may change at window boundaries (baseline -> validation); the GPU heap and the
pending retries carry over. The general loop drains its waiting queue before handing over,
so those attempts finish under the old order (a slight approximation at the boundary only).

Batch jobs (Slurm-like, one node, gang-allocated):
- shared (today): at submit the job claims the node whose first `gpus` GPUs free earliest and
  holds them (idle until all are free) until it ends. In the FIFO loop requests that arrived
  earlier are already placed, so the job queues behind them; in the event loop it takes GPUs
  ahead of waiting requests, as an external batch scheduler that ignores the inference queue.
- batch_separation: jobs are scheduled among themselves (FIFO) on the pool's reserved nodes.
  A request may use a reserved GPU only if it ends before the next job there starts
  ("requests don't use it while a job is there"); otherwise that GPU is skipped until the
  job ends.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush, heapreplace

import numpy as np

from pipelines.simulator.model import (
    CANCELLED,
    DROPPED,
    ERROR,
    OK,
    TIMEOUT,
    US,
    ClientSpec,
    PolicyWindow,
    PoolJobs,
    PoolOutcome,
    PoolWorkload,
)
from pipelines.simulator.pacing import pace
from pipelines.simulator.policies import PACING, SEGMENT_SHARE, discipline

INF = 1 << 62
GS = 12  # bits for the local GPU index in heap keys: up to 4096 GPUs per pool
GMASK = (1 << GS) - 1
PENDING = -1


class _PoolRun:
    """Mutable state of one pool. Python lists, not numpy: the loop indexes scalars, and list
    item access is several times faster than numpy scalar access. Converted once at the end."""

    def __init__(
        self,
        wl: PoolWorkload,
        jobs: PoolJobs,
        reserved: np.ndarray,
        gpus_per_node: int,
        client: ClientSpec,
        rng: np.random.Generator,
        horizon_us: int = INF,
        release_us: np.ndarray | None = None,
        rejected: np.ndarray | None = None,
        segment: np.ndarray | None = None,
    ) -> None:
        n = len(wl)
        self.horizon = horizon_us
        n_gpus = len(reserved)
        if n_gpus > GMASK:
            raise ValueError(f"at most {GMASK} GPUs per pool")
        # `arr` orders the loop (release time after pacing); `orig` is the client's arrival,
        # which timeouts and abandonment count from. Without pacing they are one list.
        self.orig: list[int] = wl.arrival_us.tolist()
        self.arr: list[int] = self.orig if release_us is None else release_us.tolist()
        self.svc: list[int] = wl.service_us.tolist()
        self.rank: list[int] = wl.priority.tolist()
        self.root = list(range(n))
        self.att = [0] * n
        self.start = [-1] * n
        self.end = [-1] * n
        self.gpu = [-1] * n
        self.status = [PENDING] * n
        if rejected is not None:  # shed by a full admission buffer: dropped on arrival
            for i in np.flatnonzero(rejected).tolist():
                self.status[i] = DROPPED
                self.end[i] = self.orig[i]
        self.seg: list[bool] = (segment if segment is not None
                                else np.zeros(n_gpus, dtype=bool)).tolist()
        self.rng = rng
        self.err, self.cancel = client.error_rate, client.cancel_rate
        self.u: list[float] = []
        self.jit: list[float] = []
        self.ff: list[float] = []
        self.fc: list[int] = []
        self._draw(n + n // 8 + 1024)
        self.heap = list(range(n_gpus))  # all free at t=0; sorted, hence a valid heap
        self.retry: list[tuple[int, int]] = []
        self.tmo = INF if client.timeout_ms is None else round(client.timeout_ms * 1000)
        mq = INF if client.max_queue_ms is None else round(client.max_queue_ms * 1000)
        self.wlim = min(mq, self.tmo)  # longest wait before the attempt ends unstarted
        self.wcode = DROPPED if mq < self.tmo else TIMEOUT
        self.p_retry = client.retry_prob
        self.backoff = client.backoff_ms * 1000
        self.max_att = client.max_attempts
        self.gpn = gpus_per_node
        self.jobs = jobs
        nj = len(jobs)
        self.job_submit: list[int] = jobs.submit_us.tolist()
        self.job_start = [-1] * nj
        self.job_end = [-1] * nj
        self.job_gpus: list[list[int]] = [[] for _ in range(nj)]
        self.res: list[bool] = reserved.tolist()
        self.res_nodes = sorted({g // gpus_per_node for g in range(n_gpus) if reserved[g]})
        self.jiv: list[list[tuple[int, int]]] = [[] for _ in range(n_gpus)]  # reserved jobs
        self.jp = [0] * n_gpus  # per GPU: first job interval that may still matter
        self.iv_end = [0] * n_gpus
        self.has_iv = False

    def _draw(self, m: int) -> None:
        """Per-attempt random numbers, pre-drawn in blocks (retries extend them in order)."""
        rng = self.rng
        self.u.extend(rng.random(m).tolist())
        self.jit.extend(rng.uniform(0.5, 1.5, m).tolist())
        f = rng.random(m)
        frac = rng.uniform(0.05, 0.95, m)
        self.ff.extend(np.where(f < self.err + self.cancel, frac, 0.0).tolist())
        self.fc.extend(np.where(f < self.err, ERROR, CANCELLED).tolist())

    def retry_from(self, slot: int, t_fail: int) -> None:
        """The client retries `slot` after an exponential, jittered backoff."""
        a = self.att[slot] + 1
        if a >= self.max_att:
            return
        new = len(self.arr)
        if new >= len(self.u):
            self._draw(len(self.u) // 4 + 1024)
        t = t_fail + int(self.backoff * (1 << (a - 1)) * self.jit[new])
        if t >= self.horizon:
            return  # the telemetry window has closed: a later retry is not observed
        if self.orig is not self.arr:
            self.orig.append(t)
        self.arr.append(t)
        self.svc.append(self.svc[slot])  # same request: same tokens, same work
        self.rank.append(self.rank[slot])
        self.root.append(self.root[slot])
        self.att.append(a)
        self.start.append(-1)
        self.end.append(-1)
        self.gpu.append(-1)
        self.status.append(PENDING)
        heappush(self.retry, (t, new))

    def claim_shared(self, j: int, t: int) -> None:
        """Gang-allocate job j at time t on the node whose `gpus` GPUs free first."""
        need = int(self.jobs.gpus[j])
        heap, gpn, iv_end = self.heap, self.gpn, self.iv_end
        free: dict[int, list[tuple[int, int]]] = {}
        for k in heap:
            g = k & GMASK
            free.setdefault(g // gpn, []).append((max(k >> GS, iv_end[g]), g))
        best: tuple[int, list[int]] | None = None
        for node in sorted(free):
            lst = sorted(free[node])
            if len(lst) >= need:
                st = max(t, lst[need - 1][0])
                if best is None or st < best[0]:
                    best = (st, [g for _, g in lst[:need]])
        if best is None:
            return  # no node large enough: never starts
        st, chosen = best
        end = st + int(self.jobs.duration_us[j])
        cs = set(chosen)
        heap[:] = [((end << GS) | (k & GMASK)) if (k & GMASK) in cs else k for k in heap]
        heapify(heap)
        self._record_job(j, st, end, chosen)

    def schedule_reserved(self, js: range) -> None:
        """batch_separation: FIFO among jobs on the reserved nodes, decided up front."""
        gpn = self.gpn
        avail = {k & GMASK: k >> GS for k in self.heap if self.res[k & GMASK]}
        for g in avail:
            avail[g] = max(avail[g], self.iv_end[g])
        for j in js:
            need, t = int(self.jobs.gpus[j]), self.job_submit[j]
            best: tuple[int, list[int]] | None = None
            for node in self.res_nodes:
                lst = sorted((avail[g], g) for g in range(node * gpn, node * gpn + gpn)
                             if g in avail)
                if len(lst) >= need:
                    st = max(t, lst[need - 1][0])
                    if best is None or st < best[0]:
                        best = (st, [g for _, g in lst[:need]])
            if best is None:
                continue
            st, chosen = best
            end = st + int(self.jobs.duration_us[j])
            for g in chosen:
                avail[g] = end
                self.jiv[g].append((st, end))
                self.iv_end[g] = end
            self.has_iv = True
            self._record_job(j, st, end, chosen)

    def _record_job(self, j: int, st: int, end: int, gpus: list[int]) -> None:
        self.job_start[j] = st
        self.job_end[j] = end
        self.job_gpus[j] = sorted(gpus)


def _run_fifo(r: _PoolRun, pa: int, pb: int, t_end: int, jobs: list[int]) -> int:
    """FIFO fast path over primaries [pa, pb) and retries arriving before t_end."""
    heap, retry = r.heap, r.retry
    A, T0, SVC, ST, EN, GP, STS = r.arr, r.orig, r.svc, r.start, r.end, r.gpu, r.status
    U, FF, FC = r.u, r.ff, r.fc
    RES, JIV, JP = r.res, r.jiv, r.jp
    tmo, wlim, wcode, pr = r.tmo, r.wlim, r.wcode, r.p_retry
    check_iv = r.has_iv
    ji, nj = 0, len(jobs)
    tj = r.job_submit[jobs[0]] if nj else INF
    while True:
        t = A[pa] if pa < pb else INF
        from_retry = False
        if retry:
            tr = retry[0][0]
            if tr < t and tr < t_end:
                t, from_retry = tr, True
        if tj <= t and tj < INF:
            r.claim_shared(jobs[ji], tj)
            ji += 1
            tj = r.job_submit[jobs[ji]] if ji < nj else INF
            continue
        if t == INF:
            break
        if from_retry:
            slot = heappop(retry)[1]
        else:
            slot = pa
            pa += 1
        if STS[slot] != PENDING:  # shed at admission (burst buffering)
            if U[slot] < pr:
                r.retry_from(slot, t)
            continue
        d = SVC[slot]
        t0 = T0[slot]  # the client's clock starts at its arrival, not at release
        lim = t0 + tmo
        while True:
            k = heap[0]
            f = k >> GS
            s = f if f > t else t
            if check_iv and RES[k & GMASK]:
                g = k & GMASK
                iv, p = JIV[g], JP[g]
                while p < len(iv) and iv[p][1] <= s:
                    p += 1
                JP[g] = p
                if p < len(iv) and iv[p][0] < min(s + d, lim):
                    heapreplace(heap, (iv[p][1] << GS) | g)
                    continue
            break
        if s - t0 > wlim:  # abandoned while waiting (or timed out unstarted)
            STS[slot] = wcode
            EN[slot] = t0 + wlim
            if U[slot] < pr:
                r.retry_from(slot, t0 + wlim)
            continue
        x = FF[slot]
        if x:
            e = s + int(d * x)
            code = FC[slot]
        else:
            e = s + d
            code = OK
        if e > lim:
            e = lim
            code = TIMEOUT
        g = k & GMASK
        heapreplace(heap, (e << GS) | g)
        ST[slot] = s
        EN[slot] = e
        GP[slot] = g
        STS[slot] = code
        if code == TIMEOUT and U[slot] < pr:
            r.retry_from(slot, e)
    return pa


def _run_general(
    r: _PoolRun, pa: int, pb: int, t_end: int, jobs: list[int], by_priority: bool,
    seg_classes: int = 0,
) -> int:
    """Event loop with waiting heaps ordered by (class, arrival sequence).

    Segmentation (`seg_classes` > 0): GPUs flagged in `r.seg` serve only classes below
    `seg_classes`. High and low classes then wait in two heaps; a reserved GPU that frees
    while no high-class request waits is *parked* (out of the GPU heap) until one arrives.
    With `seg_classes` = 0 everything waits in `lo` and no GPU is ever parked.
    """
    heap, retry = r.heap, r.retry
    A, T0, SVC, RANK = r.arr, r.orig, r.svc, r.rank
    ST, EN, GP, STS = r.start, r.end, r.gpu, r.status
    U, FF, FC = r.u, r.ff, r.fc
    RES, JIV, JP, SEG = r.res, r.jiv, r.jp, r.seg
    tmo, wlim, wcode, pr = r.tmo, r.wlim, r.wcode, r.p_retry
    check_iv = r.has_iv
    hi: list[tuple[int, int, int]] = []  # (class rank or 0, sequence, slot); lazy deletion
    lo: list[tuple[int, int, int]] = []
    parked: list[int] = []  # reserved GPUs idle for lack of high-class work (heap keys)
    deadlines: list[tuple[int, int]] = []  # (abandon time, slot); lazy deletion
    seq = 0
    ji, nj = 0, len(jobs)

    def conflict(g: int, s: int, e: int) -> int:
        """End of the reserved job that [s, e) on GPU g would overlap, or -1."""
        iv, p = JIV[g], JP[g]
        while p < len(iv) and iv[p][1] <= s:
            p += 1
        JP[g] = p
        return iv[p][1] if p < len(iv) and iv[p][0] < e else -1

    while True:
        ta = A[pa] if pa < pb else INF
        from_retry = False
        if retry:
            tr = retry[0][0]
            if tr < ta and tr < t_end:
                ta, from_retry = tr, True
        tj = r.job_submit[jobs[ji]] if ji < nj else INF
        tg = (heap[0] >> GS) if (hi or lo) and heap else INF
        td = deadlines[0][0] if deadlines else INF
        # Ties: a GPU freeing exactly at a deadline still serves (drop needs wait > limit).
        if tg <= td and tg <= tj and tg <= ta:
            if tg == INF:
                break
            while hi and STS[hi[0][2]] != PENDING:
                heappop(hi)
            while lo and STS[lo[0][2]] != PENDING:
                heappop(lo)
            if not hi and not lo:
                continue
            k = heap[0]
            g = k & GMASK
            if SEG[g]:
                if not hi:
                    parked.append(heappop(heap))
                    continue
                q = hi
            elif hi and (not lo or hi[0] < lo[0]):
                q = hi
            else:
                q = lo
            slot = q[0][2]
            s, t0, d = tg, T0[slot], SVC[slot]
            lim = t0 + tmo
            if check_iv and RES[g]:
                je = conflict(g, s, min(s + d, lim))
                if je >= 0:
                    heapreplace(heap, (je << GS) | g)
                    continue
            heappop(q)
        elif td <= tj and td <= ta:
            slot = heappop(deadlines)[1]
            if STS[slot] == PENDING:
                STS[slot] = wcode
                EN[slot] = td
                if U[slot] < pr:
                    r.retry_from(slot, td)
            continue
        elif tj <= ta:
            if parked:  # a batch job may take any GPU: parked ones go back in the heap
                for k in parked:
                    heappush(heap, k)
                parked.clear()
            r.claim_shared(jobs[ji], tj)
            ji += 1
            continue
        else:
            if from_retry:
                slot = heappop(retry)[1]
            else:
                slot = pa
                pa += 1
            if STS[slot] != PENDING:  # shed at admission (burst buffering)
                if U[slot] < pr:
                    r.retry_from(slot, ta)
                continue
            t, t0, d = ta, T0[slot], SVC[slot]
            if t - t0 > wlim:  # gave up while held in the admission buffer
                STS[slot] = wcode
                EN[slot] = t0 + wlim
                if U[slot] < pr:
                    r.retry_from(slot, t0 + wlim)
                continue
            lim = t0 + tmo
            high = RANK[slot] < seg_classes
            started = from_parked = False
            if high and parked:
                g = heappop(parked) & GMASK
                started = from_parked = True
            elif not hi and not lo:
                while heap and (heap[0] >> GS) <= t:
                    k = heap[0]
                    g = k & GMASK
                    if SEG[g] and not high:
                        parked.append(heappop(heap))
                        continue
                    if check_iv and RES[g]:
                        je = conflict(g, t, min(t + d, lim))
                        if je >= 0:
                            heapreplace(heap, (je << GS) | g)
                            continue
                    started = True
                    break
            if not started:
                heappush(hi if high else lo, (RANK[slot] if by_priority else 0, seq, slot))
                seq += 1
                if wlim < INF:
                    heappush(deadlines, (t0 + wlim, slot))
                continue
            s = t
            if from_parked:  # the GPU is not in the heap: push it back busy
                e, code = _finish(s, d, lim, FF[slot], FC[slot])
                heappush(heap, (e << GS) | g)
                ST[slot] = s
                EN[slot] = e
                GP[slot] = g
                STS[slot] = code
                if code == TIMEOUT and U[slot] < pr:
                    r.retry_from(slot, e)
                continue
        # Start `slot` on GPU g (heap top) at time s.
        e, code = _finish(s, d, lim, FF[slot], FC[slot])
        heapreplace(heap, (e << GS) | g)
        ST[slot] = s
        EN[slot] = e
        GP[slot] = g
        STS[slot] = code
        if code == TIMEOUT and U[slot] < pr:
            r.retry_from(slot, e)
    for k in parked:  # the next policy window sees every GPU again
        heappush(heap, k)
    return pa


def _finish(s: int, d: int, lim: int, x: float, fc: int) -> tuple[int, int]:
    """End time and status of an attempt started at s (client failure, timeout)."""
    if x:
        e, code = s + int(d * x), fc
    else:
        e, code = s + d, OK
    if e > lim:
        return lim, TIMEOUT
    return e, code


def simulate_pool(
    wl: PoolWorkload,
    jobs: PoolJobs,
    windows: tuple[PolicyWindow, ...],
    reserved: np.ndarray,
    gpus_per_node: int,
    client: ClientSpec,
    rng: np.random.Generator,
    horizon_us: int = INF,
) -> PoolOutcome:
    """Run one pool through its policy windows; `reserved` flags its local GPUs.

    Retries that would arrive at or after `horizon_us` (end of the observed window) are not
    created; attempts already running finish after it. Slots 0..n-1 of the outcome are the
    workload's requests in its order (also when pacing reorders the engine's stream)."""
    windows = tuple(sorted(windows, key=lambda w: w.start_s))
    discs = [discipline(w.policies) for w in windows]
    starts = [round(w.start_s * US) for w in windows]
    n_gpus = len(reserved)
    segment = None
    if any(d.segment_classes for d in discs):
        segment = segment_slots(reserved, n_gpus)
    perm = release = rejected = None
    if any(d.pacing for d in discs):
        in_paced = np.zeros(len(wl), dtype=bool)
        for i, d in enumerate(discs):
            if d.pacing:
                hi = starts[i + 1] if i + 1 < len(starts) else INF
                in_paced |= (wl.arrival_us >= starts[i]) & (wl.arrival_us < hi)
        free = int((~reserved).sum()) if any(d.reserved_batch for d in discs) else n_gpus
        rel, rej = pace(wl.arrival_us, wl.priority, in_paced,
                        PACING * free / max(float(wl.service_us.mean()) / US, 1e-9)
                        if len(wl) else 1.0)
        # The engine takes primaries in release order (stable: ties keep arrival order).
        perm = np.argsort(rel, kind="stable")
        wl = _permuted(wl, perm)
        release, rejected = rel[perm], rej[perm]
    r = _PoolRun(wl, jobs, reserved, gpus_per_node, client, rng, horizon_us,
                 release_us=release, rejected=rejected, segment=segment)
    arr = wl.arrival_us if release is None else release
    pa = ja = 0
    for i, disc in enumerate(discs):
        t_end = starts[i + 1] if i + 1 < len(starts) else INF
        pb = int(np.searchsorted(arr, t_end, "left")) if t_end < INF else len(arr)
        jb = int(np.searchsorted(jobs.submit_us, t_end, "left")) if t_end < INF else len(jobs)
        stream_jobs: list[int] = []
        if disc.reserved_batch:
            r.schedule_reserved(range(ja, jb))
        else:
            stream_jobs = list(range(ja, jb))
        if disc.fifo:
            pa = _run_fifo(r, pa, pb, t_end, stream_jobs)
        else:
            pa = _run_general(r, pa, pb, t_end, stream_jobs, disc.priority_order,
                              disc.segment_classes)
        ja = jb
    out = PoolOutcome(
        arrival_us=np.asarray(r.orig, dtype=np.int64),
        start_us=np.asarray(r.start, dtype=np.int64),
        end_us=np.asarray(r.end, dtype=np.int64),
        gpu=np.asarray(r.gpu, dtype=np.int32),
        status=np.asarray(r.status, dtype=np.int8),
        root=np.asarray(r.root, dtype=np.int64),
        attempt=np.asarray(r.att, dtype=np.int32),
        job_start_us=np.asarray(r.job_start, dtype=np.int64),
        job_end_us=np.asarray(r.job_end, dtype=np.int64),
        job_gpus=r.job_gpus,
    )
    return out if perm is None else _unpermuted(out, perm)


def segment_slots(reserved: np.ndarray, n_gpus: int) -> np.ndarray:
    """Slots reserved for the high classes: the first SEGMENT_SHARE of the pool's GPUs that
    batch separation does not reserve, keeping at least one slot open to every class."""
    seg = np.zeros(n_gpus, dtype=bool)
    open_ = np.flatnonzero(~reserved)
    k = min(max(1, round(SEGMENT_SHARE * n_gpus)), len(open_) - 1)
    if k > 0:
        seg[open_[:k]] = True
    return seg


def _permuted(wl: PoolWorkload, perm: np.ndarray) -> PoolWorkload:
    return PoolWorkload(
        arrival_us=wl.arrival_us[perm], priority=wl.priority[perm],
        model_class=wl.model_class[perm], input_tokens=wl.input_tokens[perm],
        output_tokens=wl.output_tokens[perm], service_us=wl.service_us[perm],
        prefill_us=wl.prefill_us[perm], bursts=wl.bursts,
    )


def _unpermuted(out: PoolOutcome, perm: np.ndarray) -> PoolOutcome:
    """Map slots back: engine slot i < n is workload request perm[i]; retries keep theirs."""
    n = len(perm)
    pos = np.arange(len(out.arrival_us))
    pos[:n] = perm
    order = np.argsort(pos, kind="stable")  # row of each final slot
    def f(a: np.ndarray) -> np.ndarray:
        return a[order]
    return PoolOutcome(
        arrival_us=f(out.arrival_us), start_us=f(out.start_us), end_us=f(out.end_us),
        gpu=f(out.gpu), status=f(out.status), root=pos[out.root][order],
        attempt=f(out.attempt), job_start_us=out.job_start_us, job_end_us=out.job_end_us,
        job_gpus=out.job_gpus,
    )
