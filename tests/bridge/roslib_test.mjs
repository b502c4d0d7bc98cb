// roslibjs (the standard rosbridge client library, in Node through its `ws` transport) against a real
// `meshy bridge` and real meshy nodes. tests/integration/bridge_test.cpp runs one scenario per call and
// drives the meshy side (`meshy topic send`, `meshy topic echo`, `meshy service call`, examples).
//
//   node roslib_test.mjs URL subscribe TOPIC EXPECTED_JSON [COMPRESSION]
//                                                               a message equal to EXPECTED_JSON (with
//                                                               "cbor": binary CBOR frames, roslib decodes)
//   node roslib_test.mjs URL publish TOPIC MSG_JSON             publish every 100 ms until SIGTERM (bounded)
//   node roslib_test.mjs URL call SERVICE ARGS_JSON EXPECTED_JSON
//   node roslib_test.mjs URL provide SERVICE CALLS              advertise SERVICE (answers {"args":[sum]} for
//                                                               positional numbers), exit after CALLS calls
//   node roslib_test.mjs URL graph TOPIC NODE SERVICE           getTopics has TOPIC, getNodes has NODE,
//                                                               getServices and getNodeDetails(NODE) SERVICE
//   node roslib_test.mjs URL reconnect TOPIC                    one message, then (after the bridge
//                                                               restarts) another on the same Topic object
//
// Progress goes to stdout one line at a time ("connected", "advertised", "received {...}", "ok");
// failures print "FAIL: ..." and exit 1. Every wait is bounded (DEADLINE_MS overall).
import {isDeepStrictEqual} from "node:util";
import * as ROSLIB from "roslib";

const DEADLINE_MS = 60000;
const [url, mode, ...rest] = process.argv.slice(2);

function say(text) {
  process.stdout.write(text + "\n");
}

function fail(text) {
  say(`FAIL: ${text}`);
  process.exit(1);
}

setTimeout(() => fail(`${mode}: not done within ${DEADLINE_MS / 1000} s`), DEADLINE_MS).unref();
process.on("SIGTERM", () => {
  say("terminated");
  process.exit(0);
});

function parse(text, what) {
  try {
    return JSON.parse(text);
  } catch (e) {
    fail(`${what} is not JSON: ${e.message}`);
  }
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/// A connected Ros; retries the connection (the bridge may still be starting) until the deadline.
async function connect() {
  const ros = new ROSLIB.Ros({});
  ros.on("error", () => {});
  const retry = () => setTimeout(() => ros.connect(url).catch(retry), 200);
  await new Promise((resolve) => {
    ros.once("connection", resolve);
    ros.on("close", retry);
    ros.connect(url).catch(retry);
  });
  ros.off("close", retry);
  say("connected");
  return ros;
}

function promised(fn) {
  return new Promise((resolve, reject) => fn(resolve, (e) => reject(new Error(String(e)))));
}

async function subscribe(ros, [topic, expectedText, compression = "none"]) {
  const expected = parse(expectedText, "EXPECTED_JSON");
  const t = new ROSLIB.Topic({ros, name: topic, messageType: "std_msgs/String", compression});
  // With CBOR the data must come in binary frames (roslib would take JSON text frames too).
  let binary = 0;
  ros.transport.socket.addEventListener("message", (event) => {
    if (typeof event.data !== "string") binary++;
  });
  await new Promise((resolve) => {
    t.subscribe((msg) => {
      say(`received ${JSON.stringify(msg)}`);
      if (isDeepStrictEqual(msg, expected) && (compression !== "cbor" || binary > 0)) resolve();
    });
    say("subscribed");
  });
  if (compression === "cbor") say(`binary frames ${binary}`);
  t.unsubscribe();
}

async function publish(ros, [topic, msgText]) {
  const msg = parse(msgText, "MSG_JSON");
  const t = new ROSLIB.Topic({ros, name: topic, messageType: "std_msgs/String"});
  t.advertise();
  say("advertised");
  for (let i = 0; i < DEADLINE_MS / 100; i++) {
    t.publish(msg);
    if (i === 0) say("published");
    await delay(100);
  }
}

async function call(ros, [service, argsText, expectedText]) {
  const args = parse(argsText, "ARGS_JSON");
  const expected = parse(expectedText, "EXPECTED_JSON");
  const s = new ROSLIB.Service({ros, name: service, serviceType: ""});
  let values;
  for (;;) {
    // Until the bridge has discovered the provider it answers "no provider for service ...".
    const outcome = await promised((ok, bad) => s.callService(args, ok, bad)).then((v) => ({v}), (e) => ({e}));
    if (!outcome.e) {
      values = outcome.v;
      break;
    }
    if (!outcome.e.message.includes("no provider")) fail(`call failed: ${outcome.e.message}`);
    say(`retrying: ${outcome.e.message}`);
    await delay(200);
  }
  say(`response ${JSON.stringify(values)}`);
  if (!isDeepStrictEqual(values, expected)) fail(`expected ${JSON.stringify(expected)}`);
}

async function provide(ros, [service, callsText]) {
  const wanted = Number(callsText);
  const s = new ROSLIB.Service({ros, name: service, serviceType: ""});
  let calls = 0;
  await new Promise((resolve) => {
    s.advertise((request, response) => {
      say(`request ${JSON.stringify(request)}`);
      const numbers = Array.isArray(request.args) ? request.args : [];
      response.args = [numbers.reduce((a, b) => a + b, 0)];
      if (++calls >= wanted) setTimeout(resolve, 200);  // let the response go out
      return true;
    }).then(() => say("advertised"));
  });
  await s.unadvertise();
}

async function graph(ros, [topic, node, service]) {
  const ask = (what, fn) => promised(fn).catch((e) => fail(`${what}: ${e.message}`));
  for (;;) {
    const topics = await ask("getTopics", (ok, bad) => ros.getTopics(ok, bad));
    const nodes = await ask("getNodes", (ok, bad) => ros.getNodes(ok, bad));
    const services = await ask("getServices", (ok, bad) => ros.getServices(ok, bad));
    if (topics.topics.includes(topic) && nodes.includes(node) && services.includes(service)) {
      const details = await ask("getNodeDetails", (ok, bad) => ros.getNodeDetails(node, ok, bad));
      say(`topics ${JSON.stringify(topics.topics)}`);
      say(`nodes ${JSON.stringify(nodes)}`);
      say(`services ${JSON.stringify(services)}`);
      say(`node_details ${JSON.stringify(details)}`);
      if (!details.services.includes(service)) fail(`the details of ${node} lack ${service}`);
      return;
    }
    await delay(200);
  }
}

async function reconnect(ros, [topic]) {
  const t = new ROSLIB.Topic({ros, name: topic, messageType: "std_msgs/String"});
  let received = 0;
  let wake = () => {};
  t.subscribe((msg) => {
    received++;
    say(`received ${JSON.stringify(msg)}`);
    wake();
  });
  say("subscribed");
  const next = (n) => new Promise((resolve) => {
    wake = () => {
      if (received >= n) resolve();
    };
    wake();
  });
  await next(1);
  // The test restarts the bridge now; roslib's Topic subscribes again on the next "connection".
  await new Promise((resolve) => ros.once("close", resolve));
  say("disconnected");
  await new Promise((resolve) => {
    ros.once("connection", resolve);
    const retry = () => {
      if (ros.isConnected) return;
      ros.connect(url).catch(() => {});
      setTimeout(retry, 300);
    };
    retry();
  });
  say("reconnected");
  const before = received;
  await next(before + 1);
  t.unsubscribe();
}

const scenarios = {subscribe, publish, call, provide, graph, reconnect};
if (!url || !scenarios[mode]) {
  fail(`usage: node roslib_test.mjs URL ${Object.keys(scenarios).join("|")} ...`);
}
const ros = await connect();
await scenarios[mode](ros, rest);
say("ok");
ros.close();
process.exit(0);
