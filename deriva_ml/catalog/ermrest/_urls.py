"""ERMrest URLs: names and literals percent-encoded, the filter language (path filters of a where-clause,
the filter algebra of :mod:`deriva_ml.core.filters`, path queries), and splitting a request whose URL would
exceed the budget into requests that together select the same rows (the longest value list split)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import attrs

from deriva_ml.core.errors import ValidationError
from deriva_ml.core.filters import And, Cmp, In, Not, Or, PathQuery, split_largest_in

#: Longest request target (path + query string, percent-encoded, bytes) sent to ERMrest. Behind a stock
#: Apache + mod_wsgi, a request path over ~4,050 bytes is answered 404 with an HTML page (mod_wsgi cannot
#: stat the decoded path: PATH_MAX) and a request line over 8,190 bytes 414 (measured: docs/server-contract.md).
URL_BUDGET = 3000

ERM_OPS = {"lt": "::lt::", "leq": "::leq::", "gt": "::gt::", "geq": "::geq::"}
#: A predicate no row satisfies (RID is never NULL), for an empty value list inside a compound filter.
FALSE = "RID::null::"


def u(name: object) -> str:
    """ERMrest names and literals in URLs: percent-encode everything but unreserved characters."""
    return quote(str(name), safe="")


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return u(value)


def term(col: str, value: Any) -> str:
    """One disjunct of a filter: ``C=v`` or ``C::null::``."""
    return f"{u(col)}::null::" if value is None else f"{u(col)}={literal(value)}"


def filters(items: list[tuple[str, Any, bool]]) -> list[str] | None:
    """Path filter elements (conjoined by ``/``; ``;`` is disjunction) for ``where_items``; None when a
    condition can match no row (an empty list of values)."""
    out = []
    for col, value, many in items:
        if many:
            if not value:
                return None
            out.append(";".join(term(col, v) for v in value))
        elif value is None:
            out.append(f"{u(col)}::null::")
        else:
            out.append(f"{u(col)}={literal(value)}")
    return out


def render_filter(f: Any, *, top: bool = True) -> str | None:
    """ERMrest's filter language for a filter record (data/naming.md "Filter Language"): ``C=v``,
    ``C::gt::v``, ``C::null::``, ``&``, ``;``, ``!`` and parentheses. At the top, an empty value list
    gives None (nothing can match); inside a compound filter it is a predicate that is never true."""
    if isinstance(f, Cmp):
        if f.op == "null":
            return f"{u(f.column)}::null::"
        if f.op == "eq":
            return f"{u(f.column)}={literal(f.value)}"
        return f"{u(f.column)}{ERM_OPS[f.op]}{literal(f.value)}"
    if isinstance(f, In):
        if not f.values:
            return None if top else FALSE
        terms = ";".join(term(f.column, v) for v in dict.fromkeys(f.values))
        return terms if top or len(f.values) == 1 else f"({terms})"
    if isinstance(f, And | Or):
        if not f.parts:
            return f"!{FALSE}" if isinstance(f, And) else (None if top else FALSE)
        sep = "&" if isinstance(f, And) else ";"
        rendered = []
        for p in f.parts:
            r = render_filter(p, top=False)
            assert r is not None
            rendered.append(f"({r})" if isinstance(p, And | Or) else r)
        return sep.join(rendered)
    if isinstance(f, Not):
        r = render_filter(f.part, top=False)
        assert r is not None
        return f"!({r})" if isinstance(f.part, And | Or | In) else f"!{r}"
    raise ValidationError(f"not a filter: {f!r}")


def path(query: PathQuery) -> str:
    """``S:T0/<filters>/(via)=(S:T1:col)/<filters>/...``: a top-level conjunction is one element per part."""
    out = []
    for i, step in enumerate(query.steps):
        if i == 0:
            out.append(f"{u(step.schema)}:{u(step.table)}")
        else:
            out.append(f"({u(step.via)})=({u(step.schema)}:{u(step.table)}:{u(step.target_column)})")
        if step.filter is not None:
            conj = list(step.filter.parts) if isinstance(step.filter, And) and step.filter.parts else [step.filter]
            for p in conj:
                r = render_filter(p)
                out.append(FALSE if r is None else r)
    return "/".join(out)


def sort_key(value: Any) -> tuple[bool, Any]:
    """Client-side re-sort of merged parts in ERMrest's order: ascending, nulls last."""
    return (value is None, value if value is not None else 0)


def catalog_prefix(catalog_id: str, snapshot: str | None) -> str:
    """The request path every ERMrest URL of catalog ``catalog_id`` starts with (``/ermrest/catalog/N[@SNAP]``)."""
    return f"/ermrest/catalog/{u(catalog_id)}" + (f"@{u(snapshot)}" if snapshot else "")


def budgeted(
    items: list[tuple[str, Any, bool]],
    render: Any,
    *,
    prefix_len: int,
    budget: int,
) -> list[list[tuple[str, Any, bool]]]:
    """``items`` (``where_items``) as one or more item lists whose URLs (``render(items)`` after the
    catalog prefix of ``prefix_len`` bytes) fit in ``budget`` bytes: value lists are split, the longest first. Together the
    parts select exactly the rows ``items`` select (a disjunction split into disjunctions)."""
    items = [(c, list(dict.fromkeys(v)) if many else v, many) for c, v, many in items]
    prefix = prefix_len
    if prefix + len(render(items)) <= budget:
        return [items]
    lists = [i for i, (_, v, many) in enumerate(items) if many and len(v) > 1]
    if not lists:
        raise ValidationError(
            f"an ERMrest request of {prefix + len(render(items))} bytes exceeds url_budget={budget} "
            "and has no list of values to split; use shorter values"
        )
    k = max(lists, key=lambda i: len(";".join(term(items[i][0], v) for v in items[i][1])))
    col, values, _ = items[k]
    rest = items[:k] + items[k + 1 :]
    room = budget - prefix - len(render(rest)) - 1  # the "/" before the split filter
    groups: list[list[Any]] = []
    cur: list[Any] = []
    size = -1
    for v in values:
        part = len(term(col, v)) + 1
        if part - 1 > room:
            raise ValidationError(
                f"value {v!r} of column {col!r} does not fit in an ERMrest URL of url_budget={budget} "
                "bytes with the request's other filters"
            )
        if cur and size + part > room:
            groups.append(cur)
            cur, size = [], -1
        cur.append(v)
        size += part
    groups.append(cur)
    out: list[list[tuple[str, Any, bool]]] = []
    for g in groups:
        out.extend(
            budgeted([*items[:k], (col, g, True), *items[k + 1 :]], render, prefix_len=prefix_len, budget=budget)
        )
    return out


def path_parts(query: PathQuery, render: Any, *, prefix_len: int, budget: int) -> list[PathQuery]:
    """``query`` as queries whose URLs fit the budget (the longest value list halved until they do)."""
    if prefix_len + len(render(query)) <= budget:
        return [query]

    def longest(step: Any) -> int:
        f = step.filter
        conj = list(f.parts) if type(f).__name__ == "And" else [f]
        return max((len(p.values) for p in conj if isinstance(p, In)), default=0)

    k = max(range(len(query.steps)), key=lambda i: longest(query.steps[i]))
    pieces = split_largest_in(query.steps[k].filter, 2)
    if pieces is None:
        raise ValidationError(
            f"an ERMrest request of {len(render(query))} bytes exceeds url_budget={budget} "
            "and has no list of values to split; use shorter values"
        )
    out: list[PathQuery] = []
    for piece in pieces:
        steps = list(query.steps)
        steps[k] = attrs.evolve(steps[k], filter=piece)
        out.extend(path_parts(attrs.evolve(query, steps=tuple(steps)), render, prefix_len=prefix_len, budget=budget))
    return out
