"""Scheduling policies and what they mean for one pool's engine.

A pool runs a *policy set* (e.g. {priority, batch_separation}). The engine never looks at
policy names; it reads a `Discipline`, one field per independent decision, so policies compose:
- priority: the waiting queue is ordered by class (non-preemptive), FIFO within a class;
- batch_separation: batch jobs only on the pool's reserved nodes;
- burst_buffering: admission pacing, a transform of the arrival stream before the loop
  (`pacing.py`): a token bucket releases requests at most at `PACING` x capacity, the
  excess waits in a bounded buffer, a full buffer sheds the request at once (`dropped`);
- segmentation: reserved slots per class: `SEGMENT_SHARE` of the pool's GPU slots serve only
  the classes below `SEGMENT_CLASSES` (P0, P1); every class may use the other slots;
- jsq / power_of_two / random_routing: latency-aware load distribution *across pools of the
  same model class* (`routing.py`). A request may be served by any pool that serves its model
  class; the router picks the pool with the earliest predicted start (JSQ on work left), the
  better of two pools drawn at random (power of two choices), or a pool at random weighted by
  its slots (the non-adaptive reference). Inside a pool the shared queue already is
  join-the-shortest-queue over its GPUs (a GPU takes work the moment it frees).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Policy(StrEnum):
    FIFO_SHARED = "fifo_shared"  # today: one FIFO per pool, batch jobs grab free GPUs
    PRIORITY = "priority"  # non-preemptive priority queue, P0 first, FIFO within a class
    BATCH_SEPARATION = "batch_separation"  # batch jobs only on reserved nodes
    BURST_BUFFERING = "burst_buffering"  # token-bucket admission pacing, bounded buffer
    SEGMENTATION = "segmentation"  # reserved GPU slots for the high classes
    JSQ = "jsq"  # route to the pool of the same model class with the least work left
    POWER_OF_TWO = "power_of_two"  # the better of two random eligible pools
    RANDOM_ROUTING = "random_routing"  # a random eligible pool (slot-weighted): reference


ROUTING: frozenset[Policy] = frozenset({Policy.JSQ, Policy.POWER_OF_TWO, Policy.RANDOM_ROUTING})

# Names used in pilot.yaml `adjustments` for the same policies.
ADJUSTMENT_NAMES: dict[Policy, str] = {
    Policy.PRIORITY: "priority_scheduling",
    Policy.BATCH_SEPARATION: "inference_batch_separation",
    Policy.BURST_BUFFERING: "burst_buffering",
    Policy.SEGMENTATION: "resource_segmentation",
    Policy.JSQ: "latency_aware_load_distribution",
}
FROM_ADJUSTMENT: dict[str, Policy] = {v: k for k, v in ADJUSTMENT_NAMES.items()}

# Defaults of the parametrised policies (the what-if table states them).
PACING = 0.95  # token rate = PACING x the pool's request capacity (slots / mean service)
PACING_BUCKET_S = 2.0  # bucket depth in seconds of token rate: short spikes pass unpaced
PACING_BUFFER_S = 10.0  # buffer bound, in seconds of token rate; beyond it requests are shed
PACING_BYPASS = 1  # classes below this rank (P0) skip the buffer
SEGMENT_SHARE = 0.25  # share of a pool's slots reserved for the high classes
SEGMENT_CLASSES = 2  # classes P0..P(n-1) may use the reserved slots


def policy_set(policies: Iterable[str | Policy] | str | Policy) -> frozenset[Policy]:
    """Parse names (policy or pilot.yaml adjustment names) into a policy set; `fifo_shared`
    is the neutral element. At most one routing policy."""
    if isinstance(policies, str | Policy):
        policies = [policies]
    out = frozenset(FROM_ADJUSTMENT.get(str(p)) or Policy(p) for p in policies)
    if len(out & ROUTING) > 1:
        raise ValueError(f"at most one routing policy, got {sorted(out & ROUTING)}")
    rest = out - {Policy.FIFO_SHARED}
    return rest or frozenset({Policy.FIFO_SHARED})


def policy_label(policies: frozenset[Policy]) -> str:
    """Stable name of a policy set, e.g. `batch_separation+priority`."""
    return "+".join(sorted(policy_set(policies)))


@dataclass(frozen=True)
class Discipline:
    priority_order: bool  # waiting requests ordered by class (else FIFO)
    reserved_batch: bool  # batch jobs restricted to the reserved nodes
    pacing: bool = False  # arrivals pass a token bucket first (transform before the loop)
    segment_classes: int = 0  # > 0: reserved slots serve only classes < this rank

    @property
    def fifo(self) -> bool:
        """FIFO admits the exact fast path (start = max(arrival, earliest free GPU))."""
        return not self.priority_order and not self.segment_classes


def discipline(policies: frozenset[Policy]) -> Discipline:
    return Discipline(
        priority_order=Policy.PRIORITY in policies,
        reserved_batch=Policy.BATCH_SEPARATION in policies,
        pacing=Policy.BURST_BUFFERING in policies,
        segment_classes=SEGMENT_CLASSES if Policy.SEGMENTATION in policies else 0,
    )


def routing_of(policies: frozenset[Policy]) -> Policy | None:
    r = policies & ROUTING
    return next(iter(r)) if r else None
