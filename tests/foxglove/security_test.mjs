// The Foxglove side of `meshy bridge` under its security options, seen by a Foxglove client
// (@foxglove/ws-protocol's FoxgloveClient over `ws`, pinned by package-lock.json; `ws` alone where
// the client library cannot express a case: an Origin header, a TLS CA, a paused socket).
// tests/integration/foxglove_test.cpp starts the bridge with the options and runs this script.
//
// Usage: node security_test.mjs MODE ARGS...
//   token URL TOKEN            without ?token= and with a wrong one the bridge closes with 4001 and sends
//                              nothing; with ?token=TOKEN it sends serverInfo
//   origin URL BAD GOOD        Origin BAD is refused at the upgrade (403); Origin GOOD and no Origin
//                              (a program, not a browser) get serverInfo
//   allowlist URL VISIBLE HIDDEN DENIED ALLOWED SERVICE HIDDEN_SERVICE
//                              VISIBLE is advertised, HIDDEN (known to the bridge with it) never; a
//                              subscribe to an unknown channel, a client advertisement of DENIED and a
//                              message on it get status errors; SERVICE is advertised and answers
//                              multiply(6, 7), HIDDEN_SERVICE never is; then "OK", and publishes
//                              {"data": "allowed-marker"} on ALLOWED every 200 ms until SIGTERM
//   limits URL TOPIC COUNT SIZE
//                              COUNT messages on TOPIC at once get a "rate limit exceeded" status and
//                              the connection stays (a graph request is answered); a SIZE-byte message
//                              closes that connection with 1009 and a second client is still served
//   slow URL BIG SMALL MIN     subscribes to BIG and SMALL and reads slowly (the socket is read 20 ms
//                              a second): at least MIN messages of SMALL arrive, no more than twice
//                              as many of BIG (the channels take turns), and a status says messages
//                              were dropped
// The CA certificate of a wss:// URL is read from $MESHY_TEST_CA. Prints progress and "OK ..." and
// exits 0, or "FAIL: ..." and exits 1. Gives up after 40 s.
import wsProtocol from "@foxglove/ws-protocol";
import { readFileSync } from "node:fs";
import { WebSocket } from "ws";

const { FoxgloveClient } = wsProtocol; // a CommonJS package: its exports come as the default
const [mode, url, ...args] = process.argv.slice(2);
const fail = (text) => {
  console.log(`FAIL: ${text}`);
  process.exit(1);
};
setTimeout(() => fail(`timed out in mode ${mode}`), 40000).unref();
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const tls = process.env.MESHY_TEST_CA ? { ca: readFileSync(process.env.MESHY_TEST_CA) } : {};

/// A FoxgloveClient on `target`; resolves with what happened first: serverInfo, a close or a refusal.
function connect(target, options = {}) {
  const ws = new WebSocket(target, [FoxgloveClient.SUPPORTED_SUBPROTOCOL], { ...tls, ...options });
  const client = new FoxgloveClient({ ws });
  const first = new Promise((resolve) => {
    client.on("serverInfo", (info) => resolve({ kind: "serverInfo", info }));
    client.on("close", (e) => resolve({ kind: "close", code: e?.code }));
    ws.on("unexpected-response", (_req, res) => {
      resolve({ kind: "refused", status: res.statusCode });
      ws.terminate();
    });
    client.on("error", (e) => resolve({ kind: "error", message: e?.message ?? String(e) }));
  });
  return { ws, client, first };
}

function expectFirst(result, kind, detail, what) {
  const got = `${result.kind} ${result.code ?? result.status ?? result.message ?? ""}`.trim();
  if (result.kind !== kind || (detail !== undefined && (result.code ?? result.status) !== detail)) {
    fail(`${what}: expected ${kind} ${detail ?? ""}, got ${got}`);
  }
  console.log(`${what}: ${got}${result.kind === "serverInfo" ? ` (${result.info.name})` : ""}`);
}

/// Resolves when `predicate(message)` holds for a status message of `client`.
const statusMatching = (client, predicate) =>
  new Promise((resolve) => client.on("status", (s) => predicate(s) && resolve(s)));

const withToken = (base, token) => `${base}${base.includes("?") ? "&" : "?"}token=${token}`;

if (mode === "token") {
  const [token] = args;
  expectFirst(await connect(url).first, "close", 4001, "no token");
  expectFirst(await connect(withToken(url, "wrong")).first, "close", 4001, "wrong token");
  const good = connect(withToken(url, token));
  expectFirst(await good.first, "serverInfo", undefined, "right token");
  good.ws.close();
  console.log("OK token");
  process.exit(0);
} else if (mode === "origin") {
  const [bad, good] = args;
  expectFirst(await connect(url, { origin: bad }).first, "refused", 403, `Origin ${bad}`);
  const allowed = connect(url, { origin: good });
  expectFirst(await allowed.first, "serverInfo", undefined, `Origin ${good}`);
  const program = connect(url);
  expectFirst(await program.first, "serverInfo", undefined, "no Origin");
  allowed.ws.close();
  program.ws.close();
  console.log("OK origin");
  process.exit(0);
} else if (mode === "allowlist") {
  const [visible, hidden, denied, allowedTopic, service, hiddenService] = args;
  const { client, first } = connect(url);
  const channels = new Map();
  const services = new Map();
  client.on("advertise", (list) => {
    for (const c of list) {
      channels.set(c.topic, c);
      console.log(`channel ${c.id} ${c.topic}`);
      if (c.topic === hidden) fail(`${hidden} was advertised: ${JSON.stringify(c)}`);
    }
  });
  client.on("advertiseServices", (list) => {
    for (const s of list) {
      services.set(s.name, s);
      console.log(`service ${s.id} ${s.name}`);
      if (s.name === hiddenService) fail(`${hiddenService} was advertised`);
    }
  });
  client.on("status", (s) => console.log(`status ${s.level}: ${s.message}`));
  expectFirst(await first, "serverInfo", undefined, "connect");
  const until = (predicate) =>
    new Promise((resolve) => {
      const check = () => (predicate() ? resolve() : setTimeout(check, 20));
      check();
    });
  // The node that listens to both topics is learned whole: once one is advertised, the other was seen.
  await until(() => channels.has(visible) && services.has(service));
  let status = statusMatching(client, (s) => s.level === 2 && s.message.includes("unknown channel"));
  client.subscribe(987654);
  console.log(`unknown channel: ${(await status).message}`);
  status = statusMatching(client, (s) => s.level === 2 && s.message.includes("not allowed"));
  const deniedId = client.advertise({ topic: denied, encoding: "json", schemaName: "" });
  console.log(`advertise ${denied}: ${(await status).message}`);
  status = statusMatching(client, (s) => s.level === 2 && s.message.includes("not advertised"));
  client.sendMessage(deniedId, encoder.encode(JSON.stringify({ data: "denied-marker" })));
  console.log(`message on ${denied}: ${(await status).message}`);
  const answered = new Promise((resolve) =>
    client.on("serviceCallResponse", ({ data }) => resolve(decoder.decode(data))),
  );
  client.sendServiceCallRequest({
    serviceId: services.get(service).id,
    callId: 1,
    encoding: "json",
    data: encoder.encode(JSON.stringify({ args: [6, 7] })),
  });
  const reply = await answered;
  if (JSON.stringify(JSON.parse(reply)) !== JSON.stringify({ args: [42] })) fail(`${service} answered ${reply}`);
  console.log(`${service} answered ${reply}`);
  if (channels.has(hidden) || services.has(hiddenService)) fail("a hidden name was advertised");
  // The test stops this client with SIGTERM once the marker arrived: the handler goes in before the
  // first message can leave (a socket write may happen at once, and the test acts on it).
  process.on("SIGTERM", () => process.exit(0));
  console.log("OK allowlist");
  const allowedId = client.advertise({ topic: allowedTopic, encoding: "json", schemaName: "" });
  const publish = () => client.sendMessage(allowedId, encoder.encode(JSON.stringify({ data: "allowed-marker" })));
  publish();
  setInterval(publish, 200);
} else if (mode === "limits") {
  const [topic, countText, sizeText] = args;
  const { ws, client, first } = connect(url);
  expectFirst(await first, "serverInfo", undefined, "connect");
  let closed;
  client.on("close", (e) => (closed = e?.code));
  const channel = client.advertise({ topic, encoding: "json", schemaName: "" });
  const limited = statusMatching(client, (s) => s.level === 1 && s.message.includes("rate limit exceeded"));
  for (let i = 0; i < Number(countText); ++i) {
    client.sendMessage(channel, encoder.encode(JSON.stringify({ data: "flood-msg" })));
  }
  console.log(`flood: ${(await limited).message}`);
  // Still open: a graph request is answered once the bucket has tokens again (asked until it is).
  const graph = new Promise((resolve) => client.on("connectionGraphUpdate", resolve));
  const ask = setInterval(() => client.subscribeConnectionGraph(), 250);
  client.subscribeConnectionGraph();
  await graph;
  clearInterval(ask);
  if (closed !== undefined) fail(`the flood closed the connection (${closed})`);
  console.log("after the flood: the connection answers");
  const bystander = connect(url);
  expectFirst(await bystander.first, "serverInfo", undefined, "bystander");
  const closing = new Promise((resolve) => client.on("close", (e) => resolve(e?.code)));
  ws.send(new Uint8Array(Number(sizeText)));
  const code = await closing;
  if (code !== 1009) fail(`an oversize message closed with ${code}, expected 1009`);
  console.log(`oversize message: closed with ${code}`);
  const answered = new Promise((resolve) => bystander.client.on("connectionGraphUpdate", resolve));
  bystander.client.subscribeConnectionGraph();
  await answered;
  bystander.ws.close();
  console.log("OK limits");
  process.exit(0);
} else if (mode === "slow") {
  const [big, small, minText] = args;
  const min = Number(minText);
  const { ws, client, first } = connect(url);
  const channels = new Map();
  const subscriptions = new Map(); // subscription id -> topic
  const counts = { [big]: 0, [small]: 0 };
  let dropWarning;
  client.on("advertise", (list) => {
    for (const c of list) {
      if ((c.topic === big || c.topic === small) && !channels.has(c.topic)) {
        channels.set(c.topic, c);
        subscriptions.set(client.subscribe(c.id), c.topic);
        console.log(`subscribed ${c.topic}`);
      }
    }
  });
  client.on("status", (s) => {
    console.log(`status ${s.level}: ${s.message}`);
    if (s.level === 1 && s.message.includes("dropped")) dropWarning = s.message;
  });
  client.on("message", ({ subscriptionId }) => {
    const topic = subscriptions.get(subscriptionId);
    counts[topic] += 1;
    if (counts[small] >= min && dropWarning) {
      // Channels take turns: about one small message per large one. One queue for both would give
      // the small topic its share of the arrivals instead (20 in 70 here).
      if (counts[big] > 2 * counts[small]) fail(`${counts[small]} ${small} but ${counts[big]} ${big}: not taking turns`);
      console.log(`OK ${counts[small]} ${small} and ${counts[big]} ${big} messages read; ${dropWarning}`);
      process.exit(0);
    }
  });
  expectFirst(await first, "serverInfo", undefined, "connect");
  // A slow reader: the socket is read 20 ms a second; the bridge's queue for it fills up.
  ws.pause();
  setInterval(() => {
    ws.resume();
    setTimeout(() => ws.pause(), 20);
    console.log(`read ${counts[small]} ${small}, ${counts[big]} ${big}`);
  }, 1000);
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
