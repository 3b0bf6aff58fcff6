-- Wireshark/tshark dissector for tenet's NVO3 discovery and session protocol (docs/protocol.md).
-- Use: tshark -X lua_script:contrib/wireshark/tenet.lua -r capture.pcap
-- or copy into ~/.local/lib/wireshark/plugins/.

local p = Proto("tenet", "tenet NVO3 auto-attachment")

local msg_types = {
  [1] = "DISCOVER", [2] = "OFFER", [3] = "REQUEST", [4] = "CONFIRM", [5] = "EAP",
  [6] = "AUTH_RESULT", [7] = "HELLO", [8] = "HELLO_ACK", [9] = "TERMINATE",
}
local tlv_types = {
  [1] = "VN_NAME", [2] = "NVE_TYPE", [3] = "NVE_CAPABILITY", [4] = "NVE_MAC", [5] = "NVE_IP",
  [6] = "TES_IP", [7] = "VLAN", [8] = "QOS", [9] = "PUBLIC_KEY", [10] = "HOST_UNIQ",
  [11] = "REASON", [12] = "EAP_PAYLOAD", [13] = "AUTH_STATUS", [14] = "SESSION_TIMEOUT",
  [15] = "TES_MAC", [16] = "FILTER_ID", [17] = "HELLO_INTERVAL",
  [18] = "ACCESS_TUNNEL", [19] = "RATE_UP",
}
local nve_types = { [1] = "hypervisor", [2] = "access switch", [3] = "router" }
local reasons = {
  [0] = "none", [1] = "auth-failed", [2] = "keepalive-timeout", [3] = "admin", [4] = "shutdown",
  [5] = "unknown-session", [6] = "vn-unavailable", [7] = "reauth-failed",
}

local f = {
  version = ProtoField.uint8("tenet.version", "Version", base.DEC, nil, 0xF0),
  type = ProtoField.uint8("tenet.type", "Message type", base.DEC, msg_types),
  length = ProtoField.uint16("tenet.length", "Length", base.DEC),
  session = ProtoField.uint32("tenet.session", "Session id", base.HEX),
  vnid = ProtoField.uint24("tenet.vnid", "VN-ID", base.DEC),
  tlv = ProtoField.bytes("tenet.tlv", "TLV"),
  tlv_type = ProtoField.uint16("tenet.tlv.type", "Type", base.DEC, tlv_types),
  tlv_len = ProtoField.uint16("tenet.tlv.length", "Length", base.DEC),
  vn_name = ProtoField.string("tenet.vn_name", "VN name"),
  nve_type = ProtoField.uint8("tenet.nve_type", "NVE type", base.DEC, nve_types),
  capability = ProtoField.uint32("tenet.capability", "NVE capability", base.DEC),
  nve_mac = ProtoField.ether("tenet.nve_mac", "NVE MAC"),
  nve_ip = ProtoField.ipv4("tenet.nve_ip", "NVE IP"),
  tes_ip = ProtoField.ipv4("tenet.tes_ip", "TES IP"),
  tes_prefix = ProtoField.uint8("tenet.tes_prefix", "TES prefix length", base.DEC),
  vlan = ProtoField.uint16("tenet.vlan", "VLAN", base.DEC),
  rate = ProtoField.uint64("tenet.qos.rate", "Rate limit (bit/s)", base.DEC),
  cos = ProtoField.uint8("tenet.qos.cos", "Class of service", base.DEC),
  host_uniq = ProtoField.bytes("tenet.host_uniq", "Host-Uniq"),
  reason = ProtoField.uint8("tenet.reason", "Reason", base.DEC, reasons),
  reason_text = ProtoField.string("tenet.reason_text", "Reason text"),
  status = ProtoField.uint8("tenet.auth_status", "Auth status", base.DEC, { [0] = "success", [1] = "failure" }),
  timeout = ProtoField.uint32("tenet.session_timeout", "Session-Timeout (s)", base.DEC),
  tes_mac = ProtoField.ether("tenet.tes_mac", "TES MAC"),
  filter_id = ProtoField.string("tenet.filter_id", "Filter-Id"),
  hello = ProtoField.uint16("tenet.hello_interval", "Hello interval (s)", base.DEC),
  tunnel_vni = ProtoField.uint32("tenet.tunnel.vni", "Access tunnel VNI", base.DEC),
  tunnel_port = ProtoField.uint16("tenet.tunnel.port", "Access tunnel UDP port", base.DEC),
  raw = ProtoField.bytes("tenet.value", "Value"),
}
local list = {}
for _, v in pairs(f) do list[#list + 1] = v end
p.fields = list

local eap_dissector = Dissector.get("eap")

local function value(tree, t, buf, pinfo)
  local n = buf:len()
  if t == 1 then tree:add(f.vn_name, buf)
  elseif t == 2 and n == 1 then tree:add(f.nve_type, buf)
  elseif t == 3 and n == 4 then tree:add(f.capability, buf)
  elseif (t == 4) and n == 6 then tree:add(f.nve_mac, buf)
  elseif t == 15 and n == 6 then tree:add(f.tes_mac, buf)
  elseif t == 5 and n == 4 then tree:add(f.nve_ip, buf)
  elseif t == 6 and n == 5 then tree:add(f.tes_ip, buf(0, 4)); tree:add(f.tes_prefix, buf(4, 1))
  elseif t == 7 and n == 2 then tree:add(f.vlan, buf)
  elseif t == 8 and n == 9 then tree:add(f.rate, buf(0, 8)); tree:add(f.cos, buf(8, 1))
  elseif t == 10 then tree:add(f.host_uniq, buf)
  elseif t == 11 and n >= 1 then
    tree:add(f.reason, buf(0, 1))
    if n > 1 then tree:add(f.reason_text, buf(1)) end
  elseif t == 12 and eap_dissector ~= nil then eap_dissector:call(buf:tvb(), pinfo, tree)
  elseif t == 13 and n == 1 then tree:add(f.status, buf)
  elseif t == 14 and n == 4 then tree:add(f.timeout, buf)
  elseif t == 16 then tree:add(f.filter_id, buf)
  elseif t == 17 and n == 2 then tree:add(f.hello, buf)
  elseif t == 18 and n == 6 then tree:add(f.tunnel_vni, buf(0, 4)); tree:add(f.tunnel_port, buf(4, 2))
  elseif n > 0 then tree:add(f.raw, buf)
  end
end

function p.dissector(buf, pinfo, root)
  if buf:len() < 12 then return 0 end
  local length = buf(2, 2):uint()
  if length < 12 or length > buf:len() then return 0 end
  pinfo.cols.protocol = "TENET"
  local mtype = buf(1, 1):uint()
  local tree = root:add(p, buf(0, length))
  tree:add(f.version, buf(0, 1))
  tree:add(f.type, buf(1, 1))
  tree:add(f.length, buf(2, 2))
  tree:add(f.session, buf(4, 4))
  tree:add(f.vnid, buf(8, 3))
  pinfo.cols.info = string.format("%s session=0x%08x vnid=%d", msg_types[mtype] or ("type " .. mtype),
    buf(4, 4):uint(), buf(8, 3):uint())
  local off = 12
  while off + 4 <= length do
    local t, n = buf(off, 2):uint(), buf(off + 2, 2):uint()
    if off + 4 + n > length then
      tree:add_expert_info(PI_MALFORMED, PI_ERROR, "TLV overruns the message")
      break
    end
    local sub = tree:add(f.tlv, buf(off, 4 + n))
    sub:set_text((tlv_types[t] or ("TLV " .. t)) .. " (" .. n .. " bytes)")
    sub:add(f.tlv_type, buf(off, 2))
    sub:add(f.tlv_len, buf(off + 2, 2))
    if n > 0 then value(sub, t, buf(off + 4, n), pinfo) end
    off = off + 4 + n
  end
  return length
end

local eth = DissectorTable.get("ethertype")
eth:add(0x88B5, p)
eth:add(0x88B6, p)
local udp = DissectorTable.get("udp.port")
udp:add(6767, p)
udp:add(6768, p)
