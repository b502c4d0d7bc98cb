// The meshy bridge dashboard: a small rosbridge v2 client over the browser's WebSocket and the
// bridge's REST API, no libraries. It polls /api/nodes, /api/topics and /api/services for the graph,
// samples topic rates a few topics at a time, echoes a chosen topic (with pause and filter), publishes
// JSON messages and calls services with JSON arguments. views.js adds plots, the image view, the
// teleop pad and the node/topic graph.
"use strict";

const POLL_MS = 2000;           // how often the graph is refreshed
const CALL_TIMEOUT_MS = 10000;  // a service call without an answer by then fails
const SAMPLE_MS = 2000;         // a topic's rate is measured over a subscription this long
const SAMPLE_AT_ONCE = 4;       // topics sampled at the same time (the rest wait their turn)
const MAX_ECHO_LINES = 200;     // echo lines kept on the page
const ROSAPI_SERVICES = ["/rosapi/topics", "/rosapi/services", "/rosapi/nodes", "/rosapi/node_details",
                         "/rosapi/topic_type", "/rosapi/service_type", "/rosapi/publishers"];

/// A rosbridge v2 connection that reconnects by itself and restores its subscriptions.
class Rosbridge {
  constructor(url, onState) {
    this.url = url;
    this.onState = onState;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();        // call id -> {resolve, reject, timer}
    this.subscriptions = new Map();  // subscription id -> {topic, type, callback}
    this.fragments = new Map();      // fragment id -> {total, parts}
    this.statusHandler = () => {};
    this.retryMs = 500;
    this.open();
  }

  get connected() { return this.ws !== null && this.ws.readyState === WebSocket.OPEN; }

  open() {
    this.onState("connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.retryMs = 500;
      this.onState("connected");
      for (const [id, s] of this.subscriptions) this.sendSubscribe(id, s);
    };
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onState("disconnected");
      for (const [, call] of this.pending) {
        clearTimeout(call.timer);
        call.reject(new Error("connection closed"));
      }
      this.pending.clear();
      this.fragments.clear();
      setTimeout(() => this.open(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    };
  }

  send(message) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  id(prefix) { return `${prefix}:${this.nextId++}`; }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch (e) {
      this.statusHandler({level: "error", msg: `unparsable message from the bridge: ${e.message}`});
      return;
    }
    switch (message.op) {
      case "fragment": return this.receiveFragment(message);
      case "publish": {
        for (const [, s] of this.subscriptions) {
          if (s.topic === message.topic) s.callback(message.msg);
        }
        return;
      }
      case "service_response": {
        const call = this.pending.get(message.id);
        if (!call) return;
        this.pending.delete(message.id);
        clearTimeout(call.timer);
        if (message.result === false) {
          call.reject(new Error(typeof message.values === "string" ? message.values : JSON.stringify(message.values)));
        } else {
          call.resolve(message.values);
        }
        return;
      }
      case "status": return this.statusHandler(message);
      default: return;
    }
  }

  receiveFragment(message) {
    let f = this.fragments.get(message.id);
    if (!f) {
      f = {total: message.total, parts: new Array(message.total), count: 0};
      this.fragments.set(message.id, f);
    }
    if (message.num < 0 || message.num >= f.total || f.parts[message.num] !== undefined) return;
    f.parts[message.num] = message.data;
    if (++f.count === f.total) {
      this.fragments.delete(message.id);
      this.receive(f.parts.join(""));
    }
  }

  /// Calls a service; resolves with its values, rejects with the bridge's error.
  call(service, args = {}) {
    return new Promise((resolve, reject) => {
      const id = this.id("call");
      if (!this.send({op: "call_service", id, service, args})) {
        reject(new Error("not connected"));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer from ${service} within ${CALL_TIMEOUT_MS / 1000} s`));
      }, CALL_TIMEOUT_MS);
      this.pending.set(id, {resolve, reject, timer});
    });
  }

  /// Subscribes (again after each reconnect); returns the id unsubscribe takes.
  subscribe(topic, callback, type) {
    const id = this.id("subscribe");
    const s = {topic, type, callback};
    this.subscriptions.set(id, s);
    this.sendSubscribe(id, s);
    return id;
  }

  sendSubscribe(id, s) {
    const message = {op: "subscribe", id, topic: s.topic};
    if (s.type) message.type = s.type;
    this.send(message);
  }

  unsubscribe(id) {
    const s = this.subscriptions.get(id);
    if (!s) return;
    this.subscriptions.delete(id);
    this.send({op: "unsubscribe", id, topic: s.topic});
  }

  publish(topic, msg, type) {
    if (!this.connected) throw new Error("not connected");
    if (type) this.send({op: "advertise", id: this.id("advertise"), topic, type});
    this.send({op: "publish", id: this.id("publish"), topic, msg});
  }
}

// ---- page helpers ----

const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, text = undefined) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function pageToken() {
  return new URLSearchParams(location.search).get("token");
}

function bridgeUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const token = pageToken();
  return `${scheme}//${location.host}/` + (token !== null ? `?token=${encodeURIComponent(token)}` : "");
}

/// GET (or POST with a JSON body) on the bridge's REST API; resolves with the JSON, rejects with its error.
async function api(path, body = undefined) {
  const headers = {};
  const token = pageToken();
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  const init = {headers, cache: "no-store"};
  if (body !== undefined) {
    init.method = "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(json.error || `${path}: HTTP ${response.status}`);
  return json;
}

/// A topic's name in a URL path: '/' kept (the bridge takes names with slashes), the rest encoded.
function topicPath(topic) {
  return topic.replace(/^\/+/, "").split("/").map(encodeURIComponent).join("/");
}

function showResult(node, state, text) {
  node.dataset.state = state;
  node.className = `result ${state}`;
  node.textContent = text;
}

function formatTime(date) {
  return date.toTimeString().slice(0, 8) + "." + String(date.getMilliseconds()).padStart(3, "0");
}

// ---- state ----

const bridge = new Rosbridge(bridgeUrl(), (state) => {
  const c = $("connection");
  c.textContent = state;
  c.className = `state-${state}`;
  c.dataset.state = state;
  if (state === "connected") poll();
});
bridge.statusHandler = (status) => {
  const s = $("server-status");
  s.textContent = `${status.level || "info"}: ${status.msg || ""}`;
  s.className = `level-${status.level || "info"}`;
};

const rates = new Map();  // topic -> {hz, total, sampledAt, sample: {id, start, count} | null}
let echo = null;          // {id, topic, paused, held}
let polling = false;
let lastGraph = {nodes: [], topics: [], services: []};
const graphListeners = [];  // views.js: called with each polled graph

// ---- graph: nodes, topics, services ----

async function poll() {
  if (polling || !bridge.connected) return;
  polling = true;
  try {
    const [nodes, topics, services] = await Promise.all([api("/api/nodes"), api("/api/topics"), api("/api/services")]);
    lastGraph = {nodes, topics, services};
    renderNodes(nodes);
    renderTopics(topics);
    renderServices(services);
    for (const listener of graphListeners) listener(lastGraph);
  } catch (e) {
    bridge.statusHandler({level: "error", msg: e.message});
  } finally {
    polling = false;
  }
}

function list(items) {
  const cell = element("td");
  for (const item of items || []) cell.append(element("span", {class: "chip"}, item));
  return cell;
}

function renderNodes(nodes) {
  const body = $("nodes").tBodies[0];
  body.replaceChildren();
  for (const n of nodes) {
    const name = "/" + n.name.replace(/^\/+/, "");
    const row = element("tr", {"data-testid": "node-row", "data-node": name});
    row.append(element("td", {class: "name", title: `${n.host} ${n.transport}`}, name), list(n.publishes),
               list(n.listens), list(n.services));
    body.append(row);
  }
  $("nodes-count").textContent = `(${nodes.length})`;
}

function renderTopics(topics) {
  const names = topics.map((t) => t.name);
  const wanted = new Set(names);
  $("topic-names").replaceChildren(...names.map((t) => element("option", {value: t})));
  for (const [topic, r] of rates) {
    if (!wanted.has(topic)) {
      if (r.sample) bridge.unsubscribe(r.sample.id);
      rates.delete(topic);
    }
  }
  for (const topic of names) {
    if (!rates.has(topic)) rates.set(topic, {hz: null, total: 0, sampledAt: 0, sample: null});
  }
  // Rows are kept from one poll to the next (updated in place), so what points at them stays valid.
  const body = $("topics").tBodies[0];
  const old = new Map([...body.rows].map((row) => [row.dataset.topic, row]));
  const rows = topics.map((t) => {
    let row = old.get(t.name);
    if (!row) {
      row = element("tr", {"data-testid": "topic-row", "data-topic": t.name});
      const echoButton = element("button", {type: "button", class: "small"}, "echo");
      echoButton.addEventListener("click", () => startEcho(t.name));
      const action = element("td");
      action.append(echoButton);
      row.append(element("td", {class: "name"}, t.name), element("td", {"data-testid": "topic-type"}, ""),
                 element("td", {class: "num", "data-testid": "topic-rate"}, ""),
                 element("td", {class: "num", "data-testid": "topic-count"}, ""), action);
    }
    row.cells[0].title =
        `publishers: ${(t.publishers || []).join(", ") || "–"}; listeners: ${(t.listeners || []).join(", ") || "–"}`;
    row.cells[1].textContent = t.type || "";
    return row;
  });
  body.replaceChildren(...rows);
  updateRates();
}

// Rates are sampled, not watched: a few topics at a time get a subscription for SAMPLE_MS, and the
// rate shown is that sample's. A dashboard left open does not pull every topic at full rate.
function sampleRates() {
  const now = performance.now();
  let active = 0;
  for (const [, r] of rates) {
    if (!r.sample) continue;
    if (now - r.sample.start >= SAMPLE_MS) {
      bridge.unsubscribe(r.sample.id);
      r.hz = r.sample.count / ((now - r.sample.start) / 1000);
      r.sampledAt = now;
      r.sample = null;
    } else {
      active++;
    }
  }
  if (!$("rates-enabled").checked || !bridge.connected) return;
  const waiting = [...rates].filter(([, r]) => !r.sample).sort((a, b) => a[1].sampledAt - b[1].sampledAt);
  for (const [topic, r] of waiting) {
    if (active >= SAMPLE_AT_ONCE) break;
    const sample = {id: null, start: now, count: 0};
    sample.id = bridge.subscribe(topic, () => {
      sample.count++;
      r.total++;
    });
    r.sample = sample;
    active++;
  }
  updateRates();
}

function updateRates() {
  for (const row of $("topics").tBodies[0].rows) {
    const r = rates.get(row.dataset.topic);
    const rate = row.querySelector('[data-testid="topic-rate"]');
    const count = row.querySelector('[data-testid="topic-count"]');
    if (!r || r.hz === null || !$("rates-enabled").checked) {
      rate.textContent = "–";
      count.textContent = "";
      continue;
    }
    rate.textContent = r.hz.toFixed(r.hz < 10 ? 1 : 0);
    count.textContent = String(r.total);
  }
}

function renderServices(services) {
  const names = services.map((s) => s.name);
  if ($("rosapi-shown").checked) names.push(...ROSAPI_SERVICES);
  const sorted = [...new Set(names)].sort();
  $("services").replaceChildren(...sorted.map((s) => {
    const li = element("li", {"data-testid": "service-item", "data-service": s});
    const link = element("a", {href: "#call-panel"}, s);
    link.addEventListener("click", () => { $("call-service").value = s; });
    li.append(link);
    return li;
  }));
  $("service-names").replaceChildren(...sorted.map((s) => element("option", {value: s})));
}

// ---- echo ----

function echoLine(entry) {
  const line = element("div", {class: "echo-message", "data-testid": "echo-message"});
  line.append(element("span", {class: "time"}, formatTime(entry.time)), document.createTextNode(" " + entry.text));
  return line;
}

function echoMatches(entry) {
  const filter = $("echo-filter").value;
  return filter === "" || entry.text.includes(filter);
}

// The last MAX_ECHO_LINES messages are kept; the page shows those the filter matches. Paused, the page
// stands still while messages are still kept (and shown on resume).
function renderEcho() {
  const output = $("echo-output");
  if (!echo) return;
  output.replaceChildren(...echo.held.filter(echoMatches).map(echoLine));
  output.scrollTop = output.scrollHeight;
}

function startEcho(topic) {
  stopEcho();
  $("echo-topic").value = topic;
  const output = $("echo-output");
  echo = {topic, paused: false, held: [], id: null, received: 0};
  const current = echo;
  current.id = bridge.subscribe(topic, (msg) => {
    const entry = {time: new Date(), text: JSON.stringify(msg)};
    current.held.push(entry);
    output.dataset.received = String(++current.received);
    if (current.held.length > MAX_ECHO_LINES) current.held.shift();
    if (current.paused || !echoMatches(entry)) return;
    output.append(echoLine(entry));
    while (output.childElementCount > MAX_ECHO_LINES) output.firstElementChild.remove();
    output.scrollTop = output.scrollHeight;
  });
  $("echo-stop").disabled = false;
  $("echo-pause").disabled = false;
  $("echo-pause").textContent = "Pause";
  output.dataset.topic = topic;
  output.dataset.paused = "false";
}

function stopEcho() {
  if (echo) bridge.unsubscribe(echo.id);
  echo = null;
  $("echo-stop").disabled = true;
  $("echo-pause").disabled = true;
}

function togglePause() {
  if (!echo) return;
  echo.paused = !echo.paused;
  $("echo-pause").textContent = echo.paused ? "Resume" : "Pause";
  $("echo-output").dataset.paused = String(echo.paused);
  if (!echo.paused) renderEcho();
}

// ---- forms ----

function parseJson(text, what) {
  try {
    return JSON.parse(text.trim() === "" ? "{}" : text);
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${e.message}`);
  }
}

$("echo-form").addEventListener("submit", (event) => {
  event.preventDefault();
  startEcho($("echo-topic").value.trim());
});
$("echo-stop").addEventListener("click", stopEcho);
$("echo-clear").addEventListener("click", () => {
  if (echo) echo.held = [];
  $("echo-output").replaceChildren();
});
$("echo-pause").addEventListener("click", togglePause);
$("echo-filter").addEventListener("input", renderEcho);
$("rates-enabled").addEventListener("change", updateRates);
$("rosapi-shown").addEventListener("change", () => renderServices(lastGraph.services));

$("publish-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const result = $("publish-result");
  try {
    const msg = parseJson($("publish-msg").value, "the message");
    bridge.publish($("publish-topic").value.trim(), msg, $("publish-type").value.trim());
    showResult(result, "ok", `published at ${formatTime(new Date())}`);
  } catch (e) {
    showResult(result, "error", e.message);
  }
});

$("call-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const result = $("call-result");
  try {
    const args = parseJson($("call-args").value, "the arguments");
    showResult(result, "pending", "calling…");
    const values = await bridge.call($("call-service").value.trim(), args);
    showResult(result, "ok", JSON.stringify(values, null, 2));
  } catch (e) {
    showResult(result, "error", e.message);
  }
});

setInterval(poll, POLL_MS);
setInterval(sampleRates, 500);
