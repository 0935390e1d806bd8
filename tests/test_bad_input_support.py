"""Helpers of the bad-input tests (no tests here): hypothesis budgets and a small TOML writer.

Budgets are hypothesis *profiles* applied per test (``@BUDGET``), never loaded globally, so
other modules keep their own settings. ``FLEXSCORE_HYPOTHESIS=thorough`` runs 20× more
examples (a local fuzzing session); the default ``flexscore-ci`` keeps the whole bad-input
suite within about a minute on a shared 2-core machine.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "flexscore-ci",
    max_examples=40,
    deadline=None,  # shared, noisy machine: no per-example timing
    derandomize=True,  # CI is reproducible; a failure prints the example to replay
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.register_profile(
    "thorough",
    parent=settings.get_profile("flexscore-ci"),
    max_examples=800,
    derandomize=False,
)
PROFILE = os.environ.get("FLEXSCORE_HYPOTHESIS", "flexscore-ci")
BUDGET = settings(settings.get_profile(PROFILE))
SMALL_BUDGET = settings(BUDGET, max_examples=max(10, BUDGET.max_examples // 3))

# --------------------------------------------------------------------------- JSON values

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)

# --------------------------------------------------------------------------- TOML

toml_scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()  # nan and ±inf are valid TOML
    | st.text(max_size=30)
    | st.dates()
    | st.datetimes(timezones=st.none() | st.just(dt.UTC))
    | st.times()
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)


def _key(k: str) -> str:
    return json.dumps(k)  # a TOML basic string is a valid quoted key


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(doc: dict[str, Any]) -> str:
    """``doc`` as TOML: top-level tables as [sections], everything else inline."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for name, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{_key(name)}]")
            lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
