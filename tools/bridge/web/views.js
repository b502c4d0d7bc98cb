// The dashboard's views beside the tables (loaded after app.js, whose `bridge`, `api`, `element`,
// `showResult` and `graphListeners` they use): a plot of numeric fields over time, the image view of
// an MJPEG stream, a teleop pad publishing velocity commands, and the node/topic graph. Plain canvas
// and SVG, no libraries.
"use strict";

// ---- plot ----

const PLOT_WINDOW_MS = 30000;  // the plot shows the last 30 s
const PLOT_MAX_POINTS = 3000;  // per field
const PLOT_MAX_FIELDS = 6;
const PLOT_COLORS = ["#2f6fdb", "#d9480f", "#2b8a3e", "#ae3ec9", "#e8590c", "#1098ad"];

let plot = null;  // {id, topic, fields: [names] | null, series: Map(name -> [[t, v]]), dirty}

/// The numeric leaves of a message, by dotted path ("linear.x", "args.0").
function numericLeaves(value, prefix = "", out = new Map(), depth = 0) {
  if (out.size >= 50 || depth > 5) return out;
  if (typeof value === "number" && Number.isFinite(value)) {
    out.set(prefix, value);
  } else if (typeof value === "boolean") {
    out.set(prefix, value ? 1 : 0);
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) numericLeaves(v, prefix === "" ? k : `${prefix}.${k}`, out, depth + 1);
  }
  return out;
}

function startPlot(topic, fieldsText) {
  stopPlot();
  const fields = fieldsText.split(",").map((f) => f.trim()).filter((f) => f !== "");
  plot = {id: null, topic, fields: fields.length ? fields : null, series: new Map(), dirty: true};
  const current = plot;
  current.id = bridge.subscribe(topic, (msg) => {
    const now = performance.now();
    const leaves = numericLeaves(msg);
    const names = current.fields || [...leaves.keys()].slice(0, PLOT_MAX_FIELDS);
    for (const name of names) {
      if (!leaves.has(name)) continue;
      if (!current.series.has(name)) {
        if (current.series.size >= PLOT_MAX_FIELDS) continue;
        current.series.set(name, []);
      }
      const points = current.series.get(name);
      points.push([now, leaves.get(name)]);
      if (points.length > PLOT_MAX_POINTS) points.shift();
    }
    current.dirty = true;
  });
  $("plot-stop").disabled = false;
  $("plot").dataset.topic = topic;
}

function stopPlot() {
  if (plot) bridge.unsubscribe(plot.id);
  plot = null;
  $("plot-stop").disabled = true;
}

function drawPlot() {
  const canvas = $("plot");
  // Draw at the canvas's displayed size (sharp on any screen).
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(100, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(60, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, width, height);
  if (!plot) {
    canvas.dataset.points = "0";
    return;
  }
  const now = performance.now();
  let lo = Infinity;
  let hi = -Infinity;
  let total = 0;
  for (const [, points] of plot.series) {
    while (points.length && points[0][0] < now - PLOT_WINDOW_MS) points.shift();
    for (const [, v] of points) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    total += points.length;
  }
  canvas.dataset.points = String(total);
  if (total === 0) return;
  if (hi === lo) {
    hi += 1;
    lo -= 1;
  }
  const pad = 28 * ratio;
  const x = (t) => pad + (width - 2 * pad) * (1 - (now - t) / PLOT_WINDOW_MS);
  const y = (v) => height - pad - (height - 2 * pad) * (v - lo) / (hi - lo);
  g.strokeStyle = "#dde2ea";
  g.fillStyle = "#6a7383";
  g.font = `${11 * ratio}px ui-monospace, monospace`;
  g.lineWidth = 1;
  for (const v of [lo, (lo + hi) / 2, hi]) {
    g.beginPath();
    g.moveTo(pad, y(v));
    g.lineTo(width - pad, y(v));
    g.stroke();
    g.fillText(Number(v.toPrecision(4)).toString(), 2, y(v) - 2);
  }
  let i = 0;
  const legend = [];
  for (const [name, points] of plot.series) {
    const color = PLOT_COLORS[i++ % PLOT_COLORS.length];
    g.strokeStyle = color;
    g.fillStyle = color;
    g.lineWidth = 1.5 * ratio;
    g.beginPath();
    points.forEach(([t, v], k) => (k === 0 ? g.moveTo(x(t), y(v)) : g.lineTo(x(t), y(v))));
    g.stroke();
    for (const [t, v] of points.slice(-200)) g.fillRect(x(t) - ratio, y(v) - ratio, 2 * ratio, 2 * ratio);
    const last = points.length ? points[points.length - 1][1] : NaN;
    legend.push([name, color, last]);
  }
  $("plot-legend").replaceChildren(...legend.map(([name, color, last]) => {
    const s = element("span", {"data-field": name});
    const swatch = element("i");
    swatch.style.background = color;
    s.append(swatch, document.createTextNode(`${name} ${Number.isFinite(last) ? Number(last.toPrecision(6)) : ""}`));
    return s;
  }));
}

$("plot-form").addEventListener("submit", (event) => {
  event.preventDefault();
  startPlot($("plot-topic").value.trim(), $("plot-fields").value);
});
$("plot-stop").addEventListener("click", stopPlot);
setInterval(drawPlot, 200);

// ---- image view (MJPEG from /stream/{topic}) ----

function startImage(topic, fps) {
  const image = $("image");
  const params = new URLSearchParams({max_fps: String(fps)});
  const token = pageToken();
  if (token !== null) params.set("token", token);  // an <img> cannot send an Authorization header
  image.onload = () => showResult($("image-status"), "ok", `${topic}: ${image.naturalWidth}×${image.naturalHeight}`);
  image.onerror = () => {
    if (image.getAttribute("src")) {
      showResult($("image-status"), "error", `${topic}: the stream failed (allowed? JPEG frames? see the bridge's log)`);
    }
  };
  showResult($("image-status"), "pending", `${topic}: waiting for a frame…`);
  image.src = `/stream/${topicPath(topic)}?${params}`;
  image.dataset.topic = topic;
  $("image-stop").disabled = false;
}

function stopImage() {
  const image = $("image");
  image.removeAttribute("src");  // closes the stream's connection
  image.dataset.topic = "";
  $("image-stop").disabled = true;
  showResult($("image-status"), "idle", "");
}

$("image-form").addEventListener("submit", (event) => {
  event.preventDefault();
  startImage($("image-topic").value.trim(), Number($("image-fps").value) || 10);
});
$("image-stop").addEventListener("click", stopImage);

// ---- teleop: {linear: {x}, angular: {z}} at 10 Hz while held, a zero on release ----

const TELEOP_PERIOD_MS = 100;
const teleop = {timer: null, linear: 0, angular: 0, published: 0, advertised: new Set(), keys: new Set()};

function teleopPublish(linear, angular) {
  const topic = $("teleop-topic").value.trim();
  if (!topic) return;
  const type = teleop.advertised.has(topic) ? undefined : "geometry_msgs/Twist";
  try {
    bridge.publish(topic, {linear: {x: linear}, angular: {z: angular}}, type);
    teleop.advertised.add(topic);
    teleop.published++;
    $("teleop-pad").dataset.published = String(teleop.published);
  } catch (e) {
    showResult($("teleop-status"), "error", e.message);
  }
}

function teleopSet(linear, angular) {
  teleop.linear = linear;
  teleop.angular = angular;
  const pad = $("teleop-pad");
  const knob = $("teleop-knob");
  const maxLinear = Number($("teleop-linear").value) || 1;
  const maxAngular = Number($("teleop-angular").value) || 1;
  knob.style.left = `${80 - 80 * (angular / maxAngular)}px`;
  knob.style.top = `${80 - 80 * (linear / maxLinear)}px`;
  if (teleop.timer === null) {
    pad.dataset.state = "held";
    teleopPublish(linear, angular);
    teleop.timer = setInterval(() => teleopPublish(teleop.linear, teleop.angular), TELEOP_PERIOD_MS);
  }
  showResult($("teleop-status"), "ok", `linear.x ${linear.toFixed(2)}  angular.z ${angular.toFixed(2)}  (10 Hz)`);
}

function teleopRelease() {
  if (teleop.timer === null) return;
  clearInterval(teleop.timer);
  teleop.timer = null;
  teleopPublish(0, 0);
  $("teleop-pad").dataset.state = "idle";
  $("teleop-knob").style.left = "80px";
  $("teleop-knob").style.top = "80px";
  showResult($("teleop-status"), "idle", "released: sent zero");
}

function teleopFromPointer(event) {
  const r = $("teleop-pad").getBoundingClientRect();
  const clamp = (v) => Math.max(-1, Math.min(1, v));
  const dx = clamp((event.clientX - r.left - r.width / 2) / (r.width / 2));
  const dy = clamp((event.clientY - r.top - r.height / 2) / (r.height / 2));
  // Up drives forward, left turns left (positive z), as ROS's right-handed convention has it.
  teleopSet(-dy * (Number($("teleop-linear").value) || 0), -dx * (Number($("teleop-angular").value) || 0));
}

const pad = $("teleop-pad");
pad.addEventListener("pointerdown", (event) => {
  pad.setPointerCapture(event.pointerId);
  teleopFromPointer(event);
});
pad.addEventListener("pointermove", (event) => {
  if (teleop.timer !== null && pad.hasPointerCapture(event.pointerId)) teleopFromPointer(event);
});
for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) pad.addEventListener(type, teleopRelease);
window.addEventListener("blur", teleopRelease);

const TELEOP_KEYS = {ArrowUp: [1, 0], ArrowDown: [-1, 0], ArrowLeft: [0, 1], ArrowRight: [0, -1]};
function teleopFromKeys() {
  let l = 0;
  let a = 0;
  for (const k of teleop.keys) {
    l += TELEOP_KEYS[k][0];
    a += TELEOP_KEYS[k][1];
  }
  if (teleop.keys.size === 0) return teleopRelease();
  teleopSet(Math.sign(l) * (Number($("teleop-linear").value) || 0), Math.sign(a) * (Number($("teleop-angular").value) || 0));
}
pad.addEventListener("keydown", (event) => {
  if (!(event.key in TELEOP_KEYS)) return;
  event.preventDefault();
  teleop.keys.add(event.key);
  teleopFromKeys();
});
pad.addEventListener("keyup", (event) => {
  if (!(event.key in TELEOP_KEYS)) return;
  teleop.keys.delete(event.key);
  teleopFromKeys();
});
pad.addEventListener("blur", () => {
  teleop.keys.clear();
  teleopRelease();
});

// ---- node/topic graph (SVG) ----

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}, text = undefined) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function renderGraph({nodes, topics}) {
  const graph = $("graph");
  const width = Math.max(graph.clientWidth, 400);
  const row = 26;
  const nodeNames = nodes.map((n) => "/" + n.name.replace(/^\/+/, ""));
  const topicNames = topics.map((t) => t.name);
  const height = Math.max(nodeNames.length, topicNames.length, 1) * row + 20;
  graph.setAttribute("viewBox", `0 0 ${width} ${height}`);
  graph.style.height = `${Math.min(height, 600)}px`;
  const boxWidth = Math.min(240, width / 3);
  const nodeX = 10;
  const topicX = width - boxWidth - 10;
  const at = (names, name) => 10 + names.indexOf(name) * row + 10;
  const children = [];
  nodes.forEach((n, i) => {
    const name = nodeNames[i];
    for (const t of n.publishes || []) {
      if (!topicNames.includes(t)) continue;
      children.push(svg("path", {class: "publish", d: curve(nodeX + boxWidth, at(nodeNames, name), topicX, at(topicNames, t))}));
    }
    for (const t of n.listens || []) {
      if (!topicNames.includes(t)) continue;
      children.push(svg("path", {class: "listen", d: curve(nodeX + boxWidth, at(nodeNames, name), topicX, at(topicNames, t))}));
    }
  });
  const box = (cls, x, name, testid) => {
    const g = svg("g", {class: cls, "data-testid": testid, "data-name": name});
    const y = at(cls === "node" ? nodeNames : topicNames, name);
    g.append(svg("rect", {x, y: y - 10, width: boxWidth, height: 20, rx: 4}),
             svg("text", {x: x + 6, y: y + 4}, name.length > 32 ? name.slice(0, 31) + "…" : name));
    return g;
  };
  for (const name of nodeNames) children.push(box("node", nodeX, name, "graph-node"));
  for (const name of topicNames) children.push(box("topic", topicX, name, "graph-topic"));
  graph.replaceChildren(...children);
}

function curve(x1, y1, x2, y2) {
  const mx = (x1 + x2) / 2;
  return `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
}

graphListeners.push(renderGraph);
