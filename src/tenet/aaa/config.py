"""A complete private FreeRADIUS 3.2 configuration, rendered from the lab's users (pure).

Only what tenet needs: an auth and an accounting listener, clients from the underlay, users in
`files`, EAP with MD5, TLS, PEAP (MSCHAPv2 inside) and TTLS (PAP or MSCHAPv2 inside) when the lab
gives it certificates (lab/eap_pki.py), PAP for MAB, and accounting to a `detail` file. Runs as
root inside a lab namespace; every path is inside the lab's own directory, so nothing of the
system's FreeRADIUS is read or touched.

Each user may use one method only (its `EAP-Type` control item: rlm_eap starts with it and
refuses a NAK for another), and an EAP-TLS user's certificate must name it (check_cert_cn). A
PEAP or TTLS supplicant may hide its name outside the tunnel (anonymous_identity): its grant
comes from the inner user (use_tunneled_reply), whose method is checked in the inner tunnel.
"""
from __future__ import annotations

from collections.abc import Sequence

from tenet.model.rate import parse_rate
from tenet.model.tenancy import AaaUser, EapMethod

ACCOUNTING_PORT_OFFSET = 1  # accounting listens on the auth port + 1 (1813 beside 1812, RFC 2866)
EAP_TYPE = {EapMethod.MD5: 4, EapMethod.TLS: 13, EapMethod.TTLS: 21, EapMethod.PEAP: 25}  # IANA EAP types


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _users(users: Sequence[AaaUser], inner: bool = False) -> str:
    """The outer users file (the method each may use, its grant) or the inner tunnel's (only
    those that authenticate inside one, their passwords, the same grant)."""
    out = []
    for u in users:
        if inner and u.method not in (EapMethod.PEAP, EapMethod.TTLS):
            continue
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
        if u.interim:
            reply.append(f"Acct-Interim-Interval := {u.interim}")
        if u.cos is not None:
            reply.append(f"User-Priority-Table := 0x{bytes([u.cos] * 8).hex()}")
        if u.ip:
            reply += [f"Framed-IP-Address := {u.ip.ip}", f"Framed-IP-Netmask := {u.ip.netmask}"]
        check = [f'Cleartext-Password := "{_quote(u.password)}"'] if u.password else []
        if not inner:
            check.append(f"EAP-Type := {EAP_TYPE[u.method]}")
        out.append(f'"{_quote(u.name)}" ' + ", ".join(check) + "\n\t" + ",\n\t".join(reply) + "\n")
    return "\n".join(out)


def _tunnel(method: str, inner: str) -> str:
    """A tunnelled method: its inner conversation in the inner-tunnel server, whose reply (the
    inner user's grant) is the one sent."""
    return (f"\t{method} {{\n\t\ttls = tls-common\n\t\tdefault_eap_type = {inner}\n\t\tcopy_request_to_tunnel = yes\n"
            f'\t\tuse_tunneled_reply = yes\n\t\tvirtual_server = "inner-tunnel"\n\t}}\n')


def _eap(eap_dir: str) -> str:
    """The eap module: MD5 always; the TLS-based methods when there are certificates."""
    if not eap_dir:
        return "\tmd5 {\n\t}\n"
    return f"""\tmd5 {{
\t}}
\ttls-config tls-common {{
\t\tprivate_key_file = {eap_dir}/server-key.pem
\t\tcertificate_file = {eap_dir}/server.pem
\t\tca_file = {eap_dir}/ca.pem
\t\tcipher_list = "DEFAULT"
\t\tecdh_curve = "prime256v1"
\t\ttls_min_version = "1.2"
\t\ttls_max_version = "1.2"
\t\tfragment_size = 1024
\t\tcheck_cert_cn = %{{User-Name}}
\t\tcache {{
\t\t\tenable = no
\t\t}}
\t\tocsp {{
\t\t\tenable = no
\t\t}}
\t}}
\ttls {{
\t\ttls = tls-common
\t}}
{_tunnel("ttls", "md5")}{_tunnel("peap", "mschapv2")}\tmschapv2 {{
\t}}
"""


# the inner user's name goes out in the Accept's User-Name (with its grant, use_tunneled_reply):
# the NAS knows a PEAP or TTLS user by it, not by the outer "anonymous" (RFC 2865 §5.1)
INNER_TUNNEL = """
server inner-tunnel {
\tauthorize {
\t\tinner_files
\t\tmschap
\t\teap {
\t\t\tok = return
\t\t}
\t\tpap
\t}
\tauthenticate {
\t\tAuth-Type PAP {
\t\t\tpap
\t\t}
\t\tAuth-Type MS-CHAP {
\t\t\tmschap
\t\t}
\t\teap
\t}
\tpost-auth {
\t\tupdate reply {
\t\t\tUser-Name := &request:User-Name
\t\t}
\t\tPost-Auth-Type REJECT {
\t\t}
\t}
}
"""


# post-auth refuses an Accept that grants no VN: a certificate from the lab's CA whose name is no
# user (one removed since, whose certificate nobody revoked) must not get in. And it signs every
# reply, PAP (MAB) ones too: our clients require Message-Authenticator
# (the BlastRADIUS countermeasure) and FreeRADIUS 3.2.1 adds it by itself only to EAP replies.
def render(users: Sequence[AaaUser], secret: str, listen_ip: str, port: int, clients: Sequence[str], run_dir: str,
           eap_dir: str = "") -> dict[str, str]:
    """{relative path: content} of the config directory. Accounting listens on port + 1 and
    every accounting request is written to `<run_dir>/detail`."""
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
\tfiles inner_files {{
\t\tfilename = {run_dir}/inner-users
\t}}
\tmschap {{
\t}}
\tdetail {{
\t\tfilename = {run_dir}/detail
\t\tescape_filenames = no
\t\tpermissions = 0600
\t\theader = "%t"
\t\tlocking = no
\t}}
\tpap {{
\t\tnormalise = yes
\t}}
\talways reject {{
\t\trcode = reject
\t}}
\teap {{
\t\tdefault_eap_type = md5
\t\ttimer_expire = 60
\t\tignore_unknown_eap_types = no
\t\tcisco_accounting_username_bug = no
\t\tmax_sessions = 65536
{_eap(eap_dir)}\t}}
}}
server default {{
\tlisten {{
\t\ttype = auth
\t\tipaddr = {listen_ip}
\t\tport = {port}
\t}}
\tlisten {{
\t\ttype = acct
\t\tipaddr = {listen_ip}
\t\tport = {port + ACCOUNTING_PORT_OFFSET}
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
\taccounting {{
\t\tdetail
\t}}
\tpost-auth {{
\t\tif (!&reply:Tunnel-Private-Group-Id) {{
\t\t\treject
\t\t}}
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
        "radiusd.conf": radiusd.lstrip() + (INNER_TUNNEL if eap_dir else ""),
        "users": _users(users),
        "inner-users": _users(users, inner=True),
        "dictionary": "$INCLUDE /usr/share/freeradius/dictionary\n",
    }
