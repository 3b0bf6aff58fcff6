"""The shards' command codec and the MAC -> shard map (the kernel side is tests/lab/test_admission_shards.py)."""
from __future__ import annotations

import pytest

from tenet.aaa.provisioning import Provisioning
from tenet.agent.shards import Command, Peers, decode, encode
from tenet.ethernet import shard_of


def test_commands_round_trip_with_their_token():
    for cmd in (Command("revoke", "02:00:00:00:00:01", "audit"), Command("revoke", "02:00:00:00:00:01", "x", vn="n2"),
                Command("disconnect", "02:00:00:00:00:02"),
                Command("coa", "02:00:00:00:00:03", provisioning=Provisioning(rate_down_bps=5_000_000))):
        assert decode(encode(cmd, 7)) == (cmd, 7)


@pytest.mark.parametrize("data, cause", [
    (b"not json", "malformed shard command"),
    (b'{"mac": "02:00:00:00:00:01"}', "malformed shard command"),
    (b'{"kind": "reboot", "mac": "02:00:00:00:00:01"}', "kind 'reboot'"),
    (b'{"kind": "revoke", "mac": "02:00:00:00:00:01", "vn": 7}', "malformed shard command"),
    (b'{"kind": "coa", "mac": "x", "provisioning": {"speed": 1}}', "malformed shard command"),
])
def test_malformed_commands_name_the_cause(data, cause):
    with pytest.raises(ValueError, match=cause):
        decode(data)


def test_shard_is_the_low_16_bits_of_the_mac_modulo_the_count():
    assert shard_of("02:00:00:00:00:10", 2) == 0 and shard_of("02:00:00:00:00:11", 2) == 1
    assert shard_of("02:00:00:00:01:00", 3) == 256 % 3
    assert {shard_of(f"02:00:00:00:00:{i:02x}", 4) for i in range(16)} == {0, 1, 2, 3}


def test_a_single_shard_asks_nobody():
    assert Peers("h1", 1).ask(Command("revoke", "02:00:00:00:00:01")) is False
