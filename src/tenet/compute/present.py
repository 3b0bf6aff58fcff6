"""The seed's three columns (FIGS. 7A/7B): destination, function, address to use. Pure."""
from __future__ import annotations

from tenet.compute.tables import BROADCAST, Function, VnTable

FUNCTION_TEXT = {
    Function.NO_MODIFICATION: "No modification",
    Function.TRANSLATE_L2: "Translate L2 address",
    Function.ENCAPSULATE: "Encapsulate (VXLAN)",
    Function.MULTICAST: "IP multicast encapsulate",
    Function.REPLICATE: "Head-end replication",
}


def rows(table: VnTable) -> list[tuple[str, str, str]]:
    out = []
    for e in table.entries:
        if e.destination == BROADCAST:
            address = e.address if e.function is Function.MULTICAST else (e.address or "(no other host)")
            out.append(("Broadcast", FUNCTION_TEXT[e.function], address))
            continue
        dest = f"Unicast {e.vm} {e.destination}"
        if e.function is Function.NO_MODIFICATION:
            address = f"{e.vm} {e.address}"
        elif e.function is Function.TRANSLATE_L2:
            address = f"{e.vm}' {e.address}"
        else:
            address = f"VNI {table.vnid} to {e.address}"
        out.append((dest, FUNCTION_TEXT[e.function], address))
    return out


def reverse_rows(table: VnTable) -> list[tuple[str, str]]:
    """Arrival -> internal destination, as the agent applies it on the uplink."""
    out = []
    for r in table.reverse:
        if r.internal:
            role = "to local" if r.local else "from peer"
            out.append((f"{r.arrival} ({role})", f"{table.vn} {r.internal}"))
        else:
            out.append((r.arrival, table.vn))
    return out
