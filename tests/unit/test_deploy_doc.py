"""docs/deploy.md and the lab must not drift apart: the blocks the page marks `checked:` are
compared with what the lab's own code makes (etcd flags, certificates, RBAC, store URLs, the
agent's file), and every command and lab function the page names must exist. Each test fails
when either side changes."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from ipaddress import IPv4Interface
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import click
import pytest
import typer
import yaml
from typer.testing import CliRunner

from tenet.agent.config import parse_config
from tenet.cli.main import app
from tenet.lab import etcd, management, pki, plan
from tenet.lab.lab import Lab
from tenet.lab.management import Station
from tenet.lab.pki import Pki
from tenet.model.load import load_fabric, load_intent, load_tenancy
from tenet.model.tenancy import port_name
from tenet.store import intent, rbac
from tenet.store.intent import registered
from tenet.store.records import Chassis
from tenet.agent import config

ROOT = Path(__file__).parents[2]
TEXT = (ROOT / "docs" / "deploy.md").read_text()
CREDENTIALS = "/run/credentials/tenet-controller.service"


def checked() -> dict[str, str]:
    found = re.findall(r"<!-- checked: ([\w-]+) -->\n```\w*\n(.*?)```", TEXT, re.S)
    return dict(found)


BLOCKS = checked()


def block(name: str) -> str:
    assert name in BLOCKS, f"docs/deploy.md has no block marked checked: {name}"
    return BLOCKS[name]


def machines(role: str) -> list[tuple[str, ...]]:
    """Rows of the page's machine table with that role: (name, management IP, uplink, network, address)."""
    out = []
    for m in re.finditer(rf"^\| (\w+) \| {role} \| ([\d.]+) \| (?:`(\w+)` on (\w+): ([\d./]+)|—) \|$", TEXT, re.M):
        out.append(m.groups())
    return out


def members() -> list[Station]:
    rows = machines("etcd member")
    assert len(rows) == 3
    return [Station(name, "etcd", "", IPv4Interface(f"{ip}/24")) for name, ip, *_ in rows]


def hypervisors() -> list[tuple[str, ...]]:
    rows = machines("hypervisor")
    assert rows, "the machine table lists no hypervisor"
    return rows


def fabric_doc() -> dict:
    return yaml.safe_load(block("fabric"))


def quoted_value(text: str, name: str) -> str:
    """`NAME="value"` in a shell block."""
    m = re.search(rf'^{name}="([^"]*)"$', text, re.M)
    assert m, f"no {name}=\"...\" line"
    return m.group(1)


def test_member_variables_are_the_labs_flags():
    """/etc/default/etcd's ETCD_* are etcd.member_argv's flags for the same member, one by one."""
    if shutil.which("etcd") is None:
        pytest.skip("member_argv needs the etcd binary (scripts/setup.sh)")
    ms = members()
    argv = etcd.member_argv(ms[0], ms, Pki(Path("/etc/etcd/pki")), Path("/var/lib/etcd"), f"tenet-{fabric_doc()['name']}")[1:]
    expected, i = [], 0
    while i < len(argv):
        flag = argv[i]
        assert flag.startswith("--"), argv
        has_value = i + 1 < len(argv) and not argv[i + 1].startswith("--")
        expected.append(f"ETCD_{flag[2:].upper().replace('-', '_')}={argv[i + 1] if has_value else 'true'}")
        i += 2 if has_value else 1
    lines = [x for x in block("etcd-env").splitlines() if x and not x.startswith("#")]
    assert lines == expected
    assert block("etcd-env").startswith(f"# /etc/default/etcd on {ms[0].name} ")


def _describe(cert: Path) -> str:
    """What a certificate says that matters: subject, issuer, SAN, key usage, key type."""
    r = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-subject", "-issuer", "-nameopt", "RFC2253",
                        "-ext", "subjectAltName,extendedKeyUsage"], capture_output=True, text=True, check=True)
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"], capture_output=True, text=True, check=True).stdout
    keys = [x.strip() for x in text.splitlines() if "Public Key Algorithm" in x or "ASN1 OID" in x]
    return r.stdout + "\n".join(keys)


def test_pki_script_makes_what_pki_issue_makes(tmp_path):
    """The page's openssl script, run, makes certificates like pki.issue's: same subjects,
    SANs, key usages and curve, keys and passwords 0600; its users are the RBAC users."""
    if shutil.which("openssl") is None or shutil.which("bash") is None:
        pytest.skip("needs openssl and bash")
    script = block("pki")
    doc_dir, lab_dir = tmp_path / "doc", tmp_path / "lab"
    assert "/root/tenet-pki" in script
    subprocess.run(["bash", "-euc", script.replace("/root/tenet-pki", str(doc_dir))], check=True, capture_output=True)
    named = dict(m.split("=") for m in quoted_value(script, "MEMBERS").split())
    assert named == {m.name: str(m.ip.ip) for m in members()}
    users = quoted_value(script, "USERS").split()
    roles = rbac.roles(load_fabric(fabric_doc()), [h[0] for h in hypervisors()])
    assert users == list(rbac.users(roles))
    pki.issue(Pki(lab_dir), named, users)
    pki.passwords(Pki(lab_dir), users)
    for name in ["ca", *named, *users]:
        assert _describe(doc_dir / f"{name}.pem") == _describe(lab_dir / f"{name}.pem"), name
        assert (doc_dir / f"{name}-key.pem").stat().st_mode & 0o777 == 0o600, name
    for d in (doc_dir, lab_dir):
        subprocess.run(["openssl", "verify", "-CAfile", str(d / "ca.pem"), *(str(d / f"{n}.pem") for n in [*named, *users])],
                       check=True, capture_output=True)
    for u in users:
        p = doc_dir / f"{u}.password"
        assert p.stat().st_mode & 0o777 == 0o600 and p.read_text().strip(), u
    leftovers = {p.name for p in doc_dir.iterdir()} - {f"{n}{s}" for n in ["ca", *named, *users] for s in (".pem", "-key.pem")} \
        - {f"{u}.password" for u in users}
    assert not leftovers


def test_rbac_print_is_what_the_command_prints(tmp_path, monkeypatch):
    """The etcdctl script on the page is what `tenet store rbac --print` prints for fabric.yaml
    and the page's hypervisors (so it changes when rbac.roles does)."""
    command, *script = block("rbac-script").splitlines()
    argv = shlex.split(command)
    assert argv[:4] == ["$", "tenet", "store", "rbac"]
    hosts = [argv[i + 1] for i, a in enumerate(argv) if a == "--host"]
    assert hosts == [h[0] for h in hypervisors()]
    (tmp_path / "fabric.yaml").write_text(block("fabric"))
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, argv[2:])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == script


def test_the_script_grants_what_apply_grants():
    """Each role's grant lines in the script are that role's grants, in apply's order."""
    rs = rbac.roles(load_fabric(fabric_doc()), [h[0] for h in hypervisors()])
    lines = rbac.etcdctl_script(rs, "/p")
    for r in rs:
        grants = []
        for line in lines:
            w = shlex.split(line)
            if w[1:3] == ["role", "grant-permission"] and w[3] == r.name:
                grants.append(rbac.Grant(w[5], rbac.Access(w[4].upper()), prefix="--prefix" in w))
        assert tuple(grants) == r.grants
    assert [shlex.split(x)[3] for x in lines if x.startswith("etcdctl user add")] == list(rbac.users(rs))
    assert lines[-1] == "etcdctl auth enable"


def test_store_urls_are_the_labs():
    """root's, the controller's (the unit's credential paths) and agent-hv1's URLs are what
    etcd.client_url makes for those users, as Lab.store_url_for does."""
    ms = members()
    assert quoted_value(block("root-url"), "S") == etcd.client_url(ms, Pki(Path("/root/tenet-pki")), rbac.ROOT)
    env = block("controller-env")
    assert env.startswith("# /etc/tenet/controller.env\n")
    assert quoted_value(env, "TENET_STORE") == etcd.client_url(ms, Pki(Path(CREDENTIALS)), rbac.CONTROLLER)
    host, _, uplink, network, _ = hypervisors()[0]
    c = parse_config(tomllib.loads(block("agent-toml")), "agent.toml")
    assert c.store == etcd.client_url(ms, Pki(Path("/etc/tenet/pki")), rbac.agent_user(host))
    assert (c.host, c.uplink, c.network) == (host, uplink, network)
    assert network in fabric_doc()["underlay"]["networks"]


def _unit(name: str) -> list[tuple[str, str]]:
    text = (ROOT / "contrib" / "systemd" / name).read_text()
    return [tuple(x.split("=", 1)) for x in text.splitlines() if "=" in x and not x.startswith("#")]  # type: ignore[misc]


def test_controller_unit_loads_the_files_its_url_names():
    """Every file of the controller's URL is a credential of its unit, loaded from where step 3
    copies it, and the unit starts the controller with that URL and a name."""
    unit = _unit("tenet-controller.service")
    creds = dict(v.split(":", 1) for k, v in unit if k == "LoadCredential")
    query = parse_qs(urlsplit(quoted_value(block("controller-env"), "TENET_STORE")).query)
    for option in ("cacert", "cert", "key", "password-file"):
        path = Path(query[option][0])
        assert str(path.parent) == CREDENTIALS, option
        assert creds.get(path.name) == f"/etc/tenet/pki/{path.name}", option
    assert ("EnvironmentFile", "/etc/tenet/controller.env") in unit
    start = dict(unit)["ExecStart"]
    assert shlex.split(start)[1:] == ["--store", "${TENET_STORE}", "--name", "%H"]
    assert "tenet-controller --store ${TENET_STORE} --name %H" in TEXT
    assert shlex.split(dict(_unit("tenet-agent.service"))["ExecStart"])[1:] == ["--config", "/etc/tenet/agent.toml"]
    assert block("agent-toml").startswith("# /etc/tenet/agent.toml\n")


def test_fabric_installs_alone_and_the_tenancy_loads_once_hosts_registered():
    f = fabric_doc()
    assert not load_intent(f).vms  # a first apply of the fabric alone
    chassis = tuple(Chassis(host=h, network=net, address=addr, uplink=up) for h, _, up, net, addr in hypervisors())
    composed, problems = registered(f, chassis)
    assert not problems
    tenancy = load_tenancy(yaml.safe_load(block("tenancy")), load_fabric(composed), f["name"])
    assert {vm.host for vm in tenancy.vms} == {h[0] for h in hypervisors()}


def test_vm_ports_are_port_names():
    """The port names, MACs and addresses the page wires are the tenancy's."""
    vms = {vm.name: vm for vm in load_tenancy(yaml.safe_load(block("tenancy")), load_fabric(registered(
        fabric_doc(), tuple(Chassis(host=h, network=n, address=a, uplink=u) for h, _, u, n, a in hypervisors()))[0]), "dc1").vms}
    web1 = block("vm-web1")
    name = re.search(r"^ip netns add (\w+)$", web1, re.M).group(1)
    nic = vms[name].nics[0]
    assert re.findall(r"\btp[0-9a-f]{10}\b", web1) == [port_name(name, 0)] * 2
    assert f"address {nic.mac} " in web1 and f"addr add {nic.ip} " in web1
    assert f"<target dev='{port_name(name, 0)}'/><mac address='{nic.mac}'/>" in TEXT
    others = re.findall(r"(\w+) on (\w+): `(tp[0-9a-f]{10})`,\s+([0-9a-f:]{17}),\s+(\d+\.\d+\.\d+\.\d+)", TEXT)
    assert len(others) == len(vms) - 1
    for vm, host, port, mac, ip in others:
        v = vms[vm]
        assert (v.host, port, v.nics[0].mac, str(v.nics[0].ip.ip)) == (host, port_name(vm, 0), mac, ip)


def _commands() -> list[list[str]]:
    """Every `tenet ...` command line of the page: in sh blocks and in inline code."""
    lines = []
    for body in re.findall(r"```sh\n(.*?)```", TEXT, re.S):
        lines += body.replace("\\\n", " ").splitlines()
    lines += re.findall(r"`(tenet [^`]+)`", TEXT)
    out = []
    for line in lines:
        line = line.removeprefix("$ ").strip()
        if not re.match(r"(/opt/tenet/bin/)?tenet ", line):
            continue
        out.append(shlex.split(line.split("  #")[0].split(" > ")[0].rstrip(" >"), comments=True))
    return out


def test_every_tenet_command_exists_with_its_options():
    group = typer.main.get_command(app)
    commands = _commands()
    assert len(commands) > 10
    for argv in commands:
        cmd, i = group, 1
        while isinstance(cmd, click.Group) and i < len(argv) and argv[i] in cmd.commands:
            cmd, i = cmd.commands[argv[i]], i + 1
        assert not isinstance(cmd, click.Group) or cmd.invoke_without_command, f"{' '.join(argv)}: no such command"
        options = {o for p in cmd.params for o in p.opts}
        for a in argv[i:]:
            if a.startswith("--"):
                assert a.split("=")[0] in options, f"{' '.join(argv)}: {a} is no option of {cmd.name}"


def test_named_lab_functions_exist():
    scopes = {"Lab": Lab, "pki": pki, "etcd": etcd, "rbac": rbac, "management": management, "plan": plan,
              "config": config}
    named = set(re.findall(r"`((?:Lab|pki|etcd|rbac|management|plan|config)(?:\.\w+)+)[`(]", TEXT))
    assert len(named) > 15
    for name in named:
        head, *rest = name.split(".")
        obj = scopes[head]
        for part in rest:
            assert hasattr(obj, part), f"docs/deploy.md names {name}, which does not exist"
            obj = getattr(obj, part)
    assert hasattr(intent, "write_intent") and "`write_intent`" in TEXT
