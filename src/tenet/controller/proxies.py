"""What each 802.1X proxy host needs of the intent, published under that host's own prefix.

A proxy host vouches for its VMs toward the access switch with their identities and
passwords; it gets exactly those of its own VMs (store/records.py ProxyPorts), never the
intent, which holds every VM's password.
"""
from __future__ import annotations

from tenet.model.tenancy import Intent, Join, port_name
from tenet.store import keys
from tenet.store.base import Put, Store
from tenet.store.records import ProxyPort, ProxyPorts


def proxy_ports(intent: Intent, host: str) -> ProxyPorts:
    """The host's VM ports that join through the switch (802.1X or MAB), with their
    credentials; a VM being live-migrated here is the host's already (pre-staged: when its
    port arrives the host authenticates it at once, with no store read)."""
    out = []
    for vm in intent.vms:
        for i, nic in enumerate(vm.nics):
            if host in (vm.host, vm.migrating_to) and nic.join in (Join.DOT1X, Join.MAB):
                mab = nic.join is Join.MAB
                out.append(ProxyPort(port=port_name(vm.name, i), mac=nic.mac, vn=nic.network, mab=mab,
                                     identity="" if mab else nic.identity, password="" if mab else nic.password,
                                     method="md5" if mab else nic.method.value))
    return ProxyPorts(tuple(sorted(out, key=lambda p: p.port)))


def proxy_writes(store: Store, intent: Intent) -> list[Put]:
    """A write for each proxy host whose published ports differ from the intent's."""
    writes = []
    for x in intent.fabric.proxies:
        ports = proxy_ports(intent, x.name)
        kv = store.get(keys.proxy(x.name))
        if kv is None or kv.value != ports.to_json():
            writes.append(Put(keys.proxy(x.name), ports.to_json()))
    return writes
