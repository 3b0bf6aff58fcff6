"""The lab's ledger: everything `up` created, written before it is created.

`down` removes exactly what is recorded here (namespaces by name, processes by PID and start
time so a recycled PID is never signalled) and nothing else.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

RUN_DIR = Path(os.environ.get("TENET_RUN_DIR", "/run/tenet/labs"))


@dataclass(frozen=True)
class Proc:
    role: str  # controller | agent | mrouter | ...
    node: str
    pid: int
    start_time: int  # /proc/<pid>/stat field 22: tells a recycled PID apart
    log: str
    metrics: str = ""  # the URL of its Prometheus metrics ("": none) …
    netns: str = ""  # … served in this namespace ("": the root namespace; lab/metrics.py)


@dataclass
class Record:
    name: str
    topology: str
    namespaces: list[str] = field(default_factory=list)
    processes: list[Proc] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    state: str = "creating"
    control: dict = field(default_factory=dict)  # the topology's control block, as lab/control.py read it
    store: str = ""  # the store URL tools in this (root) namespace use; empty: the SQLite file

    @property
    def dir(self) -> Path:
        return RUN_DIR / self.name

    @property
    def store_url(self) -> str:
        """Where the lab's store is: the one place a lab's name becomes a store URL."""
        return self.store or f"sqlite:///{self.dir / 'store.db'}"

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "record.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(self.dir / "record.json")

    @staticmethod
    def load(name: str) -> "Record":
        path = RUN_DIR / name / "record.json"
        if not path.exists():
            raise LookupError(f"no lab named {name!r} is up (nothing recorded at {path})")
        d = json.loads(path.read_text())
        d["processes"] = [Proc(**p) for p in d["processes"]]
        return Record(**d)


def running_labs() -> list[str]:
    if not RUN_DIR.exists():
        return []
    return sorted(p.name for p in RUN_DIR.iterdir() if (p / "record.json").exists())


def start_time(pid: int) -> int:
    """Kernel start time of a process in clock ticks, or -1 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat[stat.rindex(")") + 2 :].split()[19])
