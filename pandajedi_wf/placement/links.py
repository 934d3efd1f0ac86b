"""What the network matrix says of a link: the measured rate from one site's storage to another's.

Upstream's configurator copies the Network Weather Service into ``network_matrix_kv`` (``src``, ``dst``: ATLAS site
names, ``key``, ``value``, ``ts``); for transfers it keeps FTS's throughput per link over three windows,
``dashb_mbps_1h``, ``dashb_mbps_1d``, ``dashb_mbps_1w``, in MB/s (``AtlasProdJobBroker`` reads them with
``getNetworkMetrics`` and turns them into a weight, ``convertMBpsToWeight``). Placement uses the rate itself: a link's
bytes per second is its freshest window that measured something (the last hour, else the last day, else the last
week); a link without a measurement is left to the site's default WAN rate. Pure.
"""

from __future__ import annotations

from typing import Iterable

FTS_MBPS_KEYS = ("dashb_mbps_1h", "dashb_mbps_1d", "dashb_mbps_1w")  # freshest first (upstream's FTS_1H, FTS_1D, FTS_1W)
MB = 10**6


def link_rates(rows: Iterable[tuple[str, str, str, float | None]]) -> dict[tuple[str, str], float]:
    """``(src, dst, key, value)`` rows of the network matrix -> ``(src, dst)`` -> bytes per second, from the freshest
    of ``FTS_MBPS_KEYS`` with a positive value; other keys, and links measuring nothing, are left out."""
    rank = {key: i for i, key in enumerate(FTS_MBPS_KEYS)}
    best: dict[tuple[str, str], tuple[int, float]] = {}
    for src, dst, key, value in rows:
        if key not in rank or value is None or float(value) <= 0:
            continue
        link = (str(src), str(dst))
        if link not in best or rank[key] < best[link][0]:
            best[link] = (rank[key], float(value) * MB)
    return {link: rate for link, (_, rate) in best.items()}
