"""iperf3's JSON as the migration benches read it (bench/migration.py, bench/evpn_peer.py)."""
from __future__ import annotations

import json


def survived(text: str, rc: int) -> bool:
    """A TCP session across migrations survived: iperf3 ended well and its last seconds still
    carried data."""
    try:
        intervals = [i["sum"]["bytes"] for i in json.loads(text)["intervals"]]
    except (ValueError, KeyError):
        return False
    return rc == 0 and len(intervals) > 2 and all(b > 0 for b in intervals[-2:])
