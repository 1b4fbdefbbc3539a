"""One clear line for a failed command: the root cause of an exception, however deeply
Dagster wrapped it.

Dagster re-raises a step's exception inside its own errors, and the chain can loop (a cause
whose context is the wrapper): walking it needs a visited set, and printing it with Rich's
traceback (locals included) has been seen to spin for minutes. The CLI prints only what
`one_line` returns unless `--debug` is given.
"""

from __future__ import annotations

import dagster as dg

_WRAPPERS = (dg.DagsterError,)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes/contexts, outermost first, each once."""
    seen: set[int] = set()
    out: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        out.append(e)
        inner = getattr(e, "user_exception", None)
        for nxt in (inner, e.__cause__, e.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return out


def _step(chain: list[BaseException]) -> str | None:
    for e in chain:
        step = getattr(e, "step_key", None)
        if isinstance(step, str):
            return step
    return None


# their message says it all (Dagster's own errors too: "1 blocking asset check failed …")
_PLAIN = (ValueError, OSError, LookupError, RuntimeError, dg.DagsterError)


def _message(e: BaseException) -> str:
    if isinstance(e, dg.Failure) and e.description:
        text = e.description
    elif str(e):
        text = str(e) if isinstance(e, _PLAIN) else f"{type(e).__name__}: {e}"
    else:
        text = type(e).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()] or [text]
    first = lines[0]
    if first.endswith(":") and len(lines) > 1:  # "1 blocking asset check failed …:\n<names>"
        first = f"{first} {'; '.join(lines[1:6])}"
    return first if len(first) <= 400 else first[:397] + "…"


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception that is not one of Dagster's wrappers (a dg.Failure counts
    as the cause: it carries the step's own description)."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, dg.Failure):
            return e
    own = [e for e in chain if not isinstance(e, _WRAPPERS)]
    return own[-1] if own else chain[-1]


def one_line(exc: BaseException, *, pilot: str | None = None) -> str:
    """`pilot P: step S: <why>` from any exception a command raised."""
    chain = _chain(exc)
    cause = root_cause(exc)
    message = _message(cause)
    parts = []
    # a step's own Failure already names its pilot ("pilot P: ingest: …")
    if pilot and not message.startswith(f"pilot {pilot}"):
        parts.append(f"pilot {pilot}")
        step = _step(chain)
        if step:
            parts.append(f"step {step}")
    parts.append(message)
    return ": ".join(parts)
