"""The `tenet` command. No logic of its own: it parses, calls the library, prints."""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from tenet.cli.api import api, token_app
from tenet.cli.console import cells, fail, line, out, progress, styled
from tenet.cli.placement import placement_app
from tenet.cli.trace import trace_cmd, verify_cmd
from tenet.cli.vms import vm_app, vr_app
from tenet.compute.present import reverse_rows, rows
from tenet.compute.tables import to_json
from tenet.lab.lab import Lab, down
from tenet.lab.netns import LabError
from tenet.lab.record import Record, running_labs
from tenet.lab.status import lab_processes
from tenet.model.errors import IntentError
from tenet.store import inventory, published
from tenet.store.base import StoreError
from tenet.store.open import open_store
from tenet.store.endpoints import NotAttached, attached, revoke
from tenet.site import Site, SiteError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, help="tenet: tenant virtual networks on the Linux kernel")
lab_app = typer.Typer(no_args_is_help=True, help="Emulated datacenters on this machine")
app.add_typer(lab_app, name="lab")
link_app = typer.Typer(no_args_is_help=True, help="Virtual links between virtual routers")
app.add_typer(link_app, name="link")
app.add_typer(vm_app, name="vm")
app.add_typer(vr_app, name="vr")
app.add_typer(placement_app, name="placement")
app.command("api")(api)
app.add_typer(token_app, name="token")
app.command("trace")(trace_cmd)
app.command("verify")(verify_cmd)
hosts_app = typer.Typer(help="Hosts: declared in the fabric or registered by their agents, up or down")
app.add_typer(hosts_app, name="hosts")
store_app = typer.Typer(no_args_is_help=True, help="The store: etcd access control for a deployment")
app.add_typer(store_app, name="store")
def _lab_name(name: Optional[str]) -> str:
    if name:
        return name
    labs = running_labs()
    if len(labs) == 1:
        return labs[0]
    fail("no lab is up" if not labs else f"several labs are up ({', '.join(labs)}): pass --lab NAME")
    return ""


def _site(lab: Optional[str], store_url: Optional[str]) -> Site:
    """--store URL (a deployment's), else the lab's (--lab NAME, or the one lab that is up)."""
    try:
        return Site.open(lab, store_url, progress=progress)
    except SiteError as e:
        fail(str(e))
    raise AssertionError("unreachable")


@lab_app.command("up")
def lab_up(file: str, timeout: float = typer.Option(60.0, help="seconds to wait for agents")) -> None:
    """Build the datacenter FILE describes; return when every agent has installed its tables."""
    try:
        lab = Lab.load(file, progress=progress)
        lab.up(timeout)
    except (IntentError, LabError, OSError) as e:
        fail(str(e))
    out.print(line("lab ", (lab.name, "bold"), f" is up ({len(lab.plan.nodes)} nodes)"))


@lab_app.command("down")
def lab_down(name: Optional[str] = typer.Argument(None)) -> None:
    """Remove exactly what `up` recorded."""
    try:
        down(Record.load(_lab_name(name)))
    except (LookupError, LabError) as e:
        fail(str(e))
    out.print("down")


@lab_app.command("status")
def lab_status(name: Optional[str] = typer.Argument(None), as_json: bool = typer.Option(False, "--json")) -> None:
    """Processes of a running lab: alive now (and restarts, agents' heartbeats), apart from the
    generation each agent last converged to and which controller leads (the store's word)."""
    try:
        rec = Record.load(_lab_name(name))
    except LookupError as e:
        fail(str(e))
    procs = lab_processes(rec)
    if as_json:
        sys.stdout.write(json.dumps({"lab": rec.name, "state": rec.state, "topology": rec.topology, "processes": procs,
                                     "namespaces": len(rec.namespaces)}, indent=2) + "\n")
        return
    t = Table(title=f"lab {rec.name} ({rec.state}) — {rec.topology}")
    for c in ("role", "node", "pid", "alive now", "restarts", "heartbeat", "generation", "state"):
        t.add_column(c)
    for r in procs:
        alive = _alive_cell(r)
        if r["role"] == "admission":
            shard = f" {r['shard']}/{r['shards']}" if r["shards"] > 1 else ""
            t.add_row(f"  admission{shard}", r["node"], str(r["pid"]), alive, "", "", "",
                      Text("serves " + (", ".join(r["serves"]) or "nothing")))
            continue
        state = ("leads" if r["leads"] else "follows") if r["role"] == "controller" else r.get("state", "")
        if r.get("provisional"):
            state += f" (+{r['provisional']} provisional)"
        restarts = str(r.get("restarts", ""))
        if r.get("last_exit"):
            restarts += f" (last {r['last_exit']}, {r['last_exit_ago']:g}s ago)"
        t.add_row(Text(r["role"]), Text(r["node"]), str(r["pid"]), alive, Text(restarts), _heartbeat_cell(r),
                  str(r.get("generation", "")), Text(state))
    out.print(t)
    out.print(f"{len(rec.namespaces)} namespaces")


def _alive_cell(r: dict) -> Text:
    """yes, or no with why: what /proc shows now and what the supervisor does about it."""
    phase = r.get("phase", "running")
    if r["alive"] and phase == "running":
        return Text("yes")
    why = [] if r["alive"] else [r.get("liveness", "gone")]
    if phase != "running":
        why.append(phase + (f": {r['error']}" if r.get("error") else ""))
    return Text(("yes" if r["alive"] else "no") + f" ({', '.join(why)})", style="" if r["alive"] else "red")


def _heartbeat_cell(r: dict) -> Text:
    hb = r.get("heartbeat")
    if hb is None:
        return Text("")
    if hb["beat"] == "none":
        return Text("none", style="red")
    return Text(f"{hb['age']:.1f}s" + (f" stale (> {hb['bound']:g}s)" if hb["beat"] == "stale" else ""),
                style="red" if hb["beat"] == "stale" else "")


@hosts_app.callback(invoke_without_command=True)
def hosts_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json"),
    lab: Optional[str] = typer.Option(None, "--lab"),
    store_url: Optional[str] = typer.Option(None, "--store"),
) -> None:
    """Every host: where it is, whether its agent is up (its lease renewed), how far its tables are."""
    if ctx.invoked_subcommand:
        return
    try:
        views = inventory.hosts(_site(lab, store_url).store())
    except (IntentError, StoreError) as e:
        fail(str(e))
    if as_json:
        sys.stdout.write(json.dumps([v.to_dict() for v in views], indent=1) + "\n")
        return
    t = Table(title=f"{len(views)} host(s)")
    for c in ("host", "network", "address", "role", "state", "tables", "applied", "agent", "problem"):
        t.add_column(c)
    colour = {"up": "green", "down": "red", "refused": "red", "unregistered": "dim"}
    for v in views:
        t.add_row(*cells(v.name, v.network, v.address, v.role, styled(v.state.value, colour[v.state.value]),
                         v.published or "", v.applied or "", v.agent, v.problem))
    out.print(t)


@hosts_app.command("forget")
def hosts_forget(
    host: str,
    lab: Optional[str] = typer.Option(None, "--lab"),
    store_url: Optional[str] = typer.Option(None, "--store"),
) -> None:
    """Decommission a registered host whose agent is stopped: its chassis record goes."""
    try:
        inventory.forget(_site(lab, store_url).store(), host)
    except StoreError as e:
        fail(str(e))
    out.print(f"{host} forgotten")


@app.command("controllers")
def controllers(
    as_json: bool = typer.Option(False, "--json"),
    lab: Optional[str] = typer.Option(None, "--lab"),
    store_url: Optional[str] = typer.Option(None, "--store"),
) -> None:
    """Which controller replica leads (its Leader record), since when, in which term, and up
    to which store revision its published tables reflect every input."""
    from tenet.controller.status import status

    store = _site(lab, store_url).store()
    try:
        s = status(store)
    except StoreError as e:
        fail(str(e))
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps(s.to_dict(), indent=1) + "\n")
        return
    if s.leader is None:
        out.print("no controller leads (none runs, or the leader's lease just lapsed)")
    else:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.leader.since))
        out.print(f"leader {s.leader.name} (pid {s.leader.pid}) since {since}, term {s.term}", highlight=False)
    out.print(f"published: every input up to revision {s.observed} (store at {s.revision})", highlight=False)


@store_app.command("rbac")
def store_rbac(
    fabric_file: str = typer.Option(..., "--fabric", help="the fabric document (a whole document will do)"),
    host: list[str] = typer.Option([], "--host", help="a host that registers itself without being in the fabric (repeat)"),
    passwords: str = typer.Option(".", "--passwords", help="directory of <user>.password files (lab/pki.py's names)"),
    print_only: bool = typer.Option(False, "--print", help="print the etcdctl commands instead of applying them"),
    store_url: Optional[str] = typer.Option(None, "--store", help="the etcd cluster, as root (auth may still be off)"),
) -> None:
    """etcd RBAC for a deployment: a role and user per process (controller, agent-<host>),
    root, then auth enable last (docs/store.md, docs/deploy.md). What the lab applies."""
    from tenet.model.document import read_document
    from tenet.model.load import load_fabric
    from tenet.model.parts import split
    from tenet.store import rbac
    from tenet.store.etcd import EtcdStore

    try:
        doc = read_document(fabric_file)
        roles = rbac.roles(load_fabric(split(doc)[0] if isinstance(doc, dict) else doc, fabric_file), host)
    except (IntentError, OSError) as e:
        fail(str(e))
    if print_only:
        sys.stdout.write("\n".join(rbac.etcdctl_script(roles, passwords)) + "\n")
        return
    if not store_url:
        fail("give --store URL (the etcd cluster, as root) or --print")
    try:
        secrets = rbac.read_passwords(passwords, rbac.users(roles))
        store = open_store(store_url)
    except (ValueError, StoreError) as e:
        fail(str(e))
    try:
        if not isinstance(store, EtcdStore):
            fail("RBAC is etcd's: --store must be an etcd:// URL")
        rbac.apply(store, roles, secrets)
    except StoreError as e:
        fail(str(e))
    finally:
        store.close()
    out.print(f"{len(roles)} roles, {len(roles) + 1} users (root too); auth enabled", highlight=False)


@app.command("endpoints")
def endpoints(
    as_json: bool = typer.Option(False, "--json"),
    lab: Optional[str] = typer.Option(None, "--lab"),
    store_url: Optional[str] = typer.Option(None, "--store"),
) -> None:
    """TESs that attached themselves: where, as whom, with what the Access-Accept granted."""
    reports = [r.to_dict() for r in attached(_site(lab, store_url).store())]
    if as_json:
        sys.stdout.write(json.dumps(reports, indent=1, sort_keys=True) + "\n")
        return
    t = Table(title=f"{len(reports)} attached TES(s)")
    for c in ("VN", "MAC", "IP", "NVE", "port", "identity", "session", "granted"):
        t.add_column(c)
    for r in sorted(reports, key=lambda r: (r["vn"], r["host"], r["mac"])):
        p = r.get("provisioning") or {}
        granted = ", ".join(f"{k}={v}" for k, v in sorted(p.items()) if v not in (None, "") and k not in ("vn", "vnid"))
        t.add_row(*cells(r["vn"], r["mac"], r.get("ip", ""), r["host"], r["port"], r.get("identity", ""),
                         f"{r['session']:08x}", granted))
    out.print(t)


@app.command("detach")
def detach(
    mac: str,
    why: str = typer.Option("revoked by the operator", help="the reason the TES is told"),
    vn: Optional[str] = typer.Option(None, "--vn", help="only its session in this VN (tenants reuse MACs)"),
    lab: Optional[str] = typer.Option(None, "--lab"),
    store_url: Optional[str] = typer.Option(None, "--store"),
) -> None:
    """End an attached TES's session now: its NVE sends TERMINATE (admin) and detaches it. It
    may attach again if RADIUS still accepts it (change the user first to keep it out)."""
    try:
        hosts = revoke(_site(lab, store_url).store(), mac, why, None if vn is None else {vn})
    except (NotAttached, StoreError) as e:
        fail(str(e))
    out.print(f"asked {', '.join(hosts)} to end the session of {mac.lower().replace('-', ':')}")


@app.command("get")
def get(
    part: str = typer.Option("all", "--part", help="fabric, tenancy or all"),
    fmt: str = typer.Option("yaml", "--format", help="yaml or json"),
    lab: Optional[str] = typer.Option(None, "--lab"),
    store_url: Optional[str] = typer.Option(None, "--store"),
) -> None:
    """The current document, canonical and complete (the fabric with its registered hosts):
    edit it and give it to `tenet apply`."""
    import yaml

    from tenet.model.parts import split
    from tenet.store.intent import read_intent, whole_doc

    if part not in ("fabric", "tenancy", "all") or fmt not in ("yaml", "json"):
        fail("--part is fabric, tenancy or all; --format is yaml or json")
    try:
        doc = whole_doc(read_intent(_site(lab, store_url).store()))
    except (IntentError, StoreError) as e:
        fail(str(e))
    if part != "all":
        doc = split(doc)[0 if part == "fabric" else 1]
    sys.stdout.write(json.dumps(doc, indent=1) + "\n" if fmt == "json" else yaml.safe_dump(doc, sort_keys=False))


@app.command("apply")
def apply_cmd(
    file: str,
    dry_run: bool = typer.Option(False, "--dry-run", help="show the changes, write nothing"),
    wait: bool = typer.Option(False, "--wait", help="return once every host applied it (as ovn-nbctl --wait=hv)"),
    lab: Optional[str] = typer.Option(None, "--lab"),
    store_url: Optional[str] = typer.Option(None, "--store"),
) -> None:
    """Replace the tenancy with FILE's (a whole document or the tenancy alone): validated as a
    whole, shown as a diff, written only if nothing changed since it was read. A lab then
    follows it (its VMs, users and TESs) and the command returns once the agents have; on a
    deployment, --wait does."""
    from tenet.cli.changes import show
    from tenet.model.document import read_document

    site = _site(lab, store_url)
    try:
        plan = site.plan(read_document(file), file)
    except (IntentError, StoreError, OSError) as e:
        fail(str(e))
    show(out, plan)
    if dry_run or plan.empty:
        return
    try:
        rev = site.write(plan)
        hosts = site.wait_applied(rev) if wait else ()
    except (StoreError, LabError) as e:
        fail(str(e))
    out.print(f"applied: revision {rev}" + (f"; live on {len(hosts)} host(s)" if wait else ""), highlight=False)


@link_app.command("set")
def link_set(
    name: str,
    guarantee: Optional[str] = typer.Option(None, help="minimum under contention, e.g. 30mbit (0: none)"),
    limit: Optional[str] = typer.Option(None, help="maximum, e.g. 32mbit (0: the physical capacity)"),
    wait: bool = typer.Option(False, "--wait", help="return once every host applied it (as ovn-nbctl --wait=hv)"),
    lab: Optional[str] = typer.Option(None, "--lab"),
    store_url: Optional[str] = typer.Option(None, "--store"),
) -> None:
    """Re-rate a virtual link live: its HTB class changes in place on the hosts it crosses;
    the virtual routers and every other VN are left alone."""
    from tenet.store.intent import set_link

    if guarantee is None and limit is None:
        fail("nothing to set: give --guarantee and/or --limit")
    site = _site(lab, store_url)
    try:
        intent = set_link(site.store(), name, guarantee, limit)
        if wait:
            site.wait_applied()
    except (IntentError, StoreError) as e:
        fail(str(e))
    vl = next(v for v in intent.vlinks if v.name == name)
    out.print(f"{name}: guarantee {vl.guarantee_bps / 1e6:g} Mbit/s, limit "
              f"{f'{vl.limit_bps / 1e6:g} Mbit/s' if vl.limit_bps else 'the physical capacity'}")


@lab_app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def lab_exec(ctx: typer.Context, node: str, lab: Optional[str] = typer.Option(None, "--lab")) -> None:
    """Run a command in a node's namespace: tenet lab exec NODE -- CMD..."""
    rec = Record.load(_lab_name(lab))
    from tenet.lab.plan import netns_name

    if not ctx.args:
        fail("no command given: tenet lab exec NODE -- CMD...")
    os.execvp("ip", ["ip", "netns", "exec", netns_name(rec.name, node), *ctx.args])


@app.command("tables")
def tables(
    host: str,
    vn: Optional[str] = typer.Option(None, help="only this VN"),
    as_json: bool = typer.Option(False, "--json"),
    lab: Optional[str] = typer.Option(None, "--lab"),
    store_url: Optional[str] = typer.Option(None, "--store"),
) -> None:
    """A host's addressing mode tables, as the seed's FIGS. 7A/7B."""
    ht = published.read(_site(lab, store_url).store(), host)
    if ht is None:
        fail(f"no tables published for host {host!r}")
    vns = [t for t in ht.vns if vn is None or t.vn == vn]
    if vn and not vns:
        fail(f"host {host} does not implement VN {vn!r} (it has: {', '.join(t.vn for t in ht.vns) or 'none'})")
    if as_json:
        sys.stdout.write(to_json(replace(ht, vns=tuple(vns))) + "\n")
        return
    print_tables(host, ht.generation, vns)


def print_tables(host: str, generation: int, vns) -> None:
    for t in vns:
        table = Table(title=f"{host} · {t.vn} (VNI {t.vnid}) · generation {generation}")
        for c in ("Destination", "Function", "Address to use"):
            table.add_column(c)
        for r in rows(t):
            table.add_row(*cells(*r))
        out.print(table)
        rev = Table(title=f"{host} · {t.vn} reverse table")
        rev.add_column("Arrival")
        rev.add_column("Delivered as")
        for r in reverse_rows(t):
            rev.add_row(*cells(*r))
        out.print(rev)
        if t.routes:
            rt = Table(title=f"{host} · {t.vn} routing table (IP-based VN, aggregated)")
            for c in ("Prefix", "Function", "Address to use", "Port"):
                rt.add_column(c)
            for r in t.routes:
                rt.add_row(*cells(r.prefix, r.function, r.address, r.port))
            out.print(rt)


if __name__ == "__main__":
    app()
