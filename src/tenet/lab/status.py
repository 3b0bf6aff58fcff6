"""A running lab's processes as `tenet lab status` shows them: each with whether it is alive,
which controller leads, how far each agent is, and its admission processes (its children)."""
from __future__ import annotations

import os

from tenet.lab.record import Record, start_time
from tenet.store import keys
from tenet.store.open import open_store
from tenet.store.records import AdmissionReady, AgentStatus, Leader


def lab_processes(rec: Record) -> list[dict]:
    store = open_store(rec.store_url)
    try:
        return _rows(rec, store)
    finally:
        store.close()


def _rows(rec: Record, store) -> list[dict]:
    kv = store.get(keys.controller_leader())
    leader = Leader.from_json(kv.value) if kv else None
    procs: list[dict] = []
    for p in rec.processes:
        row: dict = {"role": p.role, "node": p.node, "pid": p.pid, "alive": start_time(p.pid) == p.start_time}
        if p.metrics:  # Prometheus: scrape it from inside its namespace (docs/metrics.md)
            row["metrics"] = {"url": p.metrics, "netns": p.netns}
        if p.role == "controller":
            row["leads"] = leader is not None and (leader.name, leader.pid) == (p.node, p.pid)
        if p.role == "agent":
            s = store.get(keys.status(p.node))
            if s:
                st = AgentStatus.from_json(s.value)
                row["generation"], row["state"] = st.generation, st.state.value
                row["provisional"] = st.provisional  # rows forwarded before the tables named them
        procs.append(row)
        for a in store.range(keys.admission_prefix(p.node)) if p.role == "agent" else []:
            ready = AdmissionReady.from_json(a.value)  # the agent's admission processes (its children)
            procs.append({"role": "admission", "node": p.node, "pid": ready.pid, "alive": _alive(ready.pid),
                          "shard": ready.shard, "shards": ready.shards, "serves": list(ready.serves)})
    return procs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
