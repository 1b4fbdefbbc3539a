"""Scheduling policies and what they mean for one pool's engine.

A pool runs a *policy set* (e.g. {priority, batch_separation}). The engine never looks at
policy names; it reads a `Discipline`, one field per independent decision. A new policy adds a
field here and a branch in the engine:
- burst buffering (admission pacing) -> a transform of the arrival stream before the loop;
- resource segmentation (reserved slots) -> a GPU subset per priority class, like `reserved`;
- latency-aware load distribution (join-shortest-queue) -> routing across pools, which needs
  the pools simulated together instead of independently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Policy(StrEnum):
    FIFO_SHARED = "fifo_shared"  # today: one FIFO per pool, batch jobs grab free GPUs
    PRIORITY = "priority"  # non-preemptive priority queue, P0 first, FIFO within a class
    BATCH_SEPARATION = "batch_separation"  # batch jobs only on reserved nodes


# Names used in pilot.yaml `adjustments` for the same policies.
ADJUSTMENT_NAMES: dict[Policy, str] = {
    Policy.PRIORITY: "priority_scheduling",
    Policy.BATCH_SEPARATION: "inference_batch_separation",
}


def policy_set(policies: Iterable[str | Policy] | str | Policy) -> frozenset[Policy]:
    """Parse names into a policy set; `fifo_shared` is the neutral element."""
    if isinstance(policies, str | Policy):
        policies = [policies]
    out = frozenset(Policy(p) for p in policies)
    rest = out - {Policy.FIFO_SHARED}
    return rest or frozenset({Policy.FIFO_SHARED})


@dataclass(frozen=True)
class Discipline:
    priority_order: bool  # waiting requests ordered by class (else FIFO)
    reserved_batch: bool  # batch jobs restricted to the reserved nodes

    @property
    def fifo(self) -> bool:
        """FIFO admits the exact fast path (start = max(arrival, earliest free GPU))."""
        return not self.priority_order


def discipline(policies: frozenset[Policy]) -> Discipline:
    return Discipline(
        priority_order=Policy.PRIORITY in policies,
        reserved_batch=Policy.BATCH_SEPARATION in policies,
    )
