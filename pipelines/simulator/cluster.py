"""Cluster topology (pools -> nodes -> GPUs) and realistic, seed-deterministic identifiers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.simulator.model import SimConfig

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def uuid_strings(rng: np.random.Generator, n: int) -> pl.Series:
    """n random version-4 UUID strings, built with numpy (no per-id Python formatting)."""
    b = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    h = np.empty((n, 32), dtype=np.uint8)
    h[:, 0::2] = _HEX[b >> 4]
    h[:, 1::2] = _HEX[b & 0x0F]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, (lo, hi) in zip((0, 9, 14, 19, 24), ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32)),
                             strict=True):
        out[:, dst:dst + hi - lo] = h[:, lo:hi]
    return pl.Series(np.ascontiguousarray(out).view("S36").ravel()).cast(pl.String)


@dataclass(frozen=True)
class Cluster:
    """GPU g (global index) sits on node `gpu_node[g]` in pool `gpu_pool[g]`.

    Each pool owns a contiguous GPU range; its local GPU i is global `pool_offset[p] + i`,
    local node i // gpus_per_node. The last `reserved_nodes` nodes of a pool are the ones
    batch_separation reserves for batch jobs.
    """

    pool_names: tuple[str, ...]
    pool_offset: np.ndarray  # int64, len(pools) + 1
    gpu_pool: np.ndarray  # int32
    gpu_node: np.ndarray  # int32, global node index
    gpu_reserved: np.ndarray  # bool
    node_names: tuple[str, ...]
    gpu_names: tuple[str, ...]
    gpus_per_node: int

    @property
    def n_gpus(self) -> int:
        return len(self.gpu_pool)

    def pool_gpus(self, p: int) -> int:
        return int(self.pool_offset[p + 1] - self.pool_offset[p])


def build_cluster(cfg: SimConfig) -> Cluster:
    gpn = cfg.gpus_per_node
    sizes = [p.nodes * gpn for p in cfg.pools]
    offset = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(offset[-1])
    gpu_pool = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
    gpu_node = (np.arange(n) // gpn).astype(np.int32)
    reserved = np.zeros(n, dtype=bool)
    for p, spec in enumerate(cfg.pools):
        k = min(spec.reserved_nodes, spec.nodes - 1) * gpn  # never reserve a whole pool
        reserved[offset[p + 1] - k : offset[p + 1]] = True
    # Node numbers start at a seed-dependent rack offset so they are not all `...-001`.
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1]))
    first = int(rng.integers(1, 40))
    node_names = tuple(f"gpu-node-{first + i:03d}" for i in range(n // gpn))
    gpu_names = tuple("GPU-" + u for u in uuid_strings(rng, n).to_list())
    return Cluster(
        pool_names=tuple(p.name for p in cfg.pools),
        pool_offset=offset,
        gpu_pool=gpu_pool,
        gpu_node=gpu_node,
        gpu_reserved=reserved,
        node_names=node_names,
        gpu_names=gpu_names,
        gpus_per_node=gpn,
    )
