// tenet's live view: the graph from /v1/events (server-sent events read with fetch, so the
// token goes in the Authorization header), laid out in bands: routers, physical networks,
// hosts, proxies, VMs and virtual routers (under their hosts), VNs. Plain SVG, no library.
"use strict";

const TOKEN_KEY = "tenet-token";
const SVGNS = "http://www.w3.org/2000/svg";
const SLOT = 62;         // px per VM under a host
const PALETTE = ["#3b7dd8", "#d8643b", "#3ba86b", "#9b59b6", "#c0392b", "#16a085", "#b7950b", "#7f8c8d"];

let token = null;
let graph = null;
let selected = null;     // a node id, or "vlink:NAME"
let rateTimer = null;

// -- the token: from the URL fragment (#token=…), else this tab's session, else asked -------
function takeToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);  // out of the address bar
  }
  token = sessionStorage.getItem(TOKEN_KEY);
  while (!token) {
    const t = window.prompt("tenet API token (admin or a tenant's):");
    if (t === null) return false;
    token = t.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
  }
  return true;
}

function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
}

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status + " " + ((await r.json().catch(() => ({}))).detail || ""));
  return r.json();
}

function status(state, text) {
  const s = document.getElementById("status");
  s.dataset.state = state;
  s.textContent = text;
}

// -- the stream ------------------------------------------------------------------------------
async function follow() {
  for (;;) {
    try {
      const r = await fetch("/v1/events", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
      if (r.status === 401) {
        forgetToken();
        status("down", "the token was refused");
        if (!takeToken()) return;
        continue;
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      const reader = r.body.getReader();
      const text = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += text.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          message(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
      status("down", "the stream ended; reconnecting…");
    } catch (e) {
      status("down", "disconnected (" + e.message + "); retrying…");
    }
    await new Promise((ok) => setTimeout(ok, 1000));
  }
}

function message(block) {
  let event = "message", data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const [field, ...rest] = line.split(":");
    const value = rest.join(":").replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data += value;
  }
  if (event === "graph") {
    graph = JSON.parse(data);
    status("live", "live · revision " + graph.revision);
    document.getElementById("status").dataset.revision = graph.revision;
    render();
  } else if (event === "bye") {
    forgetToken();
    status("down", JSON.parse(data).detail);
  }
}

// -- layout ----------------------------------------------------------------------------------
function tenantColor(t) {
  const tenants = [...new Set(graph.nodes.map((n) => n.tenant).filter((x) => x))].sort();
  const i = tenants.indexOf(t);
  return i < 0 ? "#888" : PALETTE[i % PALETTE.length];
}

function hostOf(n) {
  if (n.kind === "tes") return (n.info.sessions[0] || {}).host || "?";
  return n.info.host || "?";
}

function layout() {
  const by = (k) => graph.nodes.filter((n) => n.kind === k);
  const pos = {};
  const underlay = graph.nodes.some((n) => n.kind === "network");
  const machines = graph.nodes.filter((n) => ["vm", "vrouter", "tes"].includes(n.kind));
  // leaves: hosts in their network's order (a switch's proxies after it), then any host named
  // only by a VM (a tenant's view has no host nodes), then servers
  const leaves = [];
  const seen = new Set();
  const add = (name, node) => { if (!seen.has(name)) { seen.add(name); leaves.push({ name, node }); } };
  for (const net of by("network")) {
    for (const h of graph.nodes.filter((n) => (n.kind === "host" || n.kind === "switch") && n.info.network === net.name)) {
      add(h.name, h);
      for (const p of by("proxy").filter((p) => p.info.switch === h.name)) add(p.name, p);
      for (const v of by("server").filter((v) => v.info.switch === h.name)) add("server " + v.name, v);
    }
    for (const v of by("server").filter((v) => v.info.uplink === net.name)) add("server " + v.name, v);
  }
  for (const m of machines) add(hostOf(m), null);
  const under = {};
  for (const m of machines) (under[hostOf(m)] = under[hostOf(m)] || []).push(m);
  const rows = [];
  if (by("router").length) rows.push("router");
  if (underlay) rows.push("network", "host");
  const cabled = (n) => n.kind === "proxy" || (n.kind === "server" && n.info.switch);  // on a switch port
  if (graph.nodes.some(cabled)) rows.push("proxy");
  rows.push("machine", "vn");
  const y = {};
  let at = 34;
  for (const r of rows) {
    y[r] = at;
    at += r === "machine" ? 150 : r === "network" ? 62 : 70;
  }
  let x = 40;
  for (const leaf of leaves) {
    const ms = (under[leaf.name] || []).sort((a, b) => (a.kind + a.name).localeCompare(b.kind + b.name));
    const w = Math.max(1.6, ms.length) * SLOT;
    ms.forEach((m, i) => { pos[m.id] = { x: x + (w - ms.length * SLOT) / 2 + SLOT * (i + 0.5), y: y.machine + (i % 2) * 16 }; });
    if (leaf.node) pos[leaf.node.id] = { x: x + w / 2, y: cabled(leaf.node) ? y.proxy : y.host };
    x += w + 14;
  }
  // physical networks: bars over their hosts; routers over the networks they join
  const span = {};
  for (const net of by("network")) {
    const xs = graph.edges.filter((e) => e.kind === "uplink" && e.target === net.id && pos[e.source]).map((e) => pos[e.source].x);
    const lo = xs.length ? Math.min(...xs) - 40 : x, hi = xs.length ? Math.max(...xs) + 40 : x + 120;
    if (!xs.length) x += 140;
    span[net.id] = [lo, hi];
    pos[net.id] = { x: (lo + hi) / 2, y: y.network };
  }
  const routers = by("router").map((r) => {
    const xs = graph.edges.filter((e) => e.kind === "port" && e.source === r.id && pos[e.target]).map((e) => pos[e.target].x);
    return { r, x: xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 60 };
  });
  spread(routers, 90).forEach(({ r, x }) => { pos[r.id] = { x, y: y.router }; });
  // VNs: under the middle of their members
  const vns = by("vn").map((v) => {
    const xs = graph.edges.filter((e) => e.kind === "nic" && e.target === v.id && pos[e.source]).map((e) => pos[e.source].x);
    return { r: v, x: xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 60 };
  });
  spread(vns, 96).forEach(({ r, x }) => { pos[r.id] = { x, y: y.vn }; });
  const width = Math.max(x, ...Object.values(pos).map((p) => p.x + 60), 400);
  return { pos, span, y, rows, width, height: at };
}

function spread(items, gap) {
  items.sort((a, b) => a.x - b.x);
  for (let i = 1; i < items.length; i++) items[i].x = Math.max(items[i].x, items[i - 1].x + gap);
  const shift = items.length ? Math.min(0, items[0].x - 50) : 0;
  items.forEach((it) => { it.x -= shift; });
  return items;
}

// -- drawing -----------------------------------------------------------------------------------
function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function rate(bps) {
  if (!bps) return "0";
  if (bps >= 1e9) return (bps / 1e9).toFixed(bps % 1e9 ? 2 : 0) + " Gbit/s";
  if (bps >= 1e6) return +(bps / 1e6).toFixed(2) + " Mbit/s";
  return +(bps / 1e3).toFixed(1) + " kbit/s";
}

function shape(n, p) {
  const c = n.tenant ? tenantColor(n.tenant) : null;
  switch (n.kind) {
    case "network": return `<rect class="shape" x="${-p.w / 2}" y="-9" width="${p.w}" height="18" rx="9"/>` +
      `<text x="${-p.w / 2 + 10}" y="4">${esc(n.name)}</text><text x="${p.w / 2 - 10}" y="4" text-anchor="end" fill="#667">${esc(n.info.subnet)}</text>`;
    case "router": return `<circle class="shape" r="15"/><text x="20" y="4">${esc(n.name)}</text>`;
    case "host": case "switch": case "proxy":
      return `<rect class="shape" x="-32" y="-13" width="64" height="26" rx="4"/><text y="4" text-anchor="middle">${esc(n.name)}</text>`;
    case "server": return `<rect class="shape" x="-26" y="-11" width="52" height="22" style="stroke:${c}"/><text y="4" text-anchor="middle">${esc(n.name)}</text>`;
    case "vm": return `<circle class="shape" r="10" style="stroke:${c}"/><text y="24" text-anchor="middle">${esc(n.name)}</text>`;
    case "vrouter": return `<path class="shape" d="M0,-13 L13,0 L0,13 L-13,0 Z" style="fill:${c};fill-opacity:.25;stroke:${c}"/><text y="26" text-anchor="middle">${esc(n.name)}</text>`;
    case "tes": return `<path class="shape" d="M0,-12 L11,8 L-11,8 Z" style="stroke:${c}"/><text y="24" text-anchor="middle">${esc(n.name)}</text>`;
    case "vn": return `<ellipse class="shape" rx="42" ry="15" style="fill:${c};fill-opacity:.18;stroke:${c}"/><text y="4" text-anchor="middle">${esc(n.name)}</text>`;
  }
  return `<circle class="shape" r="8"/><text y="20">${esc(n.name)}</text>`;
}

function attrs(n) {
  const a = { id: n.id, kind: n.kind, name: n.name, tenant: n.tenant };
  if (n.info.state) a[n.kind === "vm" || n.kind === "vrouter" ? "vmstate" : "state"] = n.info.state;
  const nics = n.info.nics || (n.info.sessions ? [n.info] : []);
  if (nics.length) {
    a.attached = String(nics.every((x) => x.attached !== false));
    a.sessions = nics.flatMap((x) => (x.sessions || []).map((s) => s.session)).join(",");
  }
  return Object.entries(a).map(([k, v]) => `data-${k}="${esc(v)}"`).join(" ");
}

function render() {
  const L = layout();
  const { pos } = L;
  const parts = [];
  const labels = { router: "ROUTERS", network: "PHYSICAL NETWORKS", host: "HOSTS", proxy: "PROXIES", machine: "VMS · VIRTUAL ROUTERS", vn: "VIRTUAL NETWORKS" };
  for (const r of L.rows) {
    parts.push(`<rect class="band" x="0" y="${L.y[r] - 28}" width="${L.width}" height="${r === "machine" ? 112 : 54}"/>`);
    parts.push(`<text class="band-label" x="6" y="${L.y[r] - 16}">${labels[r]}</text>`);
  }
  for (const e of graph.edges) {
    if (e.kind === "vlink") continue;
    const a = pos[e.source], b = pos[e.target];
    if (!a || !b) continue;
    const bar = L.span[e.target];  // to a physical network: to the nearest point of its bar
    const ty = bar ? b.y + (a.y < b.y ? -9 : 9) : b.y;
    const bx = bar ? Math.min(Math.max(a.x, bar[0] + 12), bar[1] - 12) : b.x;
    const stroke = e.kind === "nic" || e.kind === "over" ? ` style="stroke:${tenantColor(e.tenant)}"` : "";
    parts.push(`<line class="edge kind-${e.kind}" data-id="${esc(e.id)}" data-attached="${e.info.attached !== false}"${stroke} ` +
      `x1="${a.x}" y1="${a.y}" x2="${bx}" y2="${ty}"/>`);
  }
  for (const n of graph.nodes) {
    const p = pos[n.id];
    if (!p) continue;
    if (n.kind === "network") p.w = L.span[n.id][1] - L.span[n.id][0];
    parts.push(`<g class="node kind-${n.kind}${selected === n.id ? " selected" : ""}" ${attrs(n)} transform="translate(${p.x},${p.y})">${shape(n, p)}</g>`);
  }
  graph.edges.filter((e) => e.kind === "vlink").forEach((e, k) => {
    const a = pos[e.source], b = pos[e.target];
    if (!a || !b) return;
    const mx = (a.x + b.x) / 2, dip = Math.min(40, 16 + Math.abs(b.x - a.x) / 10), my = Math.max(a.y, b.y) + dip;
    const low = (a.y + b.y + 2 * (my + dip)) / 4;  // the curve's lowest point: its label just under it
    const g = e.info.guarantee_bps ? `guarantee ${rate(e.info.guarantee_bps)} · ` : "";
    const id = "vlink:" + e.info.name, c = tenantColor(e.tenant);
    parts.push(`<g class="vlink${selected === id ? " selected" : ""}" data-id="${esc(id)}" data-name="${esc(e.info.name)}" ` +
      `data-guarantee="${e.info.guarantee_bps}" data-limit="${e.info.limit_bps}">` +
      `<path d="M${a.x},${a.y} Q${mx},${my + dip} ${b.x},${b.y}" style="stroke:${c}"/>` +
      `<text x="${mx}" y="${low + 13 + 12 * (k % 3)}" text-anchor="middle" fill="${c}">${esc(e.info.name)} · ${esc(g)}` +
      `limit ${e.info.limit_bps ? esc(rate(e.info.limit_bps)) : "capacity"}</text></g>`);
  });
  const svg = document.getElementById("graph");
  const fit = Math.min(1, (document.getElementById("canvas").clientWidth - 4) / L.width);  // shrink to fit, never grow
  svg.setAttribute("width", Math.floor(L.width * fit));
  svg.setAttribute("height", Math.floor(L.height * fit));
  svg.setAttribute("viewBox", `0 0 ${L.width} ${L.height}`);
  svg.innerHTML = parts.join("");
  document.getElementById("scope").textContent = graph.scope === "admin" ? "· all tenants" : "· tenant " + graph.scope;
  document.getElementById("legend").innerHTML = [...new Set(graph.nodes.map((n) => n.tenant).filter((t) => t))].sort()
    .map((t) => `<span><i style="background:${tenantColor(t)}"></i>${esc(t)}</span>`).join("");
  endpoints();
  if (selected && !graph.nodes.some((n) => n.id === selected) && !graph.edges.some((e) => "vlink:" + e.info.name === selected)) select(null);
  else if (selected) details(false);
}

function grants(p) {
  if (!p) return "";
  const show = { vlan: "VLAN", rate_down_bps: "down", rate_up_bps: "up", cos: "CoS", session_timeout: "timeout", filter_id: "filter", ip: "IP" };
  return Object.entries(show).filter(([k]) => p[k] !== null && p[k] !== undefined)
    .map(([k, label]) => `${label} ${k.endsWith("_bps") ? rate(p[k]) : k === "session_timeout" ? p[k] + " s" : p[k]}`).join(", ") || "—";
}

function endpoints() {
  document.querySelector("#endpoints tbody").innerHTML = graph.endpoints.map((r) =>
    `<tr data-mac="${esc(r.mac)}" data-vn="${esc(r.vn)}" data-host="${esc(r.host)}" data-session="${r.session}">` +
    `<td>${esc(r.mac)}</td><td>${esc(r.vn)}</td><td>${esc(r.host)} ${esc(r.port)}</td><td>${esc(r.identity)}</td>` +
    `<td>${r.session}</td><td class="grants">${esc(grants(r.provisioning))}</td></tr>`).join("") ||
    `<tr><td colspan="6" class="hint">none</td></tr>`;
}

// -- details -----------------------------------------------------------------------------------
function select(id) {
  selected = id;
  clearInterval(rateTimer);
  rateTimer = null;
  document.querySelectorAll(".selected").forEach((g) => g.classList.remove("selected"));
  if (id) document.querySelectorAll(`[data-id="${CSS.escape(id)}"]`).forEach((g) => g.classList.add("selected"));
  details(true);
}

function table(head, rows) {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`).join("") + `</tbody></table>`;
}

function kv(pairs) {
  return `<table class="kv">${pairs.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join("")}</table>`;
}

function details(fresh) {
  const box = document.getElementById("details");
  if (!selected) {
    box.innerHTML = `<p class="hint">Click a host for its tables, a VN for its members, a link for its rates.</p>`;
    return;
  }
  if (selected.startsWith("vlink:")) return linkDetails(box, fresh);
  const n = graph.nodes.find((x) => x.id === selected);
  const title = `<h3 data-kind="${esc(n.kind)}">${esc(n.kind)} ${esc(n.name)}${n.tenant ? " · " + esc(n.tenant) : ""}</h3>`;
  if (n.kind === "vn") {
    const members = graph.edges.filter((e) => e.kind === "nic" && e.target === n.id).map((e) => {
      const m = graph.nodes.find((x) => x.id === e.source);
      const where = m.kind !== "server" ? hostOf(m) : m.info.switch ? "server on " + m.info.switch + "'s port" : "server on " + m.info.uplink;
      return [m.kind === "vrouter" ? "VR " + m.name : m.name, e.info.mac || "", e.info.ip || "", where,
              e.info.attached === false ? "not attached" : e.info.join === "discover" ? "attached" : "declared"];
    });
    box.innerHTML = title + kv([["VN-ID", n.info.vnid], ["subnet", n.info.subnet || "—"],
      ["BUM", n.info.bum === "multicast" ? "multicast group " + n.info.group : "head-end replication"],
      ["forwarding", n.info.forwarding], ...(n.info.over ? [["over", n.info.over]] : [])]) +
      `<h3>Members (${members.length})</h3>` + table(["member", "MAC", "IP", "host", "join"], members);
    return;
  }
  if (n.kind === "host" || n.kind === "switch") {
    const head = title + kv([["role", n.info.role], ["state", n.info.state], ["address", n.info.address + " on " + n.info.network],
      ["tables", `generation ${n.info.published} published, ${n.info.applied} applied`]]);
    const same = !fresh && box.dataset.host === n.name;  // new tables of the host shown: keep them until read
    if (same && box.dataset.generation === String(n.info.published)) return;
    box.dataset.host = n.name;
    box.dataset.generation = n.info.published;
    if (!same) box.innerHTML = head + `<p class="hint">reading its tables…</p>`;
    api("/v1/tables/" + encodeURIComponent(n.name)).then((t) => {
      if (selected !== n.id) return;
      box.innerHTML = head + t.vns.map((v) => `<h3 class="vn-table" data-vn="${esc(v.vn)}">${esc(v.vn)} · VNI ${v.vnid}</h3>` +
        table(["Destination", "Addressing function", "Address to use"], v.rows.map((r) => [r.destination, r.function, r.address])) +
        (v.reverse.length ? `<details><summary>reverse (${v.reverse.length})</summary>` +
          table(["arriving as", "delivered as"], v.reverse.map((r) => [r.arrival, r.delivered_as])) + `</details>` : "")).join("");
    }).catch((e) => { if (selected === n.id) box.innerHTML = head + `<p class="hint">${esc(e.message)}</p>`; });
    return;
  }
  delete box.dataset.host;
  const pairs = Object.entries(n.info).filter(([k, v]) => typeof v !== "object" && v !== "" && v !== 0);
  let more = "";
  if (n.info.nics) {
    more = `<h3>NICs</h3>` + table(["#", "VN", "MAC", "IP", "join", "attached"],
      n.info.nics.map((c) => [c.index, c.network, c.mac, c.ip, c.join, c.attached ? "yes" : "no"]));
  }
  const sessions = (n.info.nics || [n.info]).flatMap((c) => c.sessions || []);
  if (sessions.length) {
    more += `<h3>Sessions and grants</h3>` + table(["NVE", "VN", "session", "identity", "grants"],
      sessions.map((s) => [s.host + " " + s.port, s.vn, s.session, s.identity, grants(s.provisioning)]));
  }
  if (n.kind === "router") more = table(["network", "address"], Object.entries(n.info.ports));
  if (n.kind === "network") {
    more = table(["host", "address"], graph.edges.filter((e) => e.target === n.id && e.kind === "uplink")
      .map((e) => [e.source.split(":").slice(1).join(":"), e.info.address || ""]));
  }
  box.innerHTML = title + kv(pairs) + more;
}

function linkDetails(box, fresh) {
  const name = selected.slice("vlink:".length);
  const e = graph.edges.find((x) => x.kind === "vlink" && x.info.name === name);
  const ends = [e.source, e.target].map((id) => id.split(":").slice(1).join(":"));
  const html = `<h3>virtual link ${esc(name)} · ${esc(e.tenant)}</h3>` + kv([["between", ends.join(" — ")], ["VN-ID", e.info.vnid],
    ["subnet", e.info.subnet], ["guarantee", e.info.guarantee_bps ? rate(e.info.guarantee_bps) : "none"],
    ["limit", e.info.limit_bps ? rate(e.info.limit_bps) : "the physical capacity"]]) +
    `<h3>Live rate</h3><div id="live-rate" class="hint">measuring…</div>`;
  const keep = document.getElementById("live-rate");
  const before = keep ? keep.outerHTML : null;
  box.innerHTML = html;
  if (before && !fresh) document.getElementById("live-rate").outerHTML = before;
  if (!rateTimer) {
    const poll = () => api("/v1/rates").then((r) => {
      const el = document.getElementById("live-rate");
      if (!el || selected !== "vlink:" + name) return;
      if (!r.available) { el.textContent = "not available here: " + r.why; return; }
      const hosts = Object.entries(r.links[name] || {});
      el.innerHTML = hosts.length ? table(["leaving host", "rate"], hosts.map(([h, b]) => [h, rate(b)]))
        : "no shaped uplink on its path (both ends on one host, or no capacity set)";
    }).catch((err) => { const el = document.getElementById("live-rate"); if (el) el.textContent = err.message; });
    poll();
    rateTimer = setInterval(poll, 2000);
  }
}

window.addEventListener("resize", () => { if (graph) render(); });
window.addEventListener("hashchange", () => {  // another token given in the address bar: start over with it
  if (/(?:^#|&)token=/.test(location.hash) && takeToken()) location.reload();
});
document.getElementById("graph").addEventListener("click", (ev) => {
  const g = ev.target.closest("[data-id]");
  if (g && (g.classList.contains("node") || g.classList.contains("vlink"))) select(g.dataset.id);
});

if (takeToken()) follow();
else status("down", "no token: open /#token=… or reload and give one");
