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
from pipelines.simulator.policies import discipline

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
    ) -> None:
        n = len(wl)
        self.horizon = horizon_us
        n_gpus = len(reserved)
        if n_gpus > GMASK:
            raise ValueError(f"at most {GMASK} GPUs per pool")
        self.arr: list[int] = wl.arrival_us.tolist()
        self.svc: list[int] = wl.service_us.tolist()
        self.rank: list[int] = wl.priority.tolist()
        self.root = list(range(n))
        self.att = [0] * n
        self.start = [-1] * n
        self.end = [-1] * n
        self.gpu = [-1] * n
        self.status = [PENDING] * n
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
    A, SVC, ST, EN, GP, STS = r.arr, r.svc, r.start, r.end, r.gpu, r.status
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
        d = SVC[slot]
        lim = t + tmo
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
        if s - t > wlim:  # abandoned while waiting (or timed out unstarted)
            STS[slot] = wcode
            EN[slot] = t + wlim
            if U[slot] < pr:
                r.retry_from(slot, t + wlim)
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
    r: _PoolRun, pa: int, pb: int, t_end: int, jobs: list[int], by_priority: bool
) -> int:
    """Event loop with a waiting heap ordered by (class, arrival sequence)."""
    heap, retry = r.heap, r.retry
    A, SVC, RANK, ST, EN, GP, STS = r.arr, r.svc, r.rank, r.start, r.end, r.gpu, r.status
    U, FF, FC = r.u, r.ff, r.fc
    RES, JIV, JP = r.res, r.jiv, r.jp
    tmo, wlim, wcode, pr = r.tmo, r.wlim, r.wcode, r.p_retry
    check_iv = r.has_iv
    waiting: list[tuple[int, int, int]] = []  # (class rank, sequence, slot); lazy deletion
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
        tg = (heap[0] >> GS) if waiting else INF
        td = deadlines[0][0] if deadlines else INF
        # Ties: a GPU freeing exactly at a deadline still serves (drop needs wait > limit).
        if tg <= td and tg <= tj and tg <= ta:
            if tg == INF:
                break
            while waiting and STS[waiting[0][2]] != PENDING:
                heappop(waiting)
            if not waiting:
                continue
            slot = waiting[0][2]
            k = heap[0]
            g = k & GMASK
            s, t, d = tg, A[slot], SVC[slot]
            lim = t + tmo
            if check_iv and RES[g]:
                je = conflict(g, s, min(s + d, lim))
                if je >= 0:
                    heapreplace(heap, (je << GS) | g)
                    continue
            heappop(waiting)
        elif td <= tj and td <= ta:
            slot = heappop(deadlines)[1]
            if STS[slot] == PENDING:
                STS[slot] = wcode
                EN[slot] = td
                if U[slot] < pr:
                    r.retry_from(slot, td)
            continue
        elif tj <= ta:
            r.claim_shared(jobs[ji], tj)
            ji += 1
            continue
        else:
            if from_retry:
                slot = heappop(retry)[1]
            else:
                slot = pa
                pa += 1
            t, d = ta, SVC[slot]
            lim = t + tmo
            started = False
            if not waiting:
                while (heap[0] >> GS) <= t:
                    k = heap[0]
                    g = k & GMASK
                    if check_iv and RES[g]:
                        je = conflict(g, t, min(t + d, lim))
                        if je >= 0:
                            heapreplace(heap, (je << GS) | g)
                            continue
                    started = True
                    break
            if not started:
                heappush(waiting, (RANK[slot] if by_priority else 0, seq, slot))
                seq += 1
                if wlim < INF:
                    heappush(deadlines, (t + wlim, slot))
                continue
            s = t
        # Start `slot` on GPU g (heap top) at time s.
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
        heapreplace(heap, (e << GS) | g)
        ST[slot] = s
        EN[slot] = e
        GP[slot] = g
        STS[slot] = code
        if code == TIMEOUT and U[slot] < pr:
            r.retry_from(slot, e)
    return pa


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
    created; attempts already running finish after it."""
    r = _PoolRun(wl, jobs, reserved, gpus_per_node, client, rng, horizon_us)
    windows = tuple(sorted(windows, key=lambda w: w.start_s))
    arr = wl.arrival_us
    pa = ja = 0
    for i, w in enumerate(windows):
        t_end = round(windows[i + 1].start_s * US) if i + 1 < len(windows) else INF
        pb = int(np.searchsorted(arr, t_end, "left")) if t_end < INF else len(arr)
        jb = int(np.searchsorted(jobs.submit_us, t_end, "left")) if t_end < INF else len(jobs)
        disc = discipline(w.policies)
        stream_jobs: list[int] = []
        if disc.reserved_batch:
            r.schedule_reserved(range(ja, jb))
        else:
            stream_jobs = list(range(ja, jb))
        if disc.fifo:
            pa = _run_fifo(r, pa, pb, t_end, stream_jobs)
        else:
            pa = _run_general(r, pa, pb, t_end, stream_jobs, disc.priority_order)
        ja = jb
    return PoolOutcome(
        arrival_us=np.asarray(r.arr, dtype=np.int64),
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
