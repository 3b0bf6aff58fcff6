"""The 802.1X proxy's guard names every published VM port, there or not, so it is in place
before a port exists and a port appearing changes no rule (nothing to apply before EAPOL-Start)."""
from __future__ import annotations

import pytest

from tenet.agent.proxy8021x import Credentials
from tenet.agent.proxy_main import guard
from tenet.agent.proxy_records import VmRecord

V = VmRecord("02:00:00:00:00:01", "n2", Credentials("vm-v", "s3cret"))
W = VmRecord("02:00:00:00:00:02", "n3", Credentials("vm-w", "w0rd"))
U = VmRecord("02:00:00:00:00:03", "n2", None)


def test_every_published_port_is_guarded_whether_it_exists_or_not():
    text = guard({"tv1": V, "tv2": W, "tv3": U})  # no port here exists on this machine
    assert 'iifname "tv1" ether saddr != 02:00:00:00:00:01 counter drop' in text
    assert 'iifname "tv2" ether saddr != 02:00:00:00:00:02 counter drop' in text
    assert 'iifname "tv3" ether saddr != 02:00:00:00:00:03 counter drop' in text  # MAB: guarded all the same
    # same VN (n2) both ways, then everything else between VM ports dropped
    assert 'iifname . oifname { "tv1" . "tv3", "tv3" . "tv1" } accept' in text
    assert 'iifname { "tv1", "tv2", "tv3" } oifname { "tv1", "tv2", "tv3" } counter drop' in text


def test_the_guard_depends_on_the_records_only_and_in_no_order():
    assert guard({"tv1": V, "tv2": W}) == guard({"tv2": W, "tv1": V})
    assert guard({"tv1": V, "tv3": U}) != guard({"tv1": V, "tv3": VmRecord(U.mac, "n3", None)})  # a VN moved
    assert guard({"tv1": V}) != guard({"tv1": VmRecord("02:00:00:00:00:09", "n2", V.creds)})  # a MAC changed


def test_no_vm_no_rule():
    text = guard({})
    assert "iifname" not in text and "policy accept" in text


def test_nftables_accepts_the_guard():
    """Checked by the kernel's nftables in dry-run mode: nothing is committed."""
    nftables = pytest.importorskip("nftables")
    nft = nftables.Nftables()
    nft.set_dry_run(True)
    rc, _, err = nft.cmd(guard({"tv1": V, "tv2": W, "tv3": U}))
    assert rc == 0, err
