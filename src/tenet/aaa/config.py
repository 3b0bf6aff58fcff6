"""A complete private FreeRADIUS 3.2 configuration, rendered from the lab's users (pure).

Only what tenet needs: one auth listener, clients from the underlay, the `files` module for
users, EAP with MD5, and PAP. Runs as root inside a lab namespace; every path is inside the
lab's own directory, so nothing of the system's FreeRADIUS is read or touched.
"""
from __future__ import annotations

from collections.abc import Sequence

from tenet.model.rate import parse_rate
from tenet.model.tenancy import AaaUser


def _users(users: Sequence[AaaUser]) -> str:
    out = []
    for u in users:
        reply = [
            "Tunnel-Type := VLAN",
            "Tunnel-Medium-Type := IEEE-802",
            f'Tunnel-Private-Group-Id := "{u.network}"',
        ]
        if u.limit_up:
            reply.append(f"WISPr-Bandwidth-Max-Up := {parse_rate(u.limit_up)}")
        if u.limit_down:
            reply.append(f"WISPr-Bandwidth-Max-Down := {parse_rate(u.limit_down)}")
        if u.session_timeout:
            reply.append(f"Session-Timeout := {u.session_timeout}")
        if u.cos is not None:
            reply.append(f"User-Priority-Table := 0x{bytes([u.cos] * 8).hex()}")
        if u.ip:
            reply += [f"Framed-IP-Address := {u.ip.ip}", f"Framed-IP-Netmask := {u.ip.netmask}"]
        password = u.password.replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'"{u.name}" Cleartext-Password := "{password}"\n\t' + ",\n\t".join(reply) + "\n")
    return "\n".join(out)


# post-auth signs every reply, PAP (MAB) ones too: our clients require Message-Authenticator
# (the BlastRADIUS countermeasure) and FreeRADIUS 3.2.1 adds it by itself only to EAP replies.
def render(users: Sequence[AaaUser], secret: str, listen_ip: str, port: int, clients: Sequence[str], run_dir: str) -> dict[str, str]:
    """{relative path: content} of the config directory."""
    client_blocks = "\n".join(
        f"client c{i} {{\n\tipaddr = {c}\n\tsecret = {secret}\n\trequire_message_authenticator = yes\n}}" for i, c in enumerate(clients)
    )
    radiusd = f"""
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {run_dir}
raddbdir = {run_dir}
radacctdir = {run_dir}
name = freeradius
confdir = {run_dir}
modconfdir = {run_dir}
certdir = {run_dir}
cadir = {run_dir}
run_dir = {run_dir}
db_dir = {run_dir}
libdir = /usr/lib/freeradius
pidfile = {run_dir}/freeradius.pid
max_request_time = 30
cleanup_delay = 2
max_requests = 65536
hostname_lookups = no
log {{
\tdestination = stdout
\tcolourise = no
\tstripped_names = no
\tauth = yes
\tauth_badpass = no
\tauth_goodpass = no
}}
security {{
\tallow_core_dumps = no
\tmax_attributes = 200
\treject_delay = 0
\tstatus_server = yes
}}
thread pool {{
\tstart_servers = 4
\tmax_servers = 16
\tmin_spare_servers = 2
\tmax_spare_servers = 8
\tmax_requests_per_server = 0
}}
{client_blocks}
modules {{
\tfiles {{
\t\tfilename = {run_dir}/users
\t}}
\tpap {{
\t\tnormalise = yes
\t}}
\teap {{
\t\tdefault_eap_type = md5
\t\ttimer_expire = 60
\t\tignore_unknown_eap_types = no
\t\tcisco_accounting_username_bug = no
\t\tmax_sessions = 65536
\t\tmd5 {{
\t\t}}
\t}}
}}
server default {{
\tlisten {{
\t\ttype = auth
\t\tipaddr = {listen_ip}
\t\tport = {port}
\t}}
\tauthorize {{
\t\tfiles
\t\teap {{
\t\t\tok = return
\t\t}}
\t\tpap
\t}}
\tauthenticate {{
\t\teap
\t\tAuth-Type PAP {{
\t\t\tpap
\t\t}}
\t}}
\tpost-auth {{
\t\tupdate reply {{
\t\t\tMessage-Authenticator := 0x00
\t\t}}
\t\tPost-Auth-Type REJECT {{
\t\t\tupdate reply {{
\t\t\t\tMessage-Authenticator := 0x00
\t\t\t}}
\t\t\teap
\t\t}}
\t}}
}}
"""
    return {
        "radiusd.conf": radiusd.lstrip(),
        "users": _users(users),
        "dictionary": "$INCLUDE /usr/share/freeradius/dictionary\n",
    }
