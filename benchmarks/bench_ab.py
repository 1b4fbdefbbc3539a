"""Same-pace comparison of code versions: the pipeline's stages, alternated between trees.

    .venv/bin/python benchmarks/bench_ab.py OLD_TREE NEW_TREE [--size 10M] [--rounds 2]
                                           [--work DIR] [--out FILE.json]

This machine's pace moves by up to ~40 % within an hour (bench.md prints its floors run for
that reason), so two `bench_suite.py` runs minutes apart can disagree by more than a change
is worth. This runs ingest through statistics of the same landing folder once per tree per
round, alternating the trees (A B A B ...), each stage in a fresh process of that tree's
`bench_suite.py --_stage` (imports excluded from its clock). A tree is a checkout of the
project: a clone or `git worktree add DIR REV` (its compiled `pipelines/_hmac*.so` copied in,
or it hashes in Python). Every tree runs with this interpreter, so only the code differs.
Compare within a round: each prints its end-to-end seconds, per-stage wall/CPU seconds and
its slowest models.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_suite import (  # noqa: E402
    PILOT,
    PIPELINE,
    SECRET_ENV,
    SQL_STAGES,
    generate,
    label,
    parse_size,
)


def run_tree(tree: Path, db: Path, pilot_dir: Path) -> dict[str, Any]:
    """Ingest through statistics of `pilot_dir` into a fresh `db` with `tree`'s code."""
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    stages: dict[str, Any] = {}
    for stage in PIPELINE:
        proc = subprocess.run(
            [sys.executable, "benchmarks/bench_suite.py", "--_stage", stage, "--_db", str(db),
             "--_dir", str(pilot_dir)],
            cwd=tree, capture_output=True, text=True, check=False)
        if proc.returncode:
            last = proc.stderr.strip().splitlines()[-1:] or ["no message"]
            raise SystemExit(f"{tree}: stage {stage} failed: {last[0]}")
        stages[stage] = json.loads(proc.stdout.strip().splitlines()[-1])
    models = {k: v[0] for s in SQL_STAGES for k, v in stages[s].get("per_model", {}).items()}
    return {"total_s": round(sum(r["wall_s"] for r in stages.values()), 2),
            "stages": {s: [r["wall_s"], r["cpu_s"]] for s, r in stages.items()},
            "slowest_models": dict(sorted(models.items(), key=lambda kv: -kv[1])[:6])}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="+", type=Path, help="checkouts to compare, in run order")
    ap.add_argument("--size", default="10M", help="attempts, e.g. 1M or 10M")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/stabilis-bench-ab"))
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    a = ap.parse_args(argv)
    os.environ.setdefault(SECRET_ENV, "stabilis-bench-secret-not-for-real-pilots")
    for tree in a.trees:
        if not (tree / "benchmarks" / "bench_suite.py").is_file():
            raise SystemExit(f"{tree}: not a checkout of this project "
                             "(no benchmarks/bench_suite.py)")
    n = parse_size(a.size)
    pilot_dir = a.work / label(n) / PILOT
    if not (pilot_dir / "pilot.yaml").is_file():  # the landing folder is reused across runs
        generate(pilot_dir, n)
    results: list[dict[str, Any]] = []
    for r in range(a.rounds):
        for i, tree in enumerate(a.trees):
            res = {"round": r + 1, "tree": str(tree), "at": time.strftime("%H:%M:%S"),
                   **run_tree(tree, a.work / label(n) / f"ab-{i}.duckdb", pilot_dir)}
            results.append(res)
            stages = " ".join(f"{s} {w:.2f}/{c:.1f}" for s, (w, c) in res["stages"].items())
            aps = n / res["total_s"]
            print(f"round {r + 1} {res['at']} {tree}: {res['total_s']:.2f} s ({aps:,.0f} "
                  f"attempts/s); wall/cpu s: {stages}; slowest: {res['slowest_models']}",
                  flush=True)
    if a.out:
        a.out.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
