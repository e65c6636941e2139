"""The verdict of a run, pure: exit code and the bounds it broke.

Exit codes: 0 within bounds; 1 the failure ratio (``PARLEY_LT_MAX_FAIL_RATIO``) or the
delivery ratio (``PARLEY_LT_MIN_DELIVERY_RATIO``) is out of bounds; 3 only a latency
threshold (``PARLEY_LT_THRESHOLDS``) was exceeded. ``stats`` is anything shaped like locust's
``RequestStats``: ``.total`` and ``.entries`` values with ``method``, ``name``,
``num_requests``, ``num_failures`` and ``get_response_time_percentile(fraction)``.
"""

from __future__ import annotations

from lt_config import LoadConfig, parse_thresholds
from lt_delivery import delivery_ratio


def verdict(config: LoadConfig, counts: dict[str, int], stats) -> tuple[int, list[str]]:
    problems: list[str] = []
    code = 0
    total = stats.total
    if total.num_requests and total.num_failures / total.num_requests > config.max_fail_ratio:
        problems.append(
            f"failures: {total.num_failures} of {total.num_requests} requests "
            f"(allowed ratio {config.max_fail_ratio:g})"
        )
        code = 1
    ratio = delivery_ratio(counts)
    if ratio is not None and ratio < config.min_delivery_ratio:
        problems.append(f"delivery ratio {ratio:.6f} < {config.min_delivery_ratio:g}")
        code = 1
    for kind, name, pct, limit in parse_thresholds(config.thresholds):
        for entry in stats.entries.values():
            if entry.method != kind or "[" in entry.name or not entry.num_requests:
                continue  # failure rows ("name [code]") carry no latency worth bounding
            if name not in ("*", entry.name):
                continue
            value = entry.get_response_time_percentile(pct / 100)
            if value > limit:
                problems.append(f"{kind} {entry.name} p{pct:g} = {value:.0f} ms > {limit:g} ms")
                code = code or 3
    return code, problems
