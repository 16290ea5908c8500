// The dashboard: read-only views of features, their history, checkouts, jobs and clusters.
// Every number comes from POST /rpc; text goes into the page as text nodes, never as HTML.

import * as auth from "./auth.js";
import { draw, series } from "./chart.js";
import { call, FORBIDDEN, METHOD_NOT_FOUND, RpcError, UNAUTHENTICATED } from "./rpc.js";

const REFRESH_MS = 30000;
const HOUR = 3600;
const $ = (id) => document.getElementById(id);

const state = { features: [], selected: null, range: 86400, chart: null };

// el("td", {className: "n"}, "text", child…): an element with properties and children.
function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function notice(message, kind = "info") {
  const box = $("notice");
  box.hidden = !message;
  box.className = `notice ${kind}`;
  box.replaceChildren(...(message ? [message] : []));
}

function table(headers, rows, { numeric = [], empty }) {
  if (!rows.length) return el("p", { className: "empty" }, empty);
  const head = el("tr", {}, ...headers.map((h, i) => el("th", { className: numeric.includes(i) ? "n" : "" }, h)));
  const body = rows.map((cells) =>
    el("tr", {}, ...cells.map((c, i) => el("td", { className: numeric.includes(i) ? "n" : "" }, c))),
  );
  return el("div", { className: "scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...body)));
}

function age(timestamp) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(timestamp)) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function featureName(f) {
  return `${f.product.name}.${f.name}`;
}

// Fill a section from loader(); a problem shows there as a sentence, never as a blank.
async function section(id, loader) {
  const body = $(id);
  try {
    body.replaceChildren(...[await loader()].flat());
  } catch (error) {
    if (error instanceof RpcError && error.code === UNAUTHENTICATED) {
      await sessionEnded(error);
      return;
    }
    body.replaceChildren(el("p", { className: "problem" }, explain(error)));
  }
}

function explain(error) {
  if (!(error instanceof RpcError)) return `Could not load: ${error.message}`;
  if (error.code === FORBIDDEN && error.data.required) {
    return `Your token lacks ${error.data.required}, which this view needs (${error.method}).`;
  }
  if (error.code === METHOD_NOT_FOUND) return `This server does not offer ${error.method} yet.`;
  return `${error.method}: ${error.message}`;
}

async function sessionEnded(error) {
  if (!auth.token()) return; // another view noticed first
  auth.signOut();
  await showSignIn(`Your session ended (${error.data.reason || error.message}).`);
}

function bar(f) {
  const parts = { used: f.used, booked: f.booked_total, reserved: f.reserved };
  const taken = f.used + f.booked_total + f.reserved;
  const scale = Math.max(f.total, taken, 1);
  const node = el("div", { className: "bar", role: "img" });
  node.setAttribute("aria-label", `${taken} of ${f.total} taken`);
  for (const [kind, value] of Object.entries(parts)) {
    if (value <= 0) continue;
    const segment = el("span", { className: kind, title: `${kind} ${value}` });
    segment.style.width = `${(100 * value) / scale}%`;
    node.append(segment);
  }
  if (taken > f.total) node.classList.add("over");
  return node;
}

function number(kind, label, value) {
  return el("div", { className: `num ${kind}` }, el("span", { className: "label" }, label), el("b", {}, String(value)));
}

function featureRow(f, clusterOf) {
  const available = f.total - f.used - f.booked_total - f.reserved;
  const row = el(
    "button",
    { type: "button", className: "feature" + (state.selected?.id === f.id ? " selected" : "") },
    el(
      "div",
      { className: "feature-head" },
      el("span", { className: "name" }, featureName(f)),
      el("span", { className: "cluster muted" }, clusterOf(f)),
    ),
    bar(f),
    el(
      "div",
      { className: "numbers" },
      number("total", "total", f.total),
      number("used", "used", f.used),
      number("booked", "booked", f.booked_total),
      number("reserved", "reserved", f.reserved),
      number("available" + (available < 0 ? " short" : ""), "available", available),
    ),
  );
  row.dataset.featureId = f.id;
  row.addEventListener("click", () => select(f));
  return row;
}

async function loadFeatures(token) {
  const features = await call(token, "features.list", { sort_field: "name" });
  let clusters = new Map();
  try {
    const configurations = await call(token, "configurations.list");
    clusters = new Map(configurations.map((c) => [c.id, c.cluster_client_id]));
  } catch (error) {
    if (!(error instanceof RpcError) || error.code !== FORBIDDEN) throw error;
  }
  features.sort((a, b) => featureName(a).localeCompare(featureName(b)));
  state.features = features;
  if (state.selected) state.selected = features.find((f) => f.id === state.selected.id) || null;
  if (!state.selected && features.length) state.selected = features[0];
  if (!features.length) return el("p", { className: "empty" }, "No features yet.");
  const clusterOf = (f) => clusters.get(f.config_id) || `configuration ${f.config_id}`;
  return el("div", { className: "features" }, ...features.map((f) => featureRow(f, clusterOf)));
}

async function loadHistory(token) {
  const f = state.selected;
  $("history-feature").textContent = f ? featureName(f) : "";
  if (!f) return el("p", { className: "empty" }, "Pick a feature.");
  const until = new Date();
  const since = new Date(until - state.range * 1000);
  const span = { since: since.toISOString(), until: until.toISOString() };
  // The server picks the history's step; refusals are kept per hour, so their step is
  // whole hours, at most about 200 blocks.
  const refusalStep = HOUR * Math.max(1, Math.ceil(state.range / HOUR / 200));
  const [history, refusals] = await Promise.all([
    call(token, "usage.history", { feature_id: f.id, ...span }),
    call(token, "usage.refusals", { feature_id: f.id, ...span, step: refusalStep }),
  ]);
  const calls = refusals.reduce((n, r) => n + r.refused_calls, 0);
  const licenses = refusals.reduce((n, r) => n + r.refused_licenses, 0);
  const chart = el("div", { className: "chart" });
  const reported = history.filter((p) => p.used !== null).length;
  chart.dataset.featureId = f.id;
  chart.dataset.range = state.range;
  chart.dataset.points = reported;
  chart.dataset.refused = licenses;
  const summary = el(
    "p",
    { className: "refusals" + (calls ? " some" : "") },
    calls
      ? `Refused in this range: ${plural(licenses, "license")} in ${plural(calls, "request")}.`
      : "No refused requests in this range.",
  );
  if (!reported && !refusals.length) {
    return [el("p", { className: "empty" }, "No reports in this range."), summary];
  }
  requestAnimationFrame(() => { // once the section holds the chart, so it has a width
    state.chart = draw(chart, series(history, refusals, refusalStep));
    chart.dataset.drawn = "true";
  });
  return [chart, summary];
}

async function loadCheckouts(token) {
  const f = state.selected;
  $("checkouts-feature").textContent = f ? featureName(f) : "";
  if (!f) return el("p", { className: "empty" }, "Pick a feature.");
  const checkouts = await call(token, "features.checkouts", { feature_id: f.id });
  return table(
    ["user", "host", "licenses", "reported"],
    checkouts.map((c) => [c.username, c.lead_host, String(c.quantity), age(c.reported_at)]),
    { numeric: [2], empty: "No checkouts reported for this feature." },
  );
}

async function loadByUser(token) {
  const rows = await call(token, "usage.by_user");
  return table(
    ["user", "feature", "licenses"],
    rows.map((r) => [r.username, r.product_feature, String(r.quantity)]),
    { numeric: [2], empty: "No checkouts reported." },
  );
}

async function loadJobs(token) {
  const jobs = (await call(token, "jobs.list", { sort_field: "created_at", sort_ascending: false })).filter(
    (j) => j.bookings.length,
  );
  const names = new Map(state.features.map((f) => [f.id, featureName(f)]));
  return table(
    ["Slurm job", "cluster", "user", "host", "licenses", "since"],
    jobs.map((j) => [
      j.slurm_job_id,
      j.cluster_client_id,
      j.username,
      j.lead_host,
      j.bookings.map((b) => `${names.get(b.feature_id) || `feature ${b.feature_id}`} × ${b.quantity}`).join(", "),
      age(j.created_at),
    ]),
    { empty: "No job holds a booking." },
  );
}

async function loadClusters(token) {
  const statuses = await call(token, "clusters.list_statuses");
  return table(
    ["cluster", "last report", "interval", "state"],
    statuses.map((s) => [
      s.cluster_client_id,
      age(s.last_reported),
      `${s.interval} s`,
      el("span", { className: `badge ${s.is_healthy ? "ok" : "late"}` }, s.is_healthy ? "healthy" : "late"),
    ]),
    { numeric: [2], empty: "No cluster has reported yet." },
  );
}

async function refresh() {
  const token = auth.token();
  if (!token) return;
  await section("features", () => loadFeatures(token));
  if (!auth.token()) return;
  await Promise.all([
    section("history", () => loadHistory(token)),
    section("checkouts", () => loadCheckouts(token)),
    section("by-user", () => loadByUser(token)),
    section("jobs", () => loadJobs(token)),
    section("clusters", () => loadClusters(token)),
  ]);
  if (!auth.token()) return;
  $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.loaded = "true";
}

function select(feature) {
  state.selected = feature;
  for (const row of document.querySelectorAll(".feature")) {
    row.classList.toggle("selected", row.dataset.featureId === String(feature.id));
  }
  const token = auth.token();
  section("history", () => loadHistory(token));
  section("checkouts", () => loadCheckouts(token));
}

function setRange(button) {
  state.range = Number(button.dataset.range);
  for (const b of document.querySelectorAll(".ranges button")) b.classList.toggle("active", b === button);
  section("history", () => loadHistory(auth.token()));
}

async function showSignIn(message) {
  for (const s of document.querySelectorAll("main section")) s.hidden = true;
  const config = await (await fetch("config.json")).json();
  const session = $("session");
  if (config.mode === "oidc") {
    const button = el("button", { type: "button", className: "primary" }, "Sign in");
    button.addEventListener("click", () => auth.startAuthorizationCode(config));
    session.replaceChildren(button);
    notice(message || "Sign in to see the licenses.");
  } else if (config.mode === "embedded") {
    session.replaceChildren();
    notice(message ? `${message} Run \`lmrpc ui\` on the server for a new sign-in link.` : "Run `lmrpc ui` on the server and open the link it prints.");
  } else {
    notice(`Sign-in is not available: ${config.reason}`, "error");
  }
  document.body.dataset.signedIn = "false";
}

function showSignedIn() {
  const out = el("button", { type: "button" }, "Sign out");
  out.addEventListener("click", () => {
    auth.signOut();
    showSignIn("Signed out.");
  });
  $("session").replaceChildren(out);
  for (const s of document.querySelectorAll("main section")) s.hidden = false;
  document.body.dataset.signedIn = "true";
}

async function main() {
  for (const b of document.querySelectorAll(".ranges button")) b.addEventListener("click", () => setRange(b));
  const problem = await auth.completeSignIn();
  if (problem || !auth.token()) {
    await showSignIn(problem);
    if (problem) notice(problem, "error");
    return;
  }
  notice(null);
  showSignedIn();
  await refresh();
  setInterval(refresh, REFRESH_MS);
  window.addEventListener("resize", () => {
    const chart = document.querySelector("#history .chart");
    if (state.chart && chart) state.chart.setSize({ width: chart.clientWidth, height: state.chart.height });
  });
}

main();
