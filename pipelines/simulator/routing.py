"""Latency-aware load distribution across pools of the same model class (a pre-pass).

Today a request's pool is fixed by the client. Under a routing policy the router may send it
to any pool that serves its model class (same model, same service-time distribution):
- jsq: to the pool where it would start first. The router keeps, per pool, the FIFO
  work-left of what it routed there (one free time per GPU slot) and predicts a start time of
  max(now, earliest free slot): join-the-shortest-queue measured in time, not in requests;
- power_of_two: the same prediction for two eligible pools drawn at random (slot-weighted),
  the request goes to the better one (Mitzenmacher's power of two choices);
- random_routing: one eligible pool at random, slot-weighted (the non-adaptive reference).
The router sees what a front end that tracks in-flight work sees: the requests it routed and
the GPUs batch jobs hold (a job takes its GPUs' earliest free slots from submit for its
duration; under batch separation jobs sit on reserved slots the router does not count). It
does not model retries, priorities or abandonment; the pools then run their full engines on
the routed workload. Ties (several pools with an idle slot) go to a slot-weighted random
pool, so light load spreads like random routing. A request whose own pool does not run a
routing policy is not moved.
"""

from __future__ import annotations

from bisect import bisect_right
from heapq import heappop, heappush, heapreplace

import numpy as np

from pipelines.simulator.model import PoolWorkload
from pipelines.simulator.policies import Policy

INF = 1 << 62


def route(
    workloads: list[PoolWorkload],
    slots: list[int],
    serves: list[set[int]],
    mode: list[np.ndarray],
    rng: np.random.Generator,
    jobs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> list[PoolWorkload]:
    """Re-assign requests to pools. `serves[p]`: model classes pool p serves; `slots[p]`: the
    slots the router counts; `mode[p]`: per request of pool p, 0 = stay, 1 = jsq, 2 = power of
    two, 3 = random; `jobs[p]`: (submit_us, gpus, duration_us) of jobs sharing those slots."""
    n_pools = len(workloads)
    pool_of = np.concatenate([np.full(len(w), p, dtype=np.int32) for p, w in enumerate(workloads)])
    idx = np.concatenate([np.arange(len(w)) for w in workloads])
    arr = np.concatenate([w.arrival_us for w in workloads])
    cls = np.concatenate([w.model_class for w in workloads])
    svc = np.concatenate([w.service_us for w in workloads])
    how = np.concatenate(mode) if mode else np.zeros(0, dtype=np.int8)
    order = np.argsort(arr, kind="stable")
    heaps = [[0] * max(s, 1) for s in slots]  # free time per slot (all equal: a valid heap)
    eligible: dict[int, list[int]] = {}
    for c in np.unique(cls).tolist():
        eligible[c] = [p for p in range(n_pools) if c in serves[p] and slots[p] > 0]
    # cumulative slot weights per class: a uniform draw picks a pool by bisection
    cum = {c: (np.cumsum([slots[p] for p in ps]) / sum(slots[p] for p in ps)).tolist()
           for c, ps in eligible.items() if ps}
    u = rng.random((len(order), 2))
    u0, u1 = u[:, 0].tolist(), u[:, 1].tolist()  # pre-drawn: one pair per request, in order
    dest = pool_of.copy()
    A, C, S, H, P = arr.tolist(), cls.tolist(), svc.tolist(), how.tolist(), pool_of.tolist()
    n_cls = max(C, default=0) + 1
    cand_of = [eligible.get(c) or [] for c in range(n_cls)]
    cum_of = [cum.get(c) or [] for c in range(n_cls)]
    jev = sorted((int(t), p, min(int(g), slots[p]), int(d))
                 for p, (ts, gs, ds) in enumerate(jobs or [])
                 for t, g, d in zip(ts.tolist(), gs.tolist(), ds.tolist(), strict=True))
    jev.append((INF, 0, 0, 0))
    ji, tnext = 0, jev[0][0]
    D = dest.tolist()
    for k, i in enumerate(order.tolist()):
        t, c, h = A[i], C[i], H[i]
        while tnext <= t:  # a job holds the `need` slots that free first
            tj, q, need, dur = jev[ji]
            ji += 1
            tnext = jev[ji][0]
            if need <= 0:
                continue
            got = [heappop(heaps[q]) for _ in range(need)]
            for _ in got:
                heappush(heaps[q], max(tj, got[-1]) + dur)
        cands = cand_of[c]
        if h == 0 or len(cands) <= 1:
            p = P[i]
        elif h == 3:
            p = cands[min(bisect_right(cum_of[c], u0[k]), len(cands) - 1)]
        else:
            if h == 2:
                cw = cum_of[c]
                a = min(bisect_right(cw, u0[k]), len(cands) - 1)
                b = min(bisect_right(cw, u1[k]), len(cands) - 1)
                pick = (cands[a], cands[b]) if a != b else (cands[a],)
            else:
                pick = cands
            best = INF
            tied: list[int] = []
            for q in pick:
                f = heaps[q][0]
                st = f if f > t else t
                if st < best:
                    best, tied = st, [q]
                elif st == best:
                    tied.append(q)
            p = tied[0]
            if len(tied) > 1:  # slot-weighted random among the tied
                x = u1[k] * sum(slots[q] for q in tied)
                for q in tied:
                    x -= slots[q]
                    if x < 0:
                        p = q
                        break
                else:
                    p = tied[-1]
        D[i] = p
        hp = heaps[p]
        f = hp[0]
        heapreplace(hp, (f if f > t else t) + S[i])
    dest = np.asarray(D, dtype=np.int32)
    out = []
    for p in range(n_pools):
        m = np.flatnonzero(dest == p)
        m = m[np.argsort(arr[m], kind="stable")]
        out.append(_gather(workloads, pool_of[m], idx[m], workloads[p].bursts))
    return out


def _gather(workloads: list[PoolWorkload], pools: np.ndarray, idx: np.ndarray,
            bursts: list) -> PoolWorkload:
    def col(name: str) -> np.ndarray:
        parts = [getattr(w, name) for w in workloads]
        full = np.concatenate(parts) if parts else np.zeros(0)
        offs = np.concatenate([[0], np.cumsum([len(w) for w in workloads])])
        return full[offs[pools] + idx]
    return PoolWorkload(
        arrival_us=col("arrival_us"), priority=col("priority"), model_class=col("model_class"),
        input_tokens=col("input_tokens"), output_tokens=col("output_tokens"),
        service_us=col("service_us"), prefill_us=col("prefill_us"), bursts=bursts,
    )


MODE_CODE: dict[Policy, int] = {Policy.JSQ: 1, Policy.POWER_OF_TWO: 2, Policy.RANDOM_ROUTING: 3}
