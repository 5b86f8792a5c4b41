"""A GitHub job's matrix, expanded into its legs as GitHub does (`include`, `exclude`).

Each leg maps a matrix key to its value and the place that value is written, so a role named
through `${{ matrix.role }}` is traced back to the line of the `include:` entry that gives it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from nhi_invoke.audit.pipelines.model import Where
from nhi_invoke.audit.pipelines.nodes import mapping, sequence
from nhi_invoke.audit.pipelines.yaml_tree import Map, Seq

MAX_LEGS = 256  # GitHub's own limit per workflow run


@dataclass(frozen=True)
class Value:
    text: str
    where: Where


Leg = dict[str, Value]


def _values(items: Seq) -> list[Value]:
    return [
        Value(str(item), Where(span.file, span.line))
        for item, span in zip(items, items.spans, strict=False)
        if not isinstance(item, Map | Seq)
    ]


def _entry(entry: Map) -> Leg:
    return {
        key: Value(str(value), Where(entry.span_of(key).file, entry.span_of(key).line))
        for key, value in entry.items()
        if not isinstance(value, Map | Seq)
    }


def _dimensions(matrix: Map) -> dict[str, list[Value]] | None:
    """The matrix's lists by key; None when one is an expression (values not in the file)."""
    dimensions: dict[str, list[Value]] = {}
    for key, value in matrix.items():
        if key in ("include", "exclude"):
            continue
        if not isinstance(value, Seq):
            return None
        dimensions[key] = _values(value)
    return dimensions


def _without_excluded(combos: list[Leg], matrix: Map) -> list[Leg]:
    for exclude in sequence(matrix.get("exclude")) or []:
        if isinstance(exclude, Map):
            drop = {k: str(v) for k, v in exclude.items()}
            combos = [
                c for c in combos if any(k not in c or c[k].text != v for k, v in drop.items())
            ]
    return combos


def _with_included(combos: list[Leg], matrix: Map, dimensions: dict[str, list[Value]]) -> None:
    """GitHub's rule: an include entry extends every original combination it does not
    contradict, and becomes a leg of its own when it extends none."""
    originals = list(combos)
    for include in sequence(matrix.get("include")) or []:
        if not isinstance(include, Map):
            continue
        entry = _entry(include)
        matched = [
            c
            for c in originals
            if all(c[k].text == v.text for k, v in entry.items() if k in dimensions)
        ]
        if matched and dimensions:
            for combo in matched:
                combo.update(entry)
        else:
            combos.append(dict(entry))


def legs(job: Map) -> list[Leg]:
    """The job's legs (one empty leg without a matrix; two unknown legs for `${{ … }}`)."""
    strategy = mapping(job.get("strategy"))
    raw: Any = strategy.get("matrix") if strategy is not None else None
    if raw is None:
        return [{}]
    matrix = mapping(raw)
    dimensions = _dimensions(matrix) if matrix is not None else None
    if matrix is None or dimensions is None:
        return [{}, {}]  # fromJSON(…): legs exist, their values are not in the file
    combos: list[Leg] = []
    if dimensions:
        keys = list(dimensions)
        for values in itertools.islice(itertools.product(*dimensions.values()), MAX_LEGS):
            combos.append(dict(zip(keys, values, strict=True)))
    combos = _without_excluded(combos, matrix)
    _with_included(combos, matrix, dimensions)
    return combos or [{}]


def resolve(text: str, leg: Leg) -> str:
    """`text` with `${{ matrix.key }}` replaced by this leg's values (others left as they are)."""
    for key, value in leg.items():
        for spelling in (f"${{{{ matrix.{key} }}}}", f"${{{{matrix.{key}}}}}"):
            text = text.replace(spelling, value.text)
    return text
