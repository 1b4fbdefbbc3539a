"""Project-owned fix-ups of SQLGlot's DuckDB -> Spark translation (ENGINE.md, known traps).

SQLGlot parses our DuckDB-dialect SQL into an expression tree; before Spark SQL is generated
from it, `apply_fixups` rewrites the nodes whose stock Spark output errors or is silently
wrong. Every rewrite is an AST transform keyed on a node type (no regexes over SQL text);
each one says why it exists. Constructs that have no faithful Spark form raise
`UntranslatableSQL` instead of producing SQL that would run and be wrong.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

# DuckDB's time_bucket origin for widths below a month: Monday 2000-01-03 00:00:00 UTC.
TIME_BUCKET_ORIGIN_US = 946_857_600 * 1_000_000
_US_PER_UNIT = {
    "MICROSECOND": 1, "MICROSECONDS": 1, "US": 1,
    "MILLISECOND": 1_000, "MILLISECONDS": 1_000, "MS": 1_000,
    "SECOND": 1_000_000, "SECONDS": 1_000_000, "S": 1_000_000,
    "MINUTE": 60_000_000, "MINUTES": 60_000_000, "M": 60_000_000,
    "HOUR": 3_600_000_000, "HOURS": 3_600_000_000, "H": 3_600_000_000,
    "DAY": 86_400_000_000, "DAYS": 86_400_000_000, "D": 86_400_000_000,
    "WEEK": 604_800_000_000, "WEEKS": 604_800_000_000, "W": 604_800_000_000,
}


class UntranslatableSQL(ValueError):
    """A DuckDB construct with no faithful Spark translation (the SQL must change)."""


def _fn(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _num(value: int | float) -> exp.Literal:
    return exp.Literal.number(value)


def _double(e: exp.Expression) -> exp.Expression:
    return exp.Cast(this=e, to=exp.DataType.build("DOUBLE"))


def _unix_micros(ts: exp.Expression) -> exp.Expression:
    return _fn("UNIX_MICROS", ts)


def _looks_numeric(e: exp.Expression) -> bool:
    """True when `e` is visibly a number (literal, arithmetic, numeric cast), not a timestamp.

    DuckDB overloads epoch_ms(): BIGINT -> TIMESTAMP and TIMESTAMP -> BIGINT. Without a
    schema the argument's shape decides; a bare column is taken as a timestamp, the form our
    SQL uses (epoch_ms(ts)); the number -> timestamp direction is make_timestamp(us) here.
    """
    e = e.unnest()
    if isinstance(e, exp.Literal):
        return not e.is_string
    if isinstance(e, exp.Binary) and isinstance(
        e, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.IntDiv | exp.Mod
    ):
        return True
    if isinstance(e, exp.Cast):
        return e.to.is_type(*exp.DataType.NUMERIC_TYPES)
    return isinstance(e, exp.Neg)


# --- individual fix-ups: node -> replacement node (or the node unchanged) -----------------


def fix_placeholder(pilot: str | None) -> Callable[[exp.Expression], exp.Expression]:
    """`$pilot` (a DuckDB prepared parameter) becomes a string literal: Spark SQL text has no
    named parameters of that form (spark.sql(args=...) takes `:name`, not on every backend)."""

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder | exp.Parameter):
            name = node.name
            if name == "pilot":
                if pilot is None:
                    raise UntranslatableSQL("the SQL uses $pilot: pass pilot=... to translate")
                return exp.Literal.string(pilot)
            raise UntranslatableSQL(f"unknown SQL parameter ${name}")
        return node

    return fix


def fix_epoch(node: exp.Expression) -> exp.Expression:
    """Epoch functions. SQLGlot leaves epoch_us/epoch_ns/to_milliseconds untranslated, maps
    epoch_ms(ts) to TIMESTAMP_MILLIS (the wrong direction), epoch(ts)/to_timestamp(double) to
    second-precision UNIX_TIMESTAMP/FROM_UNIXTIME, and passes EXTRACT(EPOCH ...) through."""
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        args = node.expressions
        if name == "epoch_us" and len(args) == 1:
            return _unix_micros(args[0])
        if name == "epoch_ns" and len(args) == 1:
            return exp.Mul(this=_unix_micros(args[0]), expression=_num(1000))
        if name == "to_milliseconds" and len(args) == 1:
            return _interval_us(exp.Mul(this=exp.Paren(this=args[0]), expression=_num(1000)))
        if name == "to_microseconds" and len(args) == 1:
            return _interval_us(args[0])
        return node
    if isinstance(node, exp.UnixToTime):
        scale = node.args.get("scale")
        s = int(scale.name) if isinstance(scale, exp.Literal) else None
        arg = node.this
        if s == 3 and not _looks_numeric(arg):
            # epoch_ms(timestamp) -> BIGINT milliseconds, truncated toward zero like DuckDB
            # (Spark's UNIX_MILLIS floors: they differ before 1970)
            return exp.IntDiv(this=_unix_micros(arg), expression=_num(1000))
        if s == 3:
            return _fn("TIMESTAMP_MILLIS", arg)
        if s == 6:
            return _fn("TIMESTAMP_MICROS", arg)
        if s in (None, 0) and not node.args.get("format"):
            # to_timestamp(double seconds): keep microseconds (FROM_UNIXTIME drops them)
            micros = _fn("ROUND", exp.Mul(this=exp.Paren(this=arg), expression=_num(1_000_000)))
            return _fn("TIMESTAMP_MICROS", exp.Cast(this=micros, to=exp.DataType.build("BIGINT")))
        return node
    if isinstance(node, exp.TimeToUnix):
        # epoch(ts): seconds as DOUBLE with the sub-second part
        return exp.Div(this=_unix_micros(node.this), expression=_num(1e6))
    if isinstance(node, exp.Extract) and node.this.name.upper() == "EPOCH":
        return exp.Div(this=_unix_micros(node.expression), expression=_num(1e6))
    return node


def _interval_us(micros: exp.Expression) -> exp.Expression:
    """A day-time interval of `micros` microseconds (any expression, not just a literal)."""
    secs = exp.Cast(
        this=exp.Div(this=exp.Paren(this=micros), expression=_num(1e6)),
        to=exp.DataType.build("DECIMAL(18, 6)"),
    )
    return _fn("MAKE_DT_INTERVAL", _num(0), _num(0), _num(0), secs)


def fix_interval(node: exp.Expression) -> exp.Expression:
    """INTERVAL (expr) MILLISECOND|MICROSECOND with a non-literal amount passes through
    SQLGlot unchanged; Spark only takes literal interval amounts."""
    if not isinstance(node, exp.Interval):
        return node
    unit = node.unit.name.upper() if node.unit else ""
    amount = node.this
    if unit in _US_PER_UNIT and amount is not None and not (
        isinstance(amount, exp.Literal) and amount.is_string
    ) and not isinstance(amount.unnest(), exp.Literal):
        return _interval_us(exp.Mul(this=exp.Paren(this=amount),
                                    expression=_num(_US_PER_UNIT[unit])))
    return node


def _interval_width_us(iv: exp.Expression) -> int:
    if not isinstance(iv, exp.Interval):
        raise UntranslatableSQL(f"time_bucket width must be an INTERVAL literal: {iv.sql()}")
    text = iv.this.name.strip() if iv.this is not None else ""
    unit = iv.unit.name.upper() if iv.unit else ""
    parts = text.split()
    if not unit and len(parts) == 2:  # INTERVAL '5 minutes'
        text, unit = parts[0], parts[1].upper()
    if unit not in _US_PER_UNIT:
        raise UntranslatableSQL(
            f"time_bucket width {iv.sql()}: only fixed-length units (us..weeks) are portable")
    return round(float(text) * _US_PER_UNIT[unit])


def fix_time_bucket(node: exp.Expression) -> exp.Expression:
    """time_bucket(width, ts) becomes DATE_BIN in SQLGlot, which Spark lacks: floor the
    epoch microseconds to the width from DuckDB's origin (2000-01-03, a Monday)."""
    if not isinstance(node, exp.DateBin):
        return node
    if node.args.get("origin") is not None or node.args.get("zone") is not None:
        raise UntranslatableSQL("time_bucket with an origin/offset is not translated")
    width = _interval_width_us(node.this)
    us = _unix_micros(node.expression)
    offset = _fn("PMOD", exp.Sub(this=us, expression=_num(TIME_BUCKET_ORIGIN_US)), _num(width))
    return _fn("TIMESTAMP_MICROS", exp.Sub(this=us.copy(), expression=offset))


def fix_quantiles(node: exp.Expression) -> exp.Expression:
    """Exact stays exact: SQLGlot turns quantile_cont(x, q) into a two-argument
    PERCENTILE_CONT (an error) and `percentile_cont(q) WITHIN GROUP` into PERCENTILE_APPROX
    (silently approximate), and DuckDB's quantile() (discrete) into Spark's PERCENTILE
    (continuous). Spark's PERCENTILE is exact with linear interpolation, like quantile_cont.
    Only approx_quantile (declared approximate) becomes PERCENTILE_APPROX."""
    if isinstance(node, exp.WithinGroup) and isinstance(
        node.this, exp.PercentileCont | exp.PercentileDisc
    ):
        order = node.expression
        keys = order.expressions if isinstance(order, exp.Order) else []
        if len(keys) != 1:
            raise UntranslatableSQL(f"WITHIN GROUP needs one ORDER BY key: {node.sql()}")
        key = keys[0]
        q = node.this.this
        if key.args.get("desc"):
            q = exp.Sub(this=_num(1), expression=q)
        if isinstance(node.this, exp.PercentileCont):
            return _fn("PERCENTILE", key.this, q)
        return _disc(key.this, q)
    if isinstance(node, exp.PercentileCont) and node.expression is not None:
        return _fn("PERCENTILE", node.this, node.expression)
    if isinstance(node, exp.PercentileDisc) and node.expression is not None:
        return _disc(node.this, node.expression)
    if isinstance(node, exp.Quantile):
        return _disc(node.this, node.args["quantile"])
    if isinstance(node, exp.Median):
        return _fn("PERCENTILE", node.this, _num(0.5))
    return node


def _disc(x: exp.Expression, q: exp.Expression) -> exp.Expression:
    # Spark's percentile_disc is the SQL-standard one (first value whose cumulative share
    # >= q), which is DuckDB's quantile_disc too (both checked in test_spark_fixups).
    return exp.WithinGroup(
        this=_fn("PERCENTILE_DISC", q),
        expression=exp.Order(expressions=[exp.Ordered(this=x, nulls_first=False)]),
    )


def fix_json(node: exp.Expression) -> exp.Expression:
    """json_object(k, v, ...) -> TO_JSON(NAMED_STRUCT(...)) keeping NULL members (Spark's
    JSON_OBJECT syntax does not exist and to_json drops NULL fields by default);
    json_group_object(k, v) -> a map from the collected (k, v) pairs."""
    keep_nulls = _fn("MAP", exp.Literal.string("ignoreNullFields"), exp.Literal.string("false"))
    if isinstance(node, exp.JSONObject):
        if all(_literal_key(kv) for kv in node.expressions):
            return _fn("TO_JSON", _named_struct(node), keep_nulls)
        return _json_text(node, keep_nulls)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "json_group_object":
        k, v = node.expressions
        pairs = _fn("COLLECT_LIST", _fn("STRUCT", k, v))
        # sorted so the text is deterministic (DuckDB's member order is scan order)
        return _fn("TO_JSON", _fn("MAP_FROM_ENTRIES", _fn("ARRAY_SORT", pairs)), keep_nulls)
    return node


def _literal_key(kv: exp.Expression) -> bool:
    return isinstance(kv, exp.JSONKeyValue) and isinstance(kv.this, exp.Literal) and (
        kv.this.is_string)


def _json_text(node: exp.JSONObject, keep_nulls: exp.Expression) -> exp.Expression:
    """An object with a computed key: named_struct needs constant names, so the text is
    concatenated from JSON-encoded keys ('["k"]' unwrapped) and values ('{"v":x}' unwrapped)."""

    def unwrap(text: exp.Expression, head: int) -> exp.Expression:
        length = exp.Sub(this=_fn("LENGTH", text.copy()), expression=_num(head + 1))
        return _fn("SUBSTRING", text, _num(head + 1), length)

    parts: list[exp.Expression] = [exp.Literal.string("{")]
    for i, kv in enumerate(node.expressions):
        if not isinstance(kv, exp.JSONKeyValue):
            raise UntranslatableSQL(f"json_object argument not key/value: {kv.sql()}")
        value = kv.expression
        value = _named_struct(value) if isinstance(value, exp.JSONObject) else value
        key = unwrap(_fn("TO_JSON", _fn("ARRAY", exp.cast(kv.this, "STRING"))), 1)
        val = unwrap(_fn("TO_JSON", _fn("NAMED_STRUCT", exp.Literal.string("v"), value),
                         keep_nulls.copy()), 5)
        parts += ([exp.Literal.string(",")] if i else []) + [key, exp.Literal.string(":"), val]
    parts.append(exp.Literal.string("}"))
    return _fn("CONCAT", *parts)


def _named_struct(node: exp.JSONObject) -> exp.Expression:
    args: list[exp.Expression] = []
    for kv in node.expressions:
        if not isinstance(kv, exp.JSONKeyValue):
            raise UntranslatableSQL(f"json_object argument not key/value: {kv.sql()}")
        value = kv.expression
        # a nested object stays a struct, so it is not encoded twice as a string
        args += [kv.this, _named_struct(value) if isinstance(value, exp.JSONObject) else value]
    return _fn("NAMED_STRUCT", *args)


def fix_hex_cast(node: exp.Expression) -> exp.Expression:
    """('0x' || hex)::UBIGINT parses hex in DuckDB; Spark has no UBIGINT and no 0x casts."""
    if not isinstance(node, exp.Cast):
        return node
    to = node.to
    if not to.is_type(exp.DataType.Type.UBIGINT, exp.DataType.Type.UINT,
                      exp.DataType.Type.USMALLINT, exp.DataType.Type.UTINYINT):
        return node
    inner = node.this.unnest()
    wide = exp.DataType.build("DECIMAL(20, 0)")  # holds every UBIGINT
    if (isinstance(inner, exp.DPipe) and isinstance(inner.this, exp.Literal)
            and inner.this.is_string and inner.this.name.lower() == "0x"):
        return exp.Cast(this=_fn("CONV", inner.expression, _num(16), _num(10)), to=wide)
    return exp.Cast(this=node.this, to=wide)


def fix_decimal_literals(node: exp.Expression) -> exp.Expression:
    """1.0, 60.0, 0.95 are DECIMAL in both engines, but DuckDB divides and averages decimals
    as DOUBLE while Spark keeps DECIMAL with a bounded scale (avg -> scale+4, division ->
    scale 6): results round at 1e-5/1e-6. As DOUBLE in Spark they match DuckDB's."""
    if (isinstance(node, exp.Literal) and not node.is_string and "." in node.name
            and "e" not in node.name.lower()
            and not isinstance(node.parent, exp.DataTypeParam | exp.Interval)
            and not (isinstance(node.parent, exp.Cast) and node.parent.to.is_type("double"))):
        return _double(node.copy())
    return node


def fix_ordered_list(node: exp.Expression) -> exp.Expression:
    """list(x ORDER BY y) -> COLLECT_LIST(x) in SQLGlot, which drops the order: collect
    (y, x) pairs, sort them, keep x."""
    if not isinstance(node, exp.ArrayAgg) or not isinstance(node.this, exp.Order):
        return node
    order = node.this
    keys = order.expressions
    if len(keys) != 1:
        raise UntranslatableSQL(f"ordered list() with several keys: {node.sql()}")
    key = keys[0]
    pairs = _fn("COLLECT_LIST", _fn("STRUCT", key.this.as_("k"), order.this.as_("v")))
    asc = exp.false() if key.args.get("desc") else exp.true()
    lam = exp.Lambda(this=exp.column("v", table="e"), expressions=[exp.to_identifier("e")])
    return _fn("TRANSFORM", _fn("SORT_ARRAY", pairs, asc), lam)


def fix_any_value(node: exp.Expression) -> exp.Expression:
    """DuckDB's any_value skips NULLs; SQLGlot says so with IGNORE NULLS, which Spark's parser
    rejects after ANY_VALUE: pass it as Spark's second argument instead."""
    if isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue):
        return _fn("ANY_VALUE", node.this.this, exp.true())
    return node


def fix_arg_min_max(node: exp.Expression) -> exp.Expression:
    """DuckDB's arg_min/arg_max skip rows whose *value* is NULL (arg_max_null keeps them);
    Spark's MIN_BY/MAX_BY return the NULL of the extreme row: order only non-NULL values."""
    if isinstance(node, exp.ArgMax | exp.ArgMin) and not node.args.get("count"):
        value, key = node.this, node.expression
        if isinstance(value.unnest(), exp.Literal):
            return node
        guarded = exp.If(this=exp.Is(this=value.copy(), expression=exp.Null()),
                         true=exp.Null(), false=key)
        return node.__class__(this=value, expression=guarded)
    return node


def fix_list_length(list_columns: frozenset[str]) -> Callable[[exp.Expression], exp.Expression]:
    """len()/length() of a list is the element count in DuckDB; Spark's LENGTH takes strings
    only. Without a full type inference, a column counts as a list when its name is one of
    `list_columns` (the list-typed columns of the warehouse), or the argument is visibly a
    list (literal, cast to a list)."""

    def is_list(e: exp.Expression) -> bool:
        e = e.unnest()
        if isinstance(e, exp.Column):
            return e.name in list_columns
        if isinstance(e, exp.Array | exp.ArrayAgg):
            return True
        if isinstance(e, exp.Cast):
            return e.to.is_type(exp.DataType.Type.ARRAY)
        if isinstance(e, exp.Case):
            branches = [i.args.get("true") for i in e.args.get("ifs", [])]
            branches.append(e.args.get("default"))
            return any(b is not None and is_list(b) for b in branches)
        return False

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Length) and is_list(node.this):
            return _fn("ARRAY_SIZE", node.this)
        return node

    return fix


def refuse_asof(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Join) and (node.args.get("kind") or "").upper() == "ASOF" or (
        isinstance(node, exp.Join) and "ASOF" in (node.text("side") + node.text("method")).upper()
    ):
        raise UntranslatableSQL(
            "ASOF JOIN has no Spark form: join through a time-bucket key plus a range filter")
    return node


def fixups(
    pilot: str | None, list_columns: frozenset[str] = frozenset()
) -> list[Callable[[exp.Expression], exp.Expression]]:
    """The fix-ups in the order they are applied (each is one tree pass)."""
    return [
        refuse_asof,
        fix_placeholder(pilot),
        fix_list_length(list_columns),
        fix_arg_min_max,
        fix_time_bucket,  # before fix_epoch/fix_interval: it reads the INTERVAL literal
        fix_interval,
        fix_epoch,
        fix_quantiles,
        fix_json,
        fix_hex_cast,
        fix_ordered_list,
        fix_any_value,
        fix_decimal_literals,
    ]


def _post_order(tree: exp.Expression, fix: Callable[[exp.Expression], exp.Expression]
                ) -> exp.Expression:
    """Apply `fix` children first, so nested constructs (epoch_us inside make_timestamp) are
    all rewritten; nodes a fix creates are not visited again (no double rewrite).
    (sqlglot's Expression.transform is pre-order and skips the subtree of a replaced node.)"""
    nodes = list(tree.walk(bfs=False))
    for node in reversed(nodes):
        new = fix(node)
        if new is node:
            continue
        if node is tree:
            tree = new
        else:
            node.replace(new)
    return tree


def apply_fixups(
    tree: exp.Expression, pilot: str | None = None, list_columns: frozenset[str] = frozenset()
) -> exp.Expression:
    for fix in fixups(pilot, list_columns):
        # fix_json pre-order: an object nested in another stays a struct (not a string)
        tree = tree.transform(fix, copy=False) if fix is fix_json else _post_order(tree, fix)
    return tree
