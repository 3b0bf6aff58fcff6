"""The agent's configuration file: what an operator writes on each host (docs/agent.md)."""
import pytest

from tenet.agent.config import AgentConfig, ConfigError, load_config, parse_config, render
from tenet.store.records import HostRole

GOOD = """
host = "host1"
store = "etcd://10.0.0.1:2379,10.0.0.2:2379"
uplink = "eth1"
network = "pn1"
role = "access-switch"
mab = true

[radius]
server = "10.0.0.5:1812"
secret_file = "/etc/tenet/radius.secret"
"""


def test_a_full_file(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text(GOOD)
    c = load_config(path)
    assert (c.host, c.uplink, c.network, c.role, c.mab, c.radius) == ("host1", "eth1", "pn1", HostRole.ACCESS_SWITCH, True,
                                                                      "10.0.0.5:1812")
    assert (c.lease_ttl, c.admission_shards, c.udp_port, c.fast_lane) == (5, 0, 6767, True)  # the documented defaults
    assert parse_config(__import__("tomllib").loads(render(c))) == c  # what the lab writes reads back the same


def test_every_problem_is_named_at_once(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text('host = "h 1"\nuplink = "an-interface-name-too-long"\nrole = "spine"\nlease_ttl = 1\n'
                    'colour = "red"\nfast_lane = "yes"\n[radius]\nserver = "nowhere"\n')
    with pytest.raises(ConfigError) as e:
        load_config(path)
    text = str(e.value)
    for fragment in ("colour: unknown key", "host: a name like", "store: required", "uplink: an interface name",
                     "network: required", "role: one of hypervisor", "lease_ttl: an integer 2..300",
                     "radius.server: IP:PORT", "radius.secret_file: a file holding", "fast_lane: true or false"):
        assert fragment in text, fragment
    assert str(path) in text


def test_unreadable_or_not_toml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("host = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_minimal_file_is_a_hypervisor():
    c = parse_config({"host": "h1", "store": "sqlite:///tmp/s.db", "uplink": "up0", "network": "pn1"})
    assert c == AgentConfig(host="h1", store="sqlite:///tmp/s.db", uplink="up0", network="pn1")


def test_the_fast_lane_can_be_turned_off_and_reads_back():
    c = parse_config({"host": "h1", "store": "sqlite:///tmp/s.db", "uplink": "up0", "network": "pn1", "fast_lane": False})
    assert not c.fast_lane and parse_config(__import__("tomllib").loads(render(c))) == c


def test_a_table_where_a_word_belongs_and_bytes_that_are_not_text_are_config_errors(tmp_path):
    """bench/fuzz.py: `[role]` (a table) raised TypeError (unhashable dict); a file that is not
    UTF-8 raised UnicodeDecodeError."""
    from tenet.agent.config import config_of

    with pytest.raises(ConfigError, match="role: one of"):
        config_of('host = "h1"\nstore = "sqlite:///s.db"\nuplink = "eth1"\nnetwork = "pn1"\n[role]\na = 1\n')
    f = tmp_path / "agent.toml"
    f.write_bytes(b'host = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(f)


BASE = 'host = "h1"\nstore = "sqlite:///s.db"\nuplink = "eth1"\nnetwork = "pn1"\n'


def test_several_radius_servers_primary_first_with_their_timers():
    from tenet.aaa.failover import RadiusPolicy
    from tenet.agent.config import config_of

    c = config_of(BASE + '[radius]\nservers = ["198.18.0.5:1812", "198.18.0.6:1812"]\nsecret_file = "/s"\n'
                  "timeout = 1\nretries = 2\ndead_time = 30\nstatus_server = false\n")
    assert c.radius == "198.18.0.5:1812,198.18.0.6:1812"
    assert c.radius_policy == RadiusPolicy(timeout=1.0, retries=2, dead_time=30.0, status_server=False)
    assert parse_config(__import__("tomllib").loads(render(c))) == c
    one = config_of(BASE + '[radius]\nserver = "198.18.0.5:1812"\nsecret_file = "/s"\n')  # the old form still reads
    assert (one.radius, one.radius_policy) == ("198.18.0.5:1812", RadiusPolicy())
    assert 'server = "198.18.0.5:1812"' in render(one) and parse_config(__import__("tomllib").loads(render(one))) == one


@pytest.mark.parametrize("radius, fragment", [
    ('server = "198.18.0.5:1812"\nservers = ["198.18.0.6:1812"]', "radius: give `servers` (a list, primary first) or `server`, not both"),
    ("servers = []", "radius.servers: a list of IP:PORT strings, primary first, not []"),
    ('servers = "198.18.0.5:1812"', "radius.servers: a list of IP:PORT strings"),
    ('servers = ["198.18.0.5:1812", "nowhere"]', "radius.servers: IP:PORT, not 'nowhere'"),
    ('servers = ["198.18.0.5:1812", "198.18.0.5:1812"]', "radius.servers: RADIUS server 198.18.0.5:1812 is named twice"),
    ('servers = ["999.18.0.5:1812"]', "radius.servers: RADIUS server '999.18.0.5:1812': '999.18.0.5' is not an IPv4"),
    ('server = "198.18.0.5:1812"\ntimeout = 0', "radius.timeout: seconds from 0.1 to 60, not 0"),
    ('server = "198.18.0.5:1812"\nretries = -1', "radius.retries: an integer 0..10"),
    ('server = "198.18.0.5:1812"\ndead_time = "1m"', "radius.dead_time: seconds from 0 to 3600, not '1m'"),
    ('server = "198.18.0.5:1812"\nstatus_server = "yes"', "radius.status_server: true or false"),
    ('server = "198.18.0.5:1812"\ndeadtime = 3', "radius.deadtime: unknown key"),
])
def test_bad_radius_sections_name_the_key(radius, fragment):
    from tenet.agent.config import config_of

    with pytest.raises(ConfigError) as e:
        config_of(BASE + "[radius]\n" + radius + '\nsecret_file = "/s"\n')
    assert fragment in str(e.value)
