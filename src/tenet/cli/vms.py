"""`tenet vm …` and `tenet vr …`: the hypervisor's primitives (hypervisor/manager.py) on a
lab's VMs and virtual routers. Both call the same component; neither builds store keys."""
from __future__ import annotations

from typing import Optional

import typer

from tenet.cli.console import console, fail
from tenet.hypervisor.errors import HypervisorError
from tenet.hypervisor.manager import Hypervisor
from tenet.hypervisor.migration import Report
from tenet.model.errors import IntentError
from tenet.model.tenancy import Intent
from tenet.site import Site, SiteError
from tenet.store.base import StoreError

vm_app = typer.Typer(no_args_is_help=True, help="VMs: create, destroy, start, stop, pause, resume, migrate, copy")
vr_app = typer.Typer(no_args_is_help=True, help="Virtual routers: the same primitives (move is a live migration)")
out = console()
err = console(stderr=True)
LAB = typer.Option(None, "--lab", help="the lab (default: the one that is up)")


def hypervisor(lab: Optional[str]) -> Hypervisor:
    """The lab's hypervisor, as the CLI drives it: it waits until agents applied each change."""
    try:
        return Site.open(lab, progress=lambda m: err.print(m, highlight=False)).hypervisor()
    except SiteError as e:
        fail(str(e))
    raise AssertionError("unreachable")


def _run(lab: Optional[str], op: str, name: str, *args, show: str | None = None, **kw) -> None:
    try:
        result = getattr(hypervisor(lab), op)(name, *args, **kw)
    except (IntentError, HypervisorError, StoreError) as e:
        fail(str(e))
    shown = name if show is None else show
    if not shown:
        out.print(f"{name}: destroyed")
        return
    intent = result if isinstance(result, Intent) else hypervisor(lab).intent()
    vm = next(v for v in intent.vms if v.name == shown)
    addrs = ", ".join(" ".join(str(x) for x in (n.network, n.ip or "", *n.ip6, n.mac) if x) for n in vm.nics)
    out.print(f"{shown}: {vm.state.value} on {vm.host} ({addrs})", highlight=False)


def report_line(r: Report) -> str:
    """One migration, as `tenet vm migrate` and `tenet placement plan --apply` print it."""
    return (f"{r.vm}: on {r.destination} (from {r.source}); pre-staged in {r.prestage_s * 1e3:.0f} ms, "
            f"cut over in {r.cutover_s * 1e3:.1f} ms, committed in {r.commit_s * 1e3:.0f} ms")


def nic_option(text: str) -> dict:
    """`VN=10.1.0.5/24,fd00:1::5/64` -> a NIC's keys (an address with a colon is IPv6)."""
    vn, _, addresses = text.partition("=")
    spec: dict = {"network": vn}
    for a in filter(None, addresses.split(",")):
        if ":" in a:
            spec.setdefault("ip6", []).append(a)
        elif "ip" in spec:
            raise typer.BadParameter(f"{text}: a NIC has one IPv4 address")
        else:
            spec["ip"] = a
    return spec


NICS = typer.Option([], "--nic", help="VN or VN=ADDRESS/PREFIX[,IPV6/PREFIX…], once per NIC")

for app, what in ((vm_app, "VM"), (vr_app, "VR")):
    router = what == "VR"

    @app.command("create", help=f"Create a running {what} with NICs on VNs (validated before anything is built).")
    def create(name: str, host: str = typer.Option(..., "--host", help="the hypervisor it runs on"),
               tenant: str = typer.Option("default", "--tenant", help="its tenant (a VR's own)"),
               nic: list[str] = NICS, lab: Optional[str] = LAB, router: bool = typer.Option(router, hidden=True)) -> None:
        _run(lab, "create", name, host, [nic_option(n) for n in nic], tenant=tenant, router=router)

    @app.command("destroy", help=f"Remove a {what} from the intent, then its namespace"
                 + (" (and its virtual links; its peers' later NICs are renumbered in place)." if router else "."))
    def destroy(name: str, lab: Optional[str] = LAB) -> None:
        _run(lab, "destroy", name, show="")

    @app.command("copy", help=f"Clone a {what}: the same VNs, new MACs, the lowest free addresses"
                 + ("; not its links." if router else "."))
    def copy(name: str, to_name: str = typer.Option(..., "--as", help="the copy's name"),
             host: Optional[str] = typer.Option(None, "--to", help="its hypervisor (default: the original's)"),
             lab: Optional[str] = LAB) -> None:
        _run(lab, "copy", name, to_name, host, show=to_name)

    @app.command("pause", help=f"Freeze a {what}'s processes (cgroup freezer); its NVE stops forwarding for it. "
                 "Everything else stays, so resume is instant.")
    def pause(name: str, lab: Optional[str] = LAB) -> None:
        _run(lab, "pause", name)

    @app.command("resume", help=f"Thaw a paused {what}.")
    def resume(name: str, lab: Optional[str] = LAB) -> None:
        _run(lab, "resume", name)

    @app.command("stop", help=f"Power a {what} off: no forwarding entries, NICs down.")
    def stop(name: str, lab: Optional[str] = LAB) -> None:
        _run(lab, "stop", name)

    @app.command("start", help=f"Power a stopped {what} on: NICs up, forwarding entries back.")
    def start(name: str, lab: Optional[str] = LAB) -> None:
        _run(lab, "start", name)

    @app.command("migrate", help=f"Live-migrate a {what} to another host: pre-stage the destination, cut over, announce, "
                      "commit; its addresses and everything inside it stay.")
    def migrate(name: str, to: str = typer.Option(..., "--to", help="the host to move it to"),
                naive: bool = typer.Option(False, "--naive", help="no pre-staging: detach, then attach (a baseline)"),
                lab: Optional[str] = LAB) -> None:
        try:
            r = hypervisor(lab).migrate(name, to, live=not naive)
        except (IntentError, HypervisorError, StoreError) as e:
            fail(str(e))
        out.print(report_line(r), highlight=False)

    if router:
        app.command("move", help="The same as migrate (its name since VRs first moved).")(migrate)
