// The meshy bridge dashboard: a small rosbridge v2 client over the browser's WebSocket, no libraries.
// It polls the rosapi services for nodes, topics and services, counts topic rates by subscribing,
// echoes a chosen topic, publishes JSON messages and calls services with JSON arguments.
"use strict";

const POLL_MS = 2000;           // how often the graph is refreshed
const CALL_TIMEOUT_MS = 10000;  // a service call without an answer by then fails
const RATE_WINDOW_MS = 5000;    // rates are averaged over this window
const MAX_RATE_TOPICS = 64;     // rate subscriptions are bounded
const MAX_NODES = 200;          // node_details calls per poll are bounded
const MAX_ECHO_LINES = 200;     // echo lines kept on the page

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

function bridgeUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const token = new URLSearchParams(location.search).get("token");
  return `${scheme}//${location.host}/` + (token !== null ? `?token=${encodeURIComponent(token)}` : "");
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

const rates = new Map();  // topic -> {id, arrivals: [ms], total}
let echo = null;          // {id, topic}
let polling = false;

// ---- graph: nodes, topics, services ----

async function poll() {
  if (polling || !bridge.connected) return;
  polling = true;
  try {
    const [topics, nodes, services] = await Promise.all([
      bridge.call("/rosapi/topics"),
      bridge.call("/rosapi/nodes"),
      bridge.call("/rosapi/services").catch(() => ({services: []})),
    ]);
    const names = (nodes.nodes || []).slice(0, MAX_NODES);
    const details = await Promise.all(
        names.map((node) => bridge.call("/rosapi/node_details", {node}).catch(() => ({}))));
    renderNodes(names, details);
    renderTopics(topics.topics || [], topics.types || []);
    renderServices(services.services || [], details);
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

function renderNodes(names, details) {
  const body = $("nodes").tBodies[0];
  body.replaceChildren();
  names.forEach((name, i) => {
    const d = details[i] || {};
    const row = element("tr", {"data-testid": "node-row", "data-node": name});
    row.append(element("td", {class: "name"}, name), list(d.publishing), list(d.subscribing), list(d.services));
    body.append(row);
  });
  $("nodes-count").textContent = `(${names.length})`;
}

function renderTopics(topics, types) {
  const wanted = new Set(topics);
  const datalist = $("topic-names");
  datalist.replaceChildren(...topics.map((t) => element("option", {value: t})));
  // Rate subscriptions follow the topic list (bounded).
  for (const [topic, r] of rates) {
    if (!wanted.has(topic) || !$("rates-enabled").checked) {
      bridge.unsubscribe(r.id);
      rates.delete(topic);
    }
  }
  if ($("rates-enabled").checked) {
    for (const topic of topics) {
      if (rates.size >= MAX_RATE_TOPICS) break;
      if (rates.has(topic)) continue;
      const r = {id: null, arrivals: [], total: 0, since: performance.now()};
      r.id = bridge.subscribe(topic, () => {
        r.arrivals.push(performance.now());
        r.total++;
      });
      rates.set(topic, r);
    }
  }
  const body = $("topics").tBodies[0];
  body.replaceChildren();
  topics.forEach((topic, i) => {
    const row = element("tr", {"data-testid": "topic-row", "data-topic": topic});
    const echoButton = element("button", {type: "button", class: "small"}, "echo");
    echoButton.addEventListener("click", () => startEcho(topic));
    const action = element("td");
    action.append(echoButton);
    row.append(element("td", {class: "name"}, topic), element("td", {}, types[i] || ""),
               element("td", {class: "num", "data-testid": "topic-rate"}, ""),
               element("td", {class: "num", "data-testid": "topic-count"}, ""), action);
    body.append(row);
  });
  updateRates();
}

function updateRates() {
  const now = performance.now();
  for (const row of $("topics").tBodies[0].rows) {
    const r = rates.get(row.dataset.topic);
    const rate = row.querySelector('[data-testid="topic-rate"]');
    const count = row.querySelector('[data-testid="topic-count"]');
    if (!r) {
      rate.textContent = "–";
      count.textContent = "";
      continue;
    }
    while (r.arrivals.length && r.arrivals[0] < now - RATE_WINDOW_MS) r.arrivals.shift();
    // Over the window, or the time since the subscription when that is shorter (at least 1 s).
    const span = Math.max(1000, Math.min(RATE_WINDOW_MS, now - r.since));
    const hz = r.arrivals.length / (span / 1000);
    rate.textContent = hz.toFixed(hz < 10 ? 1 : 0);
    count.textContent = String(r.total);
  }
}

function renderServices(services, details) {
  const all = new Set(services);
  for (const d of details) for (const s of d.services || []) all.add(s);
  const sorted = [...all].sort();
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

function startEcho(topic) {
  stopEcho();
  $("echo-topic").value = topic;
  const output = $("echo-output");
  echo = {topic, id: bridge.subscribe(topic, (msg) => {
    const line = element("div", {class: "echo-message", "data-testid": "echo-message"});
    line.append(element("span", {class: "time"}, formatTime(new Date())), document.createTextNode(" " + JSON.stringify(msg)));
    output.append(line);
    while (output.childElementCount > MAX_ECHO_LINES) output.firstElementChild.remove();
    output.scrollTop = output.scrollHeight;
  })};
  $("echo-stop").disabled = false;
  $("echo-output").dataset.topic = topic;
}

function stopEcho() {
  if (echo) bridge.unsubscribe(echo.id);
  echo = null;
  $("echo-stop").disabled = true;
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
$("echo-clear").addEventListener("click", () => $("echo-output").replaceChildren());
$("rates-enabled").addEventListener("change", poll);

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
setInterval(updateRates, 1000);
