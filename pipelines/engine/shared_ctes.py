"""A query's shared CTEs as steps Spark computes once.

Spark inlines a CTE at every place that reads it, so a CTE read by two later CTEs, each
read twice, runs four times, and so on down the chain: `findings` (one statement, 53 CTEs)
planned 343 Parquet scans and 592 exchanges, and took 31 s on the parity pilot's 236 k
attempts against 0.2 s in DuckDB, which computes such a CTE once. Each CTE that is read at
least twice becomes a step here: a query of its own (the CTEs before it that it needs come
along as its WITH), which the engine materializes under a view name; the main query and the
later steps read that view. A CTE read once stays where it is, so Spark can still push
filters into it; so does one that reads only small tables (`small`: a pilot's thresholds,
phases, scope), which costs less to recompute than a Spark job of its own (1 M attempts:
metrics_headline took 9.3 s as one query, 11.6 s with its nine shared CTEs as steps).
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


def split_shared_ctes(tree: exp.Expression, view_prefix: str,
                      small: frozenset[str] = frozenset()) -> Steps:
    """The top-level CTEs of `tree` read two or more times, and reading more than the
    `small` tables, as separate steps (see above). A reference counts where it sees the
    CTE: in a later CTE or in the main query, not in an earlier CTE or the CTE's own body
    (there the name is a table's)."""
    with_ = tree.args.get(WITH)
    if not isinstance(with_, exp.With) or with_.args.get("recursive"):
        return Steps([], tree)
    if any(w is not with_ for w in tree.find_all(exp.With)):
        return Steps([], tree)  # a WITH inside may shadow a name: leave the scoping to Spark
    tree = tree.copy()
    ctes: list[exp.CTE] = list(tree.args[WITH].expressions)
    names = [c.alias_or_name.lower() for c in ctes]
    if len(set(names)) != len(names):
        return Steps([], tree)  # a name defined twice: leave the scoping to Spark
    main = _main_parts(tree)

    def readers(j: int) -> list[exp.Table]:
        return [r for part in [c.this for c in ctes[j + 1:]] + main
                for r in _reads(part, names[j])]

    # the tables each CTE reads, through the earlier CTEs it reads
    tables: list[set[str]] = []
    for j, c in enumerate(ctes):
        read = {t.name.lower() for t in c.this.find_all(exp.Table)}
        tables.append(set().union(*(tables[i] if names[i] in read else set()
                                    for i in range(j)), read - set(names[:j])))
    small = frozenset(t.lower() for t in small)
    shared = [j for j in range(len(ctes)) if len(readers(j)) >= 2 and tables[j] - small]
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
