"""Access-Accept attributes -> provisioning (RFC 3580 and friends), and the users file."""
import pytest

from ipaddress import IPv4Interface

from tenet.aaa import config
from tenet.aaa.provisioning import Provisioning, ProvisioningError, from_attributes
from tenet.model.rate import parse_rate
from tenet.model.tenancy import AaaUser

VN = {"Tunnel-Type": [(0, "VLAN")], "Tunnel-Medium-Type": [(0, "IEEE-802")]}


def test_vn_by_name_with_limits_and_address():
    p = from_attributes({**VN, "Tunnel-Private-Group-Id": [(0, "n1")], "WISPr-Bandwidth-Max-Down": [50_000_000],
                         "Session-Timeout": [3600], "Filter-Id": ["web"], "Framed-IP-Address": ["10.60.0.40"],
                         "Framed-IP-Netmask": ["255.255.255.0"]})
    assert p == Provisioning(vn="n1", rate_down_bps=50_000_000, session_timeout=3600, filter_id="web", ip="10.60.0.40/24")


def test_numeric_group_is_a_vnid_and_a_vlan_when_it_fits():
    assert from_attributes({**VN, "Tunnel-Private-Group-Id": [(0, "100")]}) == Provisioning(vnid=100, vlan=100)
    assert from_attributes({**VN, "Tunnel-Private-Group-Id": [(0, "5001")]}) == Provisioning(vnid=5001)


def test_address_without_netmask_is_a_host_route():
    assert from_attributes({"Framed-IP-Address": ["10.60.0.40"]}).ip == "10.60.0.40/32"


@pytest.mark.parametrize("attrs, fragment", [
    ({"Tunnel-Private-Group-Id": [(0, "n1")]}, "without Tunnel-Type"),
    ({"Tunnel-Type": [(0, "VLAN")], "Tunnel-Private-Group-Id": [(0, "n1")]}, "without Tunnel-Medium-Type"),
    ({"Framed-IP-Address": ["10.60.0.40"], "Framed-IP-Netmask": ["255.0.255.0"]}, "Framed-IP-Netmask"),
])
def test_inconsistent_accept_is_an_error_naming_the_attribute(attrs, fragment):
    with pytest.raises(ProvisioningError, match=fragment):
        from_attributes(attrs)


def test_rates():
    assert parse_rate("50mbit") == 50_000_000 and parse_rate("1gbit") == 10**9 and parse_rate("64kbit") == 64_000
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate("fast")


def test_users_file_carries_what_the_topology_grants():
    text = config._users([AaaUser("dave", 'p"w', "n1", "50mbit", 60, IPv4Interface("10.60.0.40/24"))])
    assert '"dave" Cleartext-Password := "p\\"w"' in text
    for line in ('Tunnel-Private-Group-Id := "n1"', "WISPr-Bandwidth-Max-Down := 50000000", "Session-Timeout := 60",
                 "Framed-IP-Address := 10.60.0.40", "Framed-IP-Netmask := 255.255.255.0"):
        assert line in text


def test_rate_sets_both_directions_and_rate_up_down_each_one():
    both = config._users([AaaUser("v", "pw", "n1", "20mbit")])
    assert "WISPr-Bandwidth-Max-Up := 20000000" in both and "WISPr-Bandwidth-Max-Down := 20000000" in both
    split = config._users([AaaUser("v", "pw", "n1", rate_up="5mbit", rate_down="40mbit")])
    assert "WISPr-Bandwidth-Max-Up := 5000000" in split and "WISPr-Bandwidth-Max-Down := 40000000" in split
    up_only = config._users([AaaUser("v", "pw", "n1", rate_up="5mbit")])
    assert "WISPr-Bandwidth-Max-Up := 5000000" in up_only and "Max-Down" not in up_only


def test_both_wispr_rates_become_provisioning():
    p = from_attributes({"WISPr-Bandwidth-Max-Up": [5_000_000], "WISPr-Bandwidth-Max-Down": [40_000_000]})
    assert (p.rate_up_bps, p.rate_down_bps) == (5_000_000, 40_000_000)
    assert from_attributes({"WISPr-Bandwidth-Max-Up": [5_000_000]}).rate_down_bps is None  # a CoA may change one


def test_a_report_from_before_two_directions_still_reads():
    assert Provisioning.from_dict({"vn": "n1", "rate_bps": 50_000_000}) == Provisioning(vn="n1", rate_down_bps=50_000_000)
    p = Provisioning(vn="n1", rate_down_bps=1, rate_up_bps=2)
    assert Provisioning.from_dict(vars(p)) == p


def test_dynamic_authorization_requests_are_authenticated_and_name_a_mac():
    from pyrad import packet
    from pyrad.dictionary import Dictionary

    from tenet.aaa import dynauth
    from tenet.aaa.radius import DICTIONARY

    d = Dictionary(str(DICTIONARY))
    req = packet.CoAPacket(packet.CoARequest, 7, b"s3cret", dict=d, Calling_Station_Id="02-00-D3-D9-85-36")
    req["WISPr-Bandwidth-Max-Down"] = 5_000_000
    raw = req.RequestPacket()
    got = dynauth.parse(raw, b"s3cret", d)
    assert (got.kind, got.mac, got.provisioning.rate_down_bps) == ("coa", "02:00:d3:d9:85:36", 5_000_000)
    with pytest.raises(dynauth.DynAuthError, match="Request Authenticator"):
        dynauth.parse(raw, b"other", d)
    nak = packet.CoAPacket(packet=dynauth.answer(got, False), secret=b"s3cret", dict=d)
    assert nak.code == packet.CoANAK and nak["Error-Cause"] == [dynauth.SESSION_NOT_FOUND]
    bad = packet.CoAPacket(packet.DisconnectRequest, 8, b"s3cret", dict=d, Calling_Station_Id="not-a-mac")
    with pytest.raises(dynauth.DynAuthError, match="not a MAC"):
        dynauth.parse(bad.RequestPacket(), b"s3cret", d)


def test_user_priority_table_is_the_class_of_service():
    """RFC 4675: eight priorities, one per incoming 802.1p value; a VM's untagged frames are 0."""
    assert from_attributes({"User-Priority-Table": [bytes([5] * 8)]}).cos == 5
    assert from_attributes({}).cos is None
    for bad in (bytes([5] * 7), bytes([9] * 8)):
        with pytest.raises(ProvisioningError, match="User-Priority-Table"):
            from_attributes({"User-Priority-Table": [bad]})
    assert "User-Priority-Table := 0x0303030303030303" in config._users([AaaUser("e", "pw", "n1", cos=3)])


def _signed_accept(client, request, raw_attrs):
    """An Access-Accept to `request` carrying raw (code, bytes) attributes, signed as a server would."""
    from collections import OrderedDict

    from pyrad import packet

    reply = request.CreateReply()
    reply.code = packet.AccessAccept
    for code, value in raw_attrs:
        OrderedDict.__setitem__(reply, code, [value])
    reply.add_message_authenticator()
    return reply.ReplyPacket()


@pytest.mark.parametrize("raw_attrs, fragment", [
    ([(27, b"\x00\x01")], "Session-Timeout: Invalid integer value"),  # an integer of 2 bytes
    ([(64, b"\x00\x00\x00\x0d"), (65, b"\x00\x00\x00\x06"), (81, b"\x00\xff\xfe")], "not UTF-8"),
])
def test_a_malformed_accept_is_a_radius_error_not_a_crash(raw_attrs, fragment):
    """bench/fuzz.py found both: pyrad's ValueError (and UnicodeDecodeError) escaped the NVE's
    reply loop when an authentic Accept carried a value that is not its dictionary type."""
    from tenet.aaa.radius import RadiusClient, RadiusError, read_reply

    client = RadiusClient("198.18.0.9", "s3cret")
    req = client.request("alice", b"\x02\x01\x00\x05\x01", None, "", "")
    req.id = 1
    req.RequestPacket()
    got = read_reply(_signed_accept(client, req, raw_attrs), req, b"s3cret", client.dict, "198.18.0.9")
    assert isinstance(got, RadiusError) and fragment in str(got)
    forged = bytearray(_signed_accept(client, req, []))
    forged[-1] ^= 1
    assert read_reply(bytes(forged), req, b"s3cret", client.dict, "x") is None  # mis-signed: dropped


def test_a_coa_with_a_malformed_attribute_is_a_dynauth_error():
    """bench/fuzz.py: a 3-byte Framed-IP-Address in an authentic CoA-Request raised ValueError."""
    from collections import OrderedDict

    from pyrad import packet
    from pyrad.dictionary import Dictionary

    from tenet.aaa import dynauth
    from tenet.aaa.radius import DICTIONARY

    d = Dictionary(str(DICTIONARY))
    req = packet.CoAPacket(packet.CoARequest, 7, b"s3cret", dict=d, Calling_Station_Id="02-00-D3-D9-85-36")
    OrderedDict.__setitem__(req, 8, [b"\x0a\x00\x00"])
    with pytest.raises(dynauth.DynAuthError, match="Framed-IP-Address"):
        dynauth.parse(req.RequestPacket(), b"s3cret", d)
