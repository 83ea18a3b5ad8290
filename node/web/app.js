"use strict";
// The node's web page: reads and acts through the node's own API with the token the user signs in with.
// Everything shown is built as DOM text (never HTML from the ledger), styles set through the CSSOM (the page's
// Content-Security-Policy allows no inline style), and the view on screen is drawn again when the node commits
// a block (the page polls /v1/status).

const TOKEN_KEY = "oms-token";
const POLL_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";
let lastHeight = null;
let viewer = null;
let drawing = false;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "css") for (const [property, text] of Object.entries(value)) node.style.setProperty(property, text);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    node.append(child instanceof Node ? child : document.createTextNode(child == null ? "" : String(child)));
  }
  return node;
}

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function authorization() {
  return { authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) };
}

async function api(path, options = {}) {
  const headers = authorization();
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const answer = await fetch(path, { method: options.method || "GET", headers, body: options.body });
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(body.message || answer.statusText);
  return body;
}

async function optional(path, empty) {
  try { return await api(path); } catch (error) { return empty; }
}

function query(path, params) {
  const chosen = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== "") chosen.set(name, value);
  const text = chosen.toString();
  return text ? path + "?" + text : path;
}

function time(ms) {
  return ms == null ? "" : new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

function seconds(ms) {
  return ms == null ? "" : (ms / 1000).toFixed(1) + " s";
}

function table(rows, columns, options = {}) {
  columns = columns || (rows.length ? Object.keys(rows[0]) : []);
  const cell = options.cell || ((row, column) => row[column]);
  return el("table", { id: options.id },
    el("tr", {}, columns.map((c) => el("th", {}, c))),
    rows.length ? rows.map((row) => el("tr", options.rowAttrs ? options.rowAttrs(row) : {},
      columns.map((c) => el("td", { class: "col-" + c }, cell(row, c)))))
      : el("tr", {}, el("td", { colspan: Math.max(columns.length, 1), class: "empty" }, "nothing yet")));
}

// Put `parts` (nodes, text, or arrays of them) in place of what `view` shows.
function draw(view, ...parts) {
  view.replaceChildren(...parts.flat(Infinity).map((part) => part instanceof Node ? part : document.createTextNode(String(part))));
}

function link(href, text) {
  return el("a", { href }, text);
}

// A bar chart of `points`: `label(point)` under each bar, `value(point)` its height; the largest value is shown.
function barChart(id, points, label, value, unit = "") {
  const width = 640, height = 140, max = Math.max(1, ...points.map(value));
  const step = width / Math.max(points.length, 1);
  const every = Math.ceil(points.length / 12);
  const svg = svgEl("svg", { id, class: "chart", width, height: height + 34, viewBox: `0 0 ${width} ${height + 34}` });
  svg.append(svgEl("text", { x: 0, y: 10 }, `max ${max}${unit}`));
  points.forEach((point, i) => {
    const h = Math.round((value(point) / max) * (height - 16));
    const bar = svgEl("rect", { class: "bar", x: i * step + 1, y: height - h, width: Math.max(step - 2, 1), height: h });
    bar.append(svgEl("title", {}, `${label(point)}: ${value(point)}${unit}`));
    svg.append(bar);
    if (i % every === 0) svg.append(svgEl("text", { x: i * step + 1, y: height + 14 }, label(point)));
  });
  return svg;
}

function section(title, ...content) {
  return [el("h3", {}, title), ...content];
}

function filterForm(fields, values, target) {
  const inputs = fields.map(([name, placeholder, type]) =>
    el("input", { name, placeholder, type: type || "text", value: values.get(name) || "", "aria-label": placeholder }));
  return el("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const input of inputs) if (input.value) chosen.set(input.name, input.value);
    location.hash = target + "?" + chosen;
  } }, inputs, el("button", { type: "submit" }, "Filter"));
}

// -- the network at a glance -------------------------------------------------------------------------------------

function commitsPerWindow(commits, nowMs, windows, windowMs) {
  const counts = Array.from({ length: windows }, (_, i) => ({ end: nowMs - (windows - 1 - i) * windowMs, blocks: 0, txs: 0 }));
  for (const commit of commits) {
    const back = Math.floor((nowMs - commit.time_ms) / windowMs);
    if (back >= 0 && back < windows) { counts[windows - 1 - back].blocks += 1; counts[windows - 1 - back].txs += commit.txs; }
  }
  return counts;
}

async function showNetwork(view) {
  const [status, peers, activity] = await Promise.all([api("/v1/status"), api("/v1/peers"), api("/v1/activity")]);
  const rate = commitsPerWindow(activity.commits, activity.now_ms, 30, 10_000);
  const peerRows = peers.map((peer) => ({
    peer: peer.id,
    address: peer.address,
    health: peer.marked_bad ? "distrusted" : peer.reachable === false ? "unreachable" : peer.reachable ? "up" : "unknown",
    height: peer.last_height_seen,
    lag: Math.max(status.height - peer.last_height_seen, 0),
    rtt_ms: peer.rtt_ms == null ? "" : peer.rtt_ms.toFixed(1),
    errors: peer.errors,
    last_error: peer.last_error,
  }));
  draw(view, el("h2", {}, "Network"),
    table([{ node: status.node_id, org: status.org, height: status.height, view: status.view, primary: status.primary,
      voting: status.voting, mempool: status.mempool, validators: status.validators.join(", ") }], null, { id: "node" }),
    section("Peers", table(peerRows, null, {
      id: "peers",
      rowAttrs: (row) => ({ "data-peer": row.peer, class: "health-" + row.health }),
    })),
    section("Commit rate (blocks per 10 s, last 5 minutes)",
      barChart("commit-rate", rate, (w) => time(w.end).slice(14), (w) => w.blocks)),
    section("Alerts firing", activity.alerts.length
      ? el("ul", { id: "alerts" }, activity.alerts.map((a) => el("li", { class: "alert" }, `${a.rule} (${a.subject}): ${a.message}`)))
      : el("p", { id: "alerts" }, "none")));
}

// -- orders --------------------------------------------------------------------------------------------------------

async function showOrders(view, params) {
  const since = params.get("since") ? Date.parse(params.get("since") + "T00:00:00Z") : undefined;
  const until = params.get("until") ? Date.parse(params.get("until") + "T23:59:59.999Z") : undefined;
  const page = await api(query("/v1/orders", { limit: 100, status: params.get("status"), channel: params.get("channel"),
    location: params.get("location"), created_min: since, created_max: until }));
  const rows = page.items.map((o) => ({ order_id: o.order_id, status: o.status, channel: o.channel,
    locations: o.locations.join(", "), total: (o.total / 100).toFixed(2) + " " + o.currency, created: time(o.created_ms) }));
  draw(view, el("h2", {}, "Orders"),
    filterForm([["status", "status"], ["channel", "channel"], ["location", "location"],
      ["since", "from day", "date"], ["until", "to day", "date"]], params, "orders"),
    table(rows, null, { id: "orders", cell: (row, c) => c === "order_id" ? link("#order/" + row.order_id, row.order_id) : row[c] }),
    page.next_cursor ? el("p", {}, "showing the first 100; narrow the filters to see others") : "");
}

async function showOrder(view, orderId) {
  const order = await api("/v1/orders/" + encodeURIComponent(orderId));
  const invoices = await optional(query("/v1/invoices", { order_id: orderId }), { items: [] });
  const actions = el("p", { class: "actions" });
  const act = (verb) => el("button", { type: "button", id: verb, onclick: async (event) => {
    event.target.disabled = true;
    try {
      const done = await api(`/v1/orders/${encodeURIComponent(orderId)}/${verb}?wait=commit`, { method: "POST", body: "{}" });
      if (done.status === "rejected") throw new Error(done.reason);
      await route();
    } catch (error) {
      event.target.disabled = false;
      actions.append(el("span", { class: "error" }, " " + error.message));
    }
  } }, verb);
  if (order.status === "on_hold") actions.append(act("approve"));
  if (order.status === "intercepted") actions.append(act("release"));
  actions.append(el("button", { type: "button", id: "proof", onclick: (event) =>
    download("/v1/proofs/order/" + encodeURIComponent(orderId), `proof-${orderId}.json`, event.target) }, "Download proof"));
  const byLocation = {};
  for (const f of order.fulfilments) (byLocation[f.location] = byLocation[f.location] || []).push(f);
  draw(view, 
    el("h2", {}, "Order ", el("span", { id: "order-id" }, order.order_id), " ", el("span", { id: "order-status", class: "status" }, order.status)),
    el("p", {}, `${order.channel} · ${(order.total / 100).toFixed(2)} ${order.currency} · placed ${time(order.created_ms)}`),
    actions,
    section("Status history", el("ol", { class: "timeline" }, order.history.map((s) =>
      el("li", {}, el("time", {}, time(s.time_ms)), ` ${s.from || "-"} → ${s.to}`, el("span", { class: "by" }, ` by ${s.by}`),
        s.reason ? ` (${s.reason})` : "")))),
    section("Fulfilments by location", Object.keys(byLocation).length
      ? el("ul", { id: "fulfilments" }, Object.entries(byLocation).map(([place, list]) => el("li", {}, el("strong", {}, place), " ",
        list.map((f) => `${f.fulfilment_id} ${f.status} (${f.lines.reduce((n, line) => n + line.qty, 0)} units)`).join("; "))))
      : el("p", {}, "none")),
    section("Invoices and credit notes", table((invoices.items || []).map((d) => ({ number: d.number,
      kind: d.credit_note ? "credit note" : "invoice", total: (d.total / 100).toFixed(2) + " " + d.currency })), ["number", "kind", "total"],
    { id: "invoices" })));
}

// -- inventory -----------------------------------------------------------------------------------------------------

async function readAll(path, params, most = 2000) {
  const items = [];
  let cursor = null;
  do {
    const page = await api(query(path, { ...params, limit: 500, cursor }));
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < most);
  return items;
}

async function showInventory(view) {
  const rows = await readAll("/v1/inventory", {});
  const locations = [...new Set(rows.map((r) => r.location))].sort();
  const skus = [...new Set(rows.map((r) => r.sku))].sort();
  const at = Object.fromEntries(rows.map((r) => [r.location + "\u0000" + r.sku, r]));
  const max = Math.max(1, ...rows.map((r) => r.available));
  const low = rows.filter((r) => r.safety > 0 && r.available < r.safety);
  const heat = el("table", { id: "heatmap", class: "heatmap" },
    el("tr", {}, el("th", {}, "SKU \\ location"), locations.map((l) => el("th", {}, l))),
    skus.map((sku) => el("tr", {}, el("th", {}, link("#journal/" + encodeURIComponent(sku), sku)), locations.map((loc) => {
      const row = at[loc + "\u0000" + sku];
      if (!row) return el("td", { class: "none" }, "");
      const share = row.available / max;
      const isLow = row.safety > 0 && row.available < row.safety;
      return el("td", { "data-location": loc, "data-sku": sku, class: isLow ? "low" : "",
        css: { background: `hsl(212, 60%, ${Math.round(96 - share * 50)}%)` },
        title: `on hand ${row.on_hand}, reserved ${row.reserved}, safety ${row.safety}` }, row.available, isLow ? " ⚑" : "");
    }))));
  draw(view, el("h2", {}, "Inventory"),
    el("p", {}, "Available units by location and SKU (darker: more); ⚑ below safety stock. A SKU opens its stock journal."),
    heat,
    section("Low stock", table(low.map((r) => ({ location: r.location, sku: r.sku, available: r.available, safety: r.safety })),
      ["location", "sku", "available", "safety"], { id: "low-stock" })),
    section("Trace a lot", el("form", { class: "filters", onsubmit: (event) => {
      event.preventDefault();
      location.hash = "lot/" + encodeURIComponent(event.target.elements.lot.value);
    } }, el("input", { name: "lot", placeholder: "lot", required: true }), el("button", { type: "submit" }, "Trace"))));
}

async function showJournal(view, sku, params) {
  const entries = await api(query("/v1/journal", { sku, location: params.get("location"), kind: params.get("kind"), limit: 200 }));
  const rows = entries.items.map((e) => ({ seq: e.seq, time: time(e.time_ms), location: e.location, kind: e.kind, delta: e.delta,
    bucket: e.bucket, lot: e.lot || "", document: e.document || "", height: e.height }));
  draw(view, el("h2", {}, "Stock journal of ", el("span", { id: "journal-sku" }, sku)),
    filterForm([["location", "location"], ["kind", "kind (receipt, shipment, …)"]], params, "journal/" + encodeURIComponent(sku)),
    table(rows, ["seq", "time", "location", "kind", "delta", "bucket", "lot", "document", "height"], { id: "journal",
      cell: (row, c) => c === "lot" && row.lot ? link("#lot/" + encodeURIComponent(row.lot), row.lot) : row[c] }));
}

async function showLot(view, lot) {
  const trace = await api("/v1/trace/" + encodeURIComponent(lot));
  draw(view, el("h2", {}, "Chain of custody of lot ", el("span", { id: "lot-id" }, trace.lot)),
    el("ol", { id: "trace", class: "timeline" }, trace.items.map((s) => el("li", {}, el("time", {}, time(s.time_ms)),
      ` ${s.kind} ${s.delta > 0 ? "+" : ""}${s.delta} ${s.sku} at ${s.location}${s.org ? " (" + s.org + ")" : ""}, ${s.document}`,
      s.order_id ? [" for ", link("#order/" + s.order_id, s.order_id)] : "", ` · block ${s.height}`))));
}

// -- channels ------------------------------------------------------------------------------------------------------

async function showChannels(view) {
  const activity = await api("/v1/activity");
  const deliveries = await optional("/v1/webhooks/deliveries?failed=true", null);
  const canReplay = viewer && viewer.scopes.includes("webhooks:write") && viewer.roles.includes("operator");
  const rows = activity.channels.map((c) => ({ channel: c.channel, org: c.org, committed: c.orders_committed, refused: c.orders_refused,
    last_order: time(c.last_order_ms), lag: c.last_order_ms == null ? "" : seconds(activity.now_ms - c.last_order_ms) }));
  const replay = (delivery) => el("button", { type: "button", class: "replay", onclick: async (event) => {
    event.target.disabled = true;
    try { await api(`/v1/webhooks/deliveries/${encodeURIComponent(delivery.id)}/replay`, { method: "POST", body: "{}" }); await route(); }
    catch (error) { event.target.after(el("span", { class: "error" }, " " + error.message)); }
  } }, "Replay");
  const dead = deliveries ? deliveries.items.filter((d) => d.status === "dead") : [];
  draw(view, el("h2", {}, "Channels"),
    el("p", {}, "Orders each channel placed since this node started, and the time since its last order committed here."),
    table(rows, ["channel", "org", "committed", "refused", "last_order", "lag"], { id: "channels" }),
    section("Dead letters (webhook deliveries that ran out of attempts)", deliveries === null
      ? el("p", {}, "this token may not read the webhook deliveries")
      : table(dead.map((d) => ({ id: d.id, type: d.type, attempts: d.attempts, last_error: d.last_error, created: time(d.created_ms), d })),
        ["id", "type", "attempts", "last_error", "created", ...(canReplay ? ["replay"] : [])],
        { id: "dead-letters", cell: (row, c) => c === "replay" ? replay(row.d) : row[c] })));
}

// -- charts and analytics ------------------------------------------------------------------------------------------

async function showCharts(view) {
  const activity = await api("/v1/activity");
  const minutes = 30, since = activity.now_ms - minutes * 60_000;
  const orders = await readAll("/v1/orders", { created_min: since }, 5000);
  const perMinute = Array.from({ length: minutes }, (_, i) => ({ end: since + (i + 1) * 60_000, orders: 0 }));
  for (const o of orders) {
    const i = Math.floor((o.created_ms - since) / 60_000);
    if (i >= 0 && i < minutes) perMinute[i].orders += 1;
  }
  const commits = activity.commits.slice(-60);
  draw(view, el("h2", {}, "Charts"),
    section("Orders per minute (last 30 minutes)", barChart("orders-per-minute", perMinute, (m) => time(m.end).slice(11, 16), (m) => m.orders)),
    section("Commit latency (proposal to commit, last 60 blocks)", barChart("commit-latency", commits, (c) => c.height, (c) => c.latency_ms, " ms")),
    section("Block size (txs, last 60 blocks)", barChart("block-size", commits, (c) => c.height, (c) => c.txs)),
    section("Fulfilment load (open fulfilments per location)",
      barChart("fulfilment-load", activity.backlog, (b) => b.location, (b) => b.open)));
}

async function showAnalytics(view) {
  const [byDay, byChannel, byLocation, times, outcomes, allocation] = await Promise.all([
    api("/v1/analytics/sales?by=day"), api("/v1/analytics/sales?by=channel"), api("/v1/analytics/sales?by=location"),
    api("/v1/analytics/times"), api("/v1/analytics/outcomes"), api("/v1/analytics/allocation")]);
  const csv = (path, name) => el("a", { href: "#", class: "csv", onclick: (e) => { e.preventDefault(); download(path, name, e.target); } }, "CSV");
  draw(view, el("h2", {}, "Analytics"),
    section("Orders per day", barChart("orders-per-day", byDay.rows, (r) => r.day.slice(5), (r) => r.orders)),
    section(["Sales by channel ", csv("/v1/analytics/sales?by=channel&format=csv", "sales-by-channel.csv")], table(byChannel.rows, null, { id: "sales-by-channel" })),
    section("Fulfilments by location", barChart("fulfilments-by-location", byLocation.rows, (r) => r.location, (r) => r.fulfilments)),
    section("Order to ship and delivery (ms, bucket bounds)", table(times.rows, null, { id: "times" })),
    section("Outcomes", table(outcomes.rows, null, { id: "outcomes" })),
    section("Allocation", table(allocation.rows, null, { id: "allocation" })));
}

// Save what `path` answers as the file `name`; a refusal is shown after `near`.
async function download(path, name, near) {
  const answer = await fetch(path, { headers: authorization() });
  if (!answer.ok) {
    const body = await answer.json().catch(() => ({}));
    near.after(el("span", { class: "error" }, " " + (body.message || answer.statusText)));
    return;
  }
  const file = el("a", { href: URL.createObjectURL(await answer.blob()), download: name });
  document.body.append(file);
  file.click();
  file.remove();
}

// -- routing and live updates --------------------------------------------------------------------------------------

const VIEWS = {
  network: (view) => showNetwork(view),
  orders: (view, rest) => showOrders(view, new URLSearchParams(rest || "")),
  order: (view, rest) => showOrder(view, decodeURIComponent(rest)),
  inventory: (view) => showInventory(view),
  journal: (view, rest) => {
    const [sku, params] = rest.split(/\?(.*)/s);
    return showJournal(view, decodeURIComponent(sku), new URLSearchParams(params || ""));
  },
  lot: (view, rest) => showLot(view, decodeURIComponent(rest)),
  channels: (view) => showChannels(view),
  charts: (view) => showCharts(view),
  analytics: (view) => showAnalytics(view),
};

// Views drawn again at every poll (peers' health and dead letters move without a commit); the others, the
// charts among them (whose figures move only with commits, and read up to thousands of orders), at each new block.
const LIVE = new Set(["network", "channels"]);

function currentView() {
  return (location.hash.slice(1) || "orders").split(/[/?](.*)/s);
}

async function route() {
  if (!sessionStorage.getItem(TOKEN_KEY)) return;
  const view = document.getElementById("view");
  const [name, rest] = currentView();
  const show = VIEWS[name] || VIEWS.orders;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("current", a.getAttribute("href") === "#" + name);
  drawing = true;
  try {
    await show(view, rest || "");
  } catch (error) {
    draw(view, el("p", { class: "error", id: "view-error" }, error.message));
  } finally {
    drawing = false;
  }
}

function isEditing() {
  const active = document.activeElement;
  return active && active.closest && active.closest("#view form");
}

async function poll() {
  if (!sessionStorage.getItem(TOKEN_KEY)) return;
  const live = document.getElementById("live");
  try {
    const status = await api("/v1/status");
    if (!viewer) viewer = (await api("/v1/activity")).viewer;
    live.textContent = `${status.node_id} · height ${status.height} · view ${status.view} · ${viewer.identity} (${viewer.org})`;
    live.className = "up";
    const moved = lastHeight !== null && status.height !== lastHeight;
    lastHeight = status.height;
    const stale = moved || LIVE.has(currentView()[0]) || document.getElementById("view-error");
    if (stale && !drawing && !isEditing()) await route();
  } catch (error) {
    live.textContent = "node unreachable: " + error.message;
    live.className = "down";
  }
}

function start() {
  const signedIn = Boolean(sessionStorage.getItem(TOKEN_KEY));
  document.getElementById("signin").hidden = signedIn;
  document.getElementById("nav").hidden = !signedIn;
  viewer = null;
  if (signedIn) { route(); poll(); } else document.getElementById("view").replaceChildren();
}

document.getElementById("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value);
  try { await api("/v1/activity"); document.getElementById("signin-error").textContent = ""; start(); }
  catch (error) { sessionStorage.removeItem(TOKEN_KEY); document.getElementById("signin-error").textContent = error.message; }
});
document.getElementById("signout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  document.getElementById("live").textContent = "";
  start();
});
window.addEventListener("hashchange", route);
setInterval(poll, POLL_MS);
start();
