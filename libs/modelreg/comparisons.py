"""The comparisons of a metric with a threshold (`metric >= threshold`, ...), one table for every
service that gates or alerts on metrics (promotion's required checks, lineage's degradation
thresholds). Pure."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping

COMPARISONS: Mapping[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
"""Symbol -> `compare(metric, threshold)`."""
