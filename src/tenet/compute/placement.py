"""The placement advisor: which live migrations would bring each VN onto fewer hosts, empty a
host, or even out load (seed 002: the VMs of one VN "execute in as few hosts as possible";
migration for energy, bandwidth and availability). Pure: intent -> Plan; applying a plan is
the hypervisor's (hypervisor/placement.py).

The figures a plan is judged by, before and after (`Figures`):
- hosts per VN: the hosts implementing each VN — holding a VM with a NIC on it (both ends of
  a migration under way), or carrying a VN layered over it (model/layers.py);
- broadcast copies per broadcast, summed over the VNs: for each VN, the other NVEs a
  broadcast must reach (a multicast group's members, or the head-end's copies);
- peer pairs: distinct pairs of NVEs sharing at least one VN, translated when both are on
  one physical network, else encapsulated (compute/addressing.py `function_for`). A host
  behind an access switch counts as its switch, the NVE that serves its VMs.

Rules every goal keeps: capacity (model/capacity.py) is never exceeded after any move, in the
order given; a host that declares no capacity is never a target (its VMs may leave it); a
VM behind an access switch moves only to another such host, one on a hypervisor NVE only to
another hypervisor; a virtual router, a VM whose NIC sits on an access LAN of several NVEs
(it moves by re-plugging), and a VM already migrating stay where they are; every VM moves at
most once in a plan (a live migration is not free, and a plan stays short). Every VM counts
for capacity and VNs whatever its power state. Ties are broken by name: the same intent gives
the same plan.

The goals, each greedy (good plans in one pass over small choices, not optimal ones):
- colocate: repeatedly take the step that lowers the total of hosts per VN the most — either
  a VN leaving one host (its VMs there packed into other hosts that already implement it) or
  a VN gathering on one host (all its VMs elsewhere moved there) — fewer moves first, then the
  step that empties more hosts; stop when no step lowers the total. Each step lowers it, so
  it ends.
- drain HOST: every movable VM off HOST, largest first, each to the host with room that
  already implements most of its VNs, then the emptiest; what cannot go is named with why.
- balance, among the hosts that declare a capacity: repeatedly move a VM off the fullest host
  (by its fullest declared dimension) to the host where the larger of the two shares ends
  lowest, if that is below the fullest's share now; moves that add no VN to a host first, and
  none that adds more than one host to the total of hosts per VN. When the fullest host has
  no such move, the next fullest is tried.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from tenet.compute.addressing import function_for
from tenet.compute.tables import Function
from tenet.model.capacity import Capacity, memory_text
from tenet.model.fabric import Host
from tenet.model.tenancy import Intent, Vm

EPSILON = 1e-9


class Goal(str, Enum):
    COLOCATE = "colocate"
    DRAIN = "drain"
    BALANCE = "balance"


class PlacementError(ValueError):
    """A plan that cannot be asked for (an unknown goal or host)."""


@dataclass(frozen=True)
class Move:
    vm: str
    source: str
    destination: str
    why: str


@dataclass(frozen=True)
class Unmoved:
    """A VM the goal would have moved and could not, with why."""

    vm: str
    host: str
    reason: str


@dataclass(frozen=True)
class Overload:
    """A host over its declared capacity (the document allows it; the advisor says so)."""

    host: str
    exceeded: tuple[str, ...]  # "9 slots of 8", …


@dataclass(frozen=True)
class Figures:
    hosts_per_vn: tuple[tuple[str, int], ...]  # (VN, hosts implementing it), every VN with a host, intent order
    broadcast_copies: int  # summed over VNs: the other NVEs one broadcast reaches
    translated_pairs: int  # NVE pairs sharing a VN on one physical network
    encapsulated_pairs: int  # … across a router
    busy_hosts: int  # hosts holding a VM

    @property
    def total(self) -> int:
        return sum(n for _, n in self.hosts_per_vn)

    @property
    def mean(self) -> float:
        return self.total / len(self.hosts_per_vn) if self.hosts_per_vn else 0.0

    @property
    def max(self) -> int:
        return max((n for _, n in self.hosts_per_vn), default=0)


@dataclass(frozen=True)
class Plan:
    goal: Goal
    drain: str  # the host a drain empties; "" for the other goals
    moves: tuple[Move, ...]  # in the order they are to be made: each fits after the ones before
    unmoved: tuple[Unmoved, ...]
    before: Figures
    after: Figures
    idle: tuple[str, ...]  # hosts holding no VM once the moves are made (could be powered off)
    emptied: tuple[str, ...]  # those of them the plan empties
    uncapped: tuple[str, ...]  # hosts declaring no capacity: never targets
    overloaded: tuple[Overload, ...]  # before the plan


@dataclass(frozen=True)
class _Machine:
    """A host VMs run on: a hypervisor NVE, or a host behind an access switch (`nve` its switch)."""

    name: str
    nve: str
    proxy: bool
    capacity: Capacity | None


class _State:
    """Where every VM is while a plan is made: moves are applied and undone in place."""

    def __init__(self, intent: Intent) -> None:
        hosts = [h for h in intent.fabric.hosts if not h.switch]
        self.machines = {h.name: _Machine(h.name, h.name, False, h.capacity) for h in hosts}
        self.machines.update({x.name: _Machine(x.name, x.switch, True, x.capacity) for x in intent.fabric.proxies})
        self.nves: dict[str, Host] = {h.name: h for h in intent.fabric.hosts}
        self.vms = {vm.name: vm for vm in intent.vms}
        self.vns = [v.name for v in intent.vns]
        self.uppers: dict[str, list[str]] = {}  # VN -> the VNs layered directly over it
        for v in intent.vns:
            if v.over:
                self.uppers.setdefault(v.over, []).append(v.name)
        self.where: dict[str, tuple[str, ...]] = {
            vm.name: (vm.host, vm.migrating_to) if vm.migrating_to else (vm.host,) for vm in intent.vms}
        self.count: dict[str, Counter[str]] = {v: Counter() for v in self.vns}  # VN -> host -> its VMs there
        self.used: dict[str, list[int]] = {m: [0, 0, 0] for m in self.machines}  # slots, cpu, memory
        for vm in intent.vms:
            self._add(vm.name, 1)
        self.moved: set[str] = set()

    def _add(self, name: str, sign: int) -> None:
        vm = self.vms[name]
        for h in self.where[name]:
            for nic in vm.nics:
                self.count[nic.network][h] += sign
                if not self.count[nic.network][h]:
                    del self.count[nic.network][h]
            u = self.used[h]
            u[0] += sign * vm.size.slots
            u[1] += sign * vm.size.cpu
            u[2] += sign * vm.size.memory

    def move(self, name: str, to: str) -> tuple[str, ...]:
        """Put VM `name` on `to` alone; returns where it was (for `put_back`)."""
        was = self.where[name]
        self._add(name, -1)
        self.where[name] = (to,)
        self._add(name, 1)
        return was

    def put_back(self, name: str, was: tuple[str, ...]) -> None:
        self._add(name, -1)
        self.where[name] = was
        self._add(name, 1)

    # -- what the figures are made of --------------------------------------------------------
    def implementing(self, vn: str) -> set[str]:
        """Hosts with a VM on `vn`, and those carrying a VN over it (a carrier joins it)."""
        out = set(self.count[vn])
        for upper in self.uppers.get(vn, ()):
            out |= self.implementing(upper)
        return out

    def total(self) -> int:
        return sum(len(self.implementing(v)) for v in self.vns)

    def on(self, host: str) -> list[str]:
        return sorted(n for n, hosts in self.where.items() if host in hosts)

    def figures(self) -> Figures:
        per_vn, copies, pairs = [], 0, set()
        for v in self.vns:
            hosts = self.implementing(v)
            if not hosts:
                continue
            per_vn.append((v, len(hosts)))
            nves = sorted({self.machines[h].nve for h in hosts})
            copies += len(nves) - 1
            pairs |= {(a, b) for i, a in enumerate(nves) for b in nves[i + 1:]}
        functions = Counter(function_for(self.nves[a], self.nves[b]) for a, b in pairs)
        busy = sum(1 for m in self.machines if any(self.used[m]))
        return Figures(tuple(per_vn), copies, functions[Function.TRANSLATE_L2], functions[Function.ENCAPSULATE], busy)

    # -- room ---------------------------------------------------------------------------------
    def share(self, host: str) -> float:
        cap = self.machines[host].capacity
        return cap.share(*self.used[host]) if cap is not None else 0.0

    def fits(self, name: str, host: str) -> bool:
        cap, size, u = self.machines[host].capacity, self.vms[name].size, self.used[host]
        return cap is not None and not cap.exceeded(u[0] + size.slots, u[1] + size.cpu, u[2] + size.memory)

    def targets(self, name: str, exclude: Iterable[str] = ()) -> list[str]:
        """Hosts VM `name` may move to now: of its own kind, declaring capacity, with room."""
        here, skip = self.where[name], set(exclude)
        proxy = self.machines[here[0]].proxy
        return [h for h, m in sorted(self.machines.items())
                if h not in here and h not in skip and m.proxy == proxy and self.fits(name, h)]

    def shared(self, name: str, host: str) -> list[str]:
        """The VM's VNs `host` already implements."""
        return [n.network for n in self.vms[name].nics if host in self.count[n.network]]


def unmovable(vm: Vm) -> str:
    """Why the advisor leaves `vm` where it is ("" if it may move it)."""
    if vm.router:
        return "a virtual router: where it sits decides its links' guarantees (move it with tenet vr move)"
    if vm.migrating_to:
        return f"a migration to {vm.migrating_to} is under way: finish it first"
    lan = next((i for i, n in enumerate(vm.nics) if n.nves), None)
    if lan is not None:
        return f"its eth{lan} is on an access LAN of several NVEs: it moves by re-plugging, not live migration"
    return ""


def plan(intent: Intent, goal: Goal | str, drain: str | None = None) -> Plan:
    """The moves toward `goal` (colocate, drain or balance; drain names the host to empty)."""
    try:
        goal = Goal(goal)
    except ValueError:
        raise PlacementError(f"no goal {goal!r}: one of {', '.join(g.value for g in Goal)}") from None
    state = _State(intent)
    if goal is Goal.DRAIN and not drain:
        raise PlacementError("drain needs the host to empty")
    if goal is not Goal.DRAIN and drain:
        raise PlacementError(f"a host to drain goes with the drain goal, not {goal.value}")
    if drain and drain not in state.machines:
        raise PlacementError(f"no host named {drain!r} that VMs run on")
    before = state.figures()
    idle_before = {m for m in state.machines if not any(state.used[m])}
    overloaded = tuple(Overload(m, ex) for m, spec in sorted(state.machines.items()) if spec.capacity is not None
                       for ex in [spec.capacity.exceeded(*state.used[m])] if ex)
    if goal is Goal.COLOCATE:
        moves, unmoved = _colocate(state)
    elif goal is Goal.DRAIN:
        moves, unmoved = _drain(state, str(drain))
    else:
        moves, unmoved = _balance(state)
    idle = tuple(m for m in sorted(state.machines) if not any(state.used[m]))
    return Plan(goal, drain or "", tuple(moves), tuple(unmoved), before, state.figures(), idle,
                tuple(m for m in idle if m not in idle_before),
                tuple(m for m, spec in sorted(state.machines.items()) if spec.capacity is None), overloaded)


def refusal(intent: Intent, move: Move) -> str:
    """Why `move` cannot be made on `intent` now ("" if it can): what applying a plan checks
    before each migration, in case the intent changed since the plan was made."""
    state = _State(intent)
    vm = state.vms.get(move.vm)
    if vm is None:
        return f"{move.vm} is no longer in the intent"
    why = unmovable(vm)
    if why:
        return f"{move.vm} stays: {why}"
    if vm.host != move.source:
        return f"{move.vm} is on {vm.host} now, not {move.source} as planned"
    if move.destination not in state.machines:
        return f"no host named {move.destination!r} that VMs run on"
    if move.destination not in state.targets(move.vm):
        target = state.machines[move.destination]
        if target.capacity is None:
            return f"{move.destination} declares no capacity"
        if target.proxy != state.machines[vm.host].proxy:
            return f"{move.vm} and {move.destination}: a VM migrates between hosts of one kind"
        return f"{move.destination} has no room for {move.vm} now"
    return ""


# -- colocate ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Step:
    moves: tuple[tuple[str, str], ...]  # (VM, destination)
    why: str


def _colocate(state: _State) -> tuple[list[Move], list[Unmoved]]:
    moves: list[Move] = []
    while True:
        best, best_key = None, None
        total = state.total()
        for step in _steps(state):
            after, emptied = _try(state, step)
            key = (after, len(step.moves), -emptied)  # the lowest total, then the fewest moves, then more empty
            if after < total and (best_key is None or key < best_key):
                best, best_key = step, key
        if best is None:
            break
        for vm, to in best.moves:
            moves.append(Move(vm, state.where[vm][0], to, best.why))
            state.move(vm, to)
            state.moved.add(vm)
    spread = {v for v in state.vns if len(state.count[v]) > 1}
    unmoved = [Unmoved(n, state.where[n][0], why) for n, vm in sorted(state.vms.items())
               for why in [unmovable(vm)] if why and {nic.network for nic in vm.nics} & spread]
    return moves, unmoved


def _try(state: _State, step: _Step) -> tuple[int, int]:
    """(hosts per VN in total, hosts emptied) were `step` made; the state is left as it was."""
    undo, emptied_before = [], sum(1 for m in state.machines if not any(state.used[m]))
    for vm, to in step.moves:
        undo.append((vm, state.move(vm, to)))
    result = state.total(), sum(1 for m in state.machines if not any(state.used[m])) - emptied_before
    for vm, was in reversed(undo):
        state.put_back(vm, was)
    return result


def _free(state: _State, vm: str) -> bool:
    return not unmovable(state.vms[vm]) and vm not in state.moved


def _steps(state: _State) -> Iterable[_Step]:
    """Every candidate step, in a fixed order: for each VN spread over hosts, each host it
    could leave (packed into its other hosts), then each host it could gather on."""
    for vn in state.vns:
        holders = sorted(state.count[vn])
        if len(holders) < 2:
            continue
        members = {h: [n for n in state.on(h) if any(nic.network == vn for nic in state.vms[n].nics)] for h in holders}
        for src in holders:
            if all(_free(state, n) for n in members[src]):
                packed = _pack(state, vn, members[src], [h for h in holders if h != src])
                if packed is not None:
                    yield _Step(packed, f"{vn} leaves {src}")
        for dest in sorted(state.machines):
            movers = [n for h, ms in members.items() if h != dest for n in ms]
            if all(_free(state, n) for n in movers):
                packed = _pack(state, vn, movers, [dest])
                if packed is not None:
                    yield _Step(packed, f"{vn} gathers on {dest}")


def _pack(state: _State, vn: str, vms: list[str], into: list[str]) -> tuple[tuple[str, str], ...] | None:
    """Each of `vms`, largest first, onto the host of `into` with room that holds most of
    `vn`, then most of the VM's other VNs, then by name; None if one finds no room."""
    order = sorted(vms, key=lambda n: (-state.vms[n].size.cpu, -state.vms[n].size.memory, n))
    done: list[tuple[str, tuple[str, ...]]] = []
    out = []
    for n in order:
        allowed = set(state.targets(n)) & set(into)
        if not allowed:
            break
        to = min(allowed, key=lambda h: (-state.count[vn][h], -len(state.shared(n, h)), h))
        done.append((n, state.move(n, to)))
        out.append((n, to))
    for n, was in reversed(done):
        state.put_back(n, was)
    return tuple(out) if len(out) == len(order) else None


# -- drain ------------------------------------------------------------------------------------
def _drain(state: _State, host: str) -> tuple[list[Move], list[Unmoved]]:
    moves, unmoved = [], []
    order = sorted(state.on(host), key=lambda n: (-state.vms[n].size.cpu, -state.vms[n].size.memory, n))
    for n in order:
        why = unmovable(state.vms[n])
        if why:
            unmoved.append(Unmoved(n, host, why))
            continue
        options = state.targets(n, exclude=[host])
        if not options:
            unmoved.append(Unmoved(n, host, _no_room(state, n, host)))
            continue
        to = min(options, key=lambda h: (-len(state.shared(n, h)), _share_with(state, n, h), h))
        shared = state.shared(n, to)
        moves.append(Move(n, host, to, f"drain {host}" + (f"; {to} has {', '.join(shared)}" if shared else "")))
        state.move(n, to)
        state.moved.add(n)
    return moves, unmoved


def _share_with(state: _State, vm: str, host: str) -> float:
    was = state.move(vm, host)
    share = state.share(host)
    state.put_back(vm, was)
    return share


def _no_room(state: _State, vm: str, host: str) -> str:
    kind = "host behind an access switch" if state.machines[host].proxy else "hypervisor host"
    capped = [m for m, spec in state.machines.items()
              if m != host and spec.proxy == state.machines[host].proxy and spec.capacity is not None]
    if not capped:
        return f"no other {kind} declares a capacity (hosts without one are never targets)"
    s = state.vms[vm].size
    return f"no other {kind} has room for it (1 slot, {s.cpu} CPU, {memory_text(s.memory)})"


# -- balance ----------------------------------------------------------------------------------
def _better(now: float, after: tuple[float, float]) -> bool:
    """Does a move leave both hosts below the source's share now? (A host over a capacity of
    0 stays infinitely full until it is empty: any move to a host with room helps it.)"""
    return max(after) < now - EPSILON or (now == float("inf") and after[1] != float("inf"))


def _balance(state: _State) -> tuple[list[Move], list[Unmoved]]:
    moves: list[Move] = []
    capped = sorted(m for m, spec in state.machines.items() if spec.capacity is not None)
    while True:
        step = None
        for src in sorted(capped, key=lambda m: (-state.share(m), m)):
            now = state.share(src)
            if now <= EPSILON:
                break
            best, best_key = None, None
            total = state.total()
            for n in state.on(src):
                if not _free(state, n) or state.where[n] != (src,):
                    continue
                for to in state.targets(n):
                    before_to = state.share(to)
                    was = state.move(n, to)
                    after = (state.share(src), state.share(to))
                    raised = state.total() - total
                    state.put_back(n, was)
                    if not _better(now, after) or raised > 1:
                        continue
                    key = (raised, max(after), n, to)
                    if best_key is None or key < best_key:
                        best, best_key = (n, to, before_to, after), key
            if best is not None:
                step = (src, now, best)
                break
        if step is None:
            break
        src, now, (n, to, before_to, (src_after, to_after)) = step
        moves.append(Move(n, src, to, f"{src} {now:.0%} -> {src_after:.0%}, {to} {before_to:.0%} -> {to_after:.0%}"))
        state.move(n, to)
        state.moved.add(n)
    mean = sum(state.share(m) for m in capped) / len(capped) if capped else 0.0
    unmoved = [Unmoved(n, m, why) for m in capped if state.share(m) > mean + EPSILON
               for n in state.on(m) for why in [unmovable(state.vms[n])] if why]
    return moves, unmoved
