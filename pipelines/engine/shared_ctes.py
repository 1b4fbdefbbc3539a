"""A query's shared CTEs as steps Spark computes once.

Spark inlines a CTE at every place that reads it, so a CTE read by two later CTEs, each
read twice, runs four times, and so on down the chain: `findings` (one statement, 60 CTEs)
planned 343 Parquet scans and 592 exchanges, and took 31 s on the parity pilot's 236 k
attempts against 0.2 s in DuckDB, which computes such a CTE once. Each CTE that is read at
least twice becomes a step here: a query of its own (the CTEs before it that it needs come
along as its WITH), which the engine materializes under a view name; the main query and the
later steps read that view. A CTE read once stays where it is, so Spark can still push
filters into it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

WITH = "with_"  # the WITH clause's key in SQLGlot's query nodes


@dataclass(frozen=True)
class Steps:
    """`shared`: (view name, query) to materialize in order; `final`: the query that reads
    them (the whole statement when nothing is shared)."""

    shared: list[tuple[str, exp.Query]]
    final: exp.Expression


def _reads(node: exp.Expression, name: str) -> list[exp.Table]:
    """Unqualified table references to `name` under `node` (Spark names are
    case-insensitive)."""
    return [t for t in node.find_all(exp.Table)
            if not t.args.get("db") and not t.args.get("catalog") and t.name.lower() == name]


def split_shared_ctes(tree: exp.Expression, view_prefix: str) -> Steps:
    """The top-level CTEs of `tree` read two or more times as separate steps (see above).
    A reference counts where it sees the CTE: in a later CTE or in the main query, not in
    an earlier CTE or the CTE's own body (there the name is a table's)."""
    with_ = tree.args.get(WITH)
    if not isinstance(with_, exp.With) or with_.args.get("recursive"):
        return Steps([], tree)
    tree = tree.copy()
    ctes: list[exp.CTE] = list(tree.args[WITH].expressions)
    names = [c.alias_or_name.lower() for c in ctes]
    if len(set(names)) != len(names):
        return Steps([], tree)  # a name defined twice: leave the scoping to Spark
    main = _main_parts(tree)

    def readers(j: int) -> list[exp.Table]:
        return [r for part in [c.this for c in ctes[j + 1:]] + main
                for r in _reads(part, names[j])]

    shared = [j for j in range(len(ctes)) if len(readers(j)) >= 2]
    if not shared:
        return Steps([], tree)
    views = {j: f"{view_prefix}{names[j]}" for j in shared}
    for j in shared:  # later CTEs and the main query read the shared CTE's view
        for r in readers(j):
            if not r.alias:  # columns may name it by the CTE's name (jb.pool)
                r.set("alias", exp.TableAlias(this=exp.to_identifier(r.name)))
            r.set("this", exp.to_identifier(views[j]))
    steps: list[tuple[str, exp.Query]] = []
    for j in shared:
        # the CTEs before it that stay CTEs (an unread one costs Spark nothing), and itself
        kept = [c.copy() for i, c in enumerate(ctes[:j + 1]) if i == j or i not in views]
        query = exp.select("*").from_(exp.to_table(ctes[j].alias_or_name))
        query.set(WITH, exp.With(expressions=kept))
        steps.append((views[j], query))
    rest = [c for i, c in enumerate(ctes) if i not in views]
    tree.set(WITH, exp.With(expressions=rest) if rest else None)
    return Steps(steps, tree)


def _main_parts(tree: exp.Expression) -> list[exp.Expression]:
    """The main query's own parts: the tree's children but its WITH clause."""
    parts: list[exp.Expression] = []
    for key, value in tree.args.items():
        if key == WITH:
            continue
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, exp.Expression):
                parts.append(v)
    return parts
