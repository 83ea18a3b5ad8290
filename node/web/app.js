"use strict";
// The node's web page: reads and acts through the node's own API with the token the user signs in with.
// Everything shown is built as DOM text (never HTML from the ledger), and refreshed when a block commits.

const TOKEN_KEY = "oms-token";
const POLL_MS = 3000;
let lastHeight = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    node.append(child instanceof Node ? child : document.createTextNode(child == null ? "" : String(child)));
  }
  return node;
}

async function api(path, options = {}) {
  const headers = { authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const answer = await fetch(path, { method: options.method || "GET", headers, body: options.body });
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(body.message || answer.statusText);
  return body;
}

function table(rows, columns, link) {
  columns = columns || (rows.length ? Object.keys(rows[0]) : []);
  return el("table", {},
    el("tr", {}, columns.map((c) => el("th", {}, c))),
    rows.map((row) => el("tr", {}, columns.map((c, i) =>
      el("td", {}, i === 0 && link ? el("a", { href: link(row) }, row[c]) : row[c])))));
}

function barChart(points, label, value) {
  const width = 640, height = 160, max = Math.max(1, ...points.map(value));
  const step = width / Math.max(points.length, 1);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", width); svg.setAttribute("height", height + 20);
  points.forEach((point, i) => {
    const h = Math.round((value(point) / max) * height);
    const bar = document.createElementNS(svg.namespaceURI, "rect");
    for (const [k, v] of Object.entries({ class: "bar", x: i * step + 2, y: height - h, width: step - 4, height: h })) bar.setAttribute(k, v);
    const text = document.createElementNS(svg.namespaceURI, "text");
    text.setAttribute("x", i * step + 2); text.setAttribute("y", height + 14); text.textContent = label(point);
    svg.append(bar, text);
  });
  return svg;
}

async function showNetwork(view) {
  const status = await api("/v1/status");
  view.replaceChildren(el("h2", {}, "Network"), table([{
    node: status.node_id, height: status.height, view: status.view, primary: status.primary,
    validators: status.validators.join(", "), mempool: status.mempool, voting: status.voting,
  }]));
}

async function showOrders(view, params) {
  const query = new URLSearchParams({ limit: "50" });
  for (const name of ["status", "channel", "location", "since"]) if (params.get(name)) query.set(name, params.get(name));
  const page = await api("/v1/orders?" + query);
  const inputs = ["status", "channel", "location"].map((name) => el("input", { name, placeholder: name, value: params.get(name) || "" }));
  const form = el("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const input of inputs) if (input.value) chosen.set(input.name, input.value);
    location.hash = "orders?" + chosen;
  } }, inputs, el("button", { type: "submit" }, "Filter"));
  const rows = page.items.map((o) => ({ order_id: o.order_id, status: o.status, channel: o.channel, total: o.total, currency: o.currency }));
  view.replaceChildren(el("h2", {}, "Orders"), form, table(rows, null, (row) => "#order/" + row.order_id));
}

async function showOrder(view, orderId) {
  const order = await api("/v1/orders/" + encodeURIComponent(orderId));
  const invoices = await api("/v1/invoices?order_id=" + encodeURIComponent(orderId)).catch(() => ({ items: [] }));
  const actions = el("p", {});
  const act = (verb) => el("button", { type: "button", id: verb, onclick: async () => {
    try {
      const done = await api(`/v1/orders/${encodeURIComponent(orderId)}/${verb}?wait=commit`, { method: "POST", body: "{}" });
      if (done.status === "rejected") throw new Error(done.reason);
      route();
    }
    catch (error) { actions.append(el("span", { class: "error" }, " " + error.message)); }
  } }, verb);
  if (order.status === "on_hold") actions.append(act("approve"));
  if (order.status === "intercepted") actions.append(act("release"));
  view.replaceChildren(
    el("h2", {}, "Order ", el("span", { id: "order-id" }, order.order_id), " ", el("span", { id: "order-status" }, order.status)),
    actions,
    el("h3", {}, "Status history"),
    el("ol", { class: "timeline" }, order.history.map((s) =>
      el("li", {}, `${new Date(s.time_ms).toISOString()} ${s.from || "-"} → ${s.to} by ${s.by} ${s.reason || ""}`))),
    el("h3", {}, "Fulfilments"),
    table(order.fulfilments.map((f) => ({ fulfilment: f.fulfilment_id, location: f.location, status: f.status,
      units: f.lines.reduce((n, line) => n + line.qty, 0) }))),
    el("h3", {}, "Invoices and credit notes"),
    table((invoices.items || []).map((d) => ({ number: d.number, credit_note: d.credit_note, total: d.total }))));
}

async function showAnalytics(view) {
  const [byDay, byChannel, times, outcomes, allocation] = await Promise.all([
    api("/v1/analytics/sales?by=day"), api("/v1/analytics/sales?by=channel"), api("/v1/analytics/times"),
    api("/v1/analytics/outcomes"), api("/v1/analytics/allocation")]);
  view.replaceChildren(el("h2", {}, "Analytics"),
    el("h3", {}, "Orders per day"), barChart(byDay.rows, (r) => r.day.slice(5), (r) => r.orders),
    el("h3", {}, "Sales by channel ", el("a", { href: "#", onclick: (e) => { e.preventDefault(); download("/v1/analytics/sales?by=channel&format=csv"); } }, "CSV")),
    table(byChannel.rows), el("h3", {}, "Order to ship and delivery (ms)"), table(times.rows),
    el("h3", {}, "Outcomes"), table(outcomes.rows), el("h3", {}, "Allocation"), table(allocation.rows));
}

async function download(path) {
  const answer = await fetch(path, { headers: { authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) } });
  const link = el("a", { href: URL.createObjectURL(await answer.blob()), download: "analytics.csv" });
  link.click();
}

async function route() {
  const view = document.getElementById("view");
  const [name, rest] = (location.hash.slice(1) || "orders").split(/[/?](.*)/s);
  try {
    if (name === "network") await showNetwork(view);
    else if (name === "order") await showOrder(view, rest);
    else if (name === "analytics") await showAnalytics(view);
    else await showOrders(view, new URLSearchParams(rest || ""));
  } catch (error) {
    view.replaceChildren(el("p", { class: "error" }, error.message));
  }
}

async function poll() {
  if (!sessionStorage.getItem(TOKEN_KEY)) return;
  try {
    const status = await api("/v1/status");
    document.getElementById("live").textContent = `height ${status.height}, view ${status.view}`;
    if (lastHeight !== null && status.height !== lastHeight) route();
    lastHeight = status.height;
  } catch (error) {
    document.getElementById("live").textContent = "node unreachable: " + error.message;
  }
}

function start() {
  const signedIn = Boolean(sessionStorage.getItem(TOKEN_KEY));
  document.getElementById("signin").hidden = signedIn;
  document.getElementById("nav").hidden = !signedIn;
  if (signedIn) route(); else document.getElementById("view").replaceChildren();
}

document.getElementById("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value);
  try { await api("/v1/orders?limit=1"); start(); }
  catch (error) { sessionStorage.removeItem(TOKEN_KEY); document.getElementById("signin-error").textContent = error.message; }
});
document.getElementById("signout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); start(); });
window.addEventListener("hashchange", route);
setInterval(poll, POLL_MS);
start();
