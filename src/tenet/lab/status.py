"""A running lab's processes as `tenet lab status` shows them. Two kinds of answer, kept apart:
liveness measured now (the process exists, is no zombie and is the one started; its
supervisor's phase and restarts; an agent's heartbeat, its lease's last renewal) and what the
store last heard (which controller leads, the generation each agent last converged to, its
admission processes)."""
from __future__ import annotations

import time

from tenet.lab.liveness import Liveness, agent_heartbeat, facts, judge
from tenet.lab.record import Record
from tenet.lab.supervision import ROLE as SUPERVISOR, Supervision, current
from tenet.lab.unit import describe_exit
from tenet.store import keys
from tenet.store.open import open_store
from tenet.store.records import AdmissionReady, AgentStatus, Leader


def lab_processes(rec: Record) -> list[dict]:
    store = open_store(rec.store_url)
    try:
        return _rows(rec, store, time.time())
    finally:
        store.close()


def _rows(rec: Record, store, now: float) -> list[dict]:
    kv = store.get(keys.controller_leader())
    leader = Leader.from_json(kv.value) if kv else None
    sup = Supervision(rec.dir)
    procs: list[dict] = []
    for p in current(rec):
        liveness = judge(facts(p.pid), p.start_time)
        row: dict = {"role": p.role, "node": p.node, "pid": p.pid, "alive": liveness is Liveness.ALIVE,
                     "liveness": liveness.value}
        unit = sup.status(p.role, p.node) if p.role != SUPERVISOR else None
        if unit is not None:  # the supervisor's word: what it last did with the unit
            row["phase"], row["restarts"] = unit.phase.value, unit.restarts
            row["since"] = round(now - unit.since, 1)
            if unit.last_exit is not None:
                row["last_exit"], row["last_exit_ago"] = describe_exit(unit.last_exit), round(now - unit.last_exit_at, 1)
            if unit.error:
                row["error"] = unit.error
        if p.metrics:  # Prometheus: scrape it from inside its namespace (docs/metrics.md)
            row["metrics"] = {"url": p.metrics, "netns": p.netns}
        if p.role == "controller":
            row["leads"] = leader is not None and (leader.name, leader.pid) == (p.node, p.pid)
        if p.role == "agent":
            hb = agent_heartbeat(store, p.node)
            row["heartbeat"] = {"beat": hb.beat.value, "age": hb.age, "bound": hb.bound}
            s = store.get(keys.status(p.node))
            if s:  # the store's word: the generation it last converged to, dead or alive since
                st = AgentStatus.from_json(s.value)
                row["generation"], row["state"] = st.generation, st.state.value
                row["provisional"] = st.provisional  # rows forwarded before the tables named them
        procs.append(row)
        for a in store.range(keys.admission_prefix(p.node)) if p.role == "agent" else []:
            ready = AdmissionReady.from_json(a.value)  # the agent's admission processes (its children)
            pf = facts(ready.pid)
            procs.append({"role": "admission", "node": p.node, "pid": ready.pid,
                          "alive": pf.exists and pf.state not in ("Z", "X"),
                          "shard": ready.shard, "shards": ready.shards, "serves": list(ready.serves)})
    return procs
