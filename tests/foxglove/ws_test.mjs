// A Foxglove WebSocket protocol client (@foxglove/ws-protocol's FoxgloveClient over the `ws` package,
// pinned by package-lock.json) against `meshy bridge`; tests/integration/foxglove_test.cpp runs it.
//
// Usage: node ws_test.mjs URL MODE ARGS...
//   subscribe TOPIC SCHEMA_NAME COUNT   subscribe to TOPIC, wait until its channel has SCHEMA_NAME (or
//                                       any "... (inferred)" name for "inferred") and COUNT messages that
//                                       validate (ajv) against the channel's schema; prints each as JSON
//   publish TOPIC JSON SCHEMA           advertise TOPIC (encoding json, SCHEMA may be "") and publish JSON
//                                       every 200 ms until SIGTERM
//   call SERVICE REQUEST EXPECTED       call SERVICE with the JSON REQUEST, expect the JSON EXPECTED
//   graph TOPIC SERVICE                 subscribe to the connection graph until it lists TOPIC (as a
//                                       subscribed topic) and SERVICE
// The CA certificate of a wss:// URL is read from $MESHY_TEST_CA.
// Prints "OK ..." and exits 0, or "FAIL: ..." and exits 1. Gives up after 30 s.
import wsProtocol from "@foxglove/ws-protocol";
import Ajv from "ajv";
import { readFileSync } from "node:fs";
import { WebSocket } from "ws";

const { FoxgloveClient } = wsProtocol; // a CommonJS package: its exports come as the default
const [url, mode, ...args] = process.argv.slice(2);
const fail = (text) => {
  console.log(`FAIL: ${text}`);
  process.exit(1);
};
setTimeout(() => fail(`timed out in mode ${mode}`), 30000).unref();

const tls = process.env.MESHY_TEST_CA ? { ca: readFileSync(process.env.MESHY_TEST_CA) } : {};
const ws = new WebSocket(url, [FoxgloveClient.SUPPORTED_SUBPROTOCOL], tls);
const client = new FoxgloveClient({ ws });
const channels = new Map(); // id -> channel (the latest advertisement)
const services = new Map(); // name -> service
const decoder = new TextDecoder();
const encoder = new TextEncoder();
client.on("error", (e) => fail(`client error: ${e?.message ?? e}`));
client.on("close", (e) => {
  if (!done) fail(`connection closed (${e?.code})`);
});
client.on("status", (s) => console.log(`status ${s.level}: ${s.message}`));
client.on("advertise", (list) => {
  for (const c of list) {
    channels.set(c.id, c);
    console.log(`channel ${c.id} ${c.topic} ${c.encoding} ${c.schemaEncoding} "${c.schemaName}"`);
  }
  onChange();
});
client.on("unadvertise", (ids) => ids.forEach((id) => channels.delete(id)));
client.on("advertiseServices", (list) => {
  for (const s of list) {
    services.set(s.name, s);
    console.log(`service ${s.id} ${s.name}`);
  }
  onChange();
});
let serverInfo;
client.on("serverInfo", (info) => {
  serverInfo = info;
  console.log(`serverInfo ${info.name} [${info.capabilities.join(",")}] encodings [${info.supportedEncodings}]`);
  if (ws.protocol !== "foxglove.websocket.v1") fail(`subprotocol '${ws.protocol}'`);
  for (const cap of ["clientPublish", "services", "connectionGraph"]) {
    if (!info.capabilities.includes(cap)) fail(`capability ${cap} missing`);
  }
  onChange();
});

let done = false;
const finish = (text) => {
  done = true;
  console.log(`OK ${text}`);
  client.close();
  process.exit(0);
};
let onChange = () => {};

const findChannel = (topic) => [...channels.values()].find((c) => c.topic === topic);

if (mode === "subscribe") {
  const [topic, schemaName, countText] = args;
  const want = Number(countText);
  let subscribed;
  let valid = 0;
  const ajv = new Ajv({ allErrors: true });
  const validators = new Map(); // schema text -> validate
  onChange = () => {
    const c = findChannel(topic);
    if (c && subscribed === undefined) {
      if (c.encoding !== "json" || c.schemaEncoding !== "jsonschema") fail(`channel ${topic}: ${c.encoding}/${c.schemaEncoding}`);
      subscribed = client.subscribe(c.id);
      console.log(`subscribed ${topic}`);
    }
  };
  client.on("message", ({ subscriptionId, timestamp, data }) => {
    if (subscriptionId !== subscribed) fail(`message for subscription ${subscriptionId}`);
    const c = findChannel(topic);
    const text = decoder.decode(data);
    const value = JSON.parse(text);
    const nameOk = schemaName === "inferred" ? c.schemaName.endsWith("(inferred)") : c.schemaName === schemaName;
    if (!nameOk) {
      console.log(`message before the schema is known (${c.schemaName}): ${text}`);
      return;
    }
    let validate = validators.get(c.schema);
    if (!validate) {
      validate = ajv.compile(JSON.parse(c.schema));
      validators.set(c.schema, validate);
    }
    if (!validate(value)) {
      // An inferred schema may still widen with this very message: the next advertisement covers it.
      if (schemaName === "inferred") {
        console.log(`message ahead of its schema: ${text}`);
        return;
      }
      fail(`message ${text} does not validate against ${c.schema}: ${ajv.errorsText(validate.errors)}`);
    }
    if (timestamp <= 0n) fail("message without a receive time");
    console.log(`message ${text}`);
    if (++valid >= want) finish(`${valid} message(s) on ${topic} validate against ${c.schemaName}: ${c.schema}`);
  });
} else if (mode === "publish") {
  const [topic, json, schema] = args;
  let channel;
  onChange = () => {
    if (serverInfo && channel === undefined) {
      channel = client.advertise(
        schema
          ? { topic, encoding: "json", schemaName: "test.Schema", schema, schemaEncoding: "jsonschema" }
          : { topic, encoding: "json", schemaName: "" },
      );
      const send = () => {
        client.sendMessage(channel, encoder.encode(json));
        console.log("published");
      };
      send();
      setInterval(send, 200);
    }
  };
  process.on("SIGTERM", () => {
    done = true;
    client.close();
    process.exit(0);
  });
} else if (mode === "call") {
  const [service, request, expected] = args;
  let called = false;
  onChange = () => {
    const s = services.get(service);
    if (s && !called) {
      called = true;
      client.sendServiceCallRequest({ serviceId: s.id, callId: 7, encoding: "json", data: encoder.encode(request) });
      console.log(`called ${service} ${request}`);
    }
  };
  client.on("serviceCallResponse", ({ serviceId, callId, encoding, data }) => {
    const text = decoder.decode(data);
    if (callId !== 7 || encoding !== "json") fail(`response ${callId} ${encoding}`);
    if (JSON.stringify(JSON.parse(text)) !== JSON.stringify(JSON.parse(expected))) fail(`response ${text}, expected ${expected}`);
    finish(`${service} answered ${text}`);
  });
  ws.on("message", (data, binary) => {
    if (!binary) {
      const m = JSON.parse(data.toString());
      if (m.op === "serviceCallFailure") fail(`service call failed: ${m.message}`);
    }
  });
} else if (mode === "graph") {
  const [topic, service] = args;
  let asked = false;
  onChange = () => {
    if (serverInfo && !asked) {
      asked = true;
      client.subscribeConnectionGraph();
    }
  };
  client.on("connectionGraphUpdate", (g) => {
    console.log(`graph ${JSON.stringify(g)}`);
    const topicOk = g.subscribedTopics.some((t) => t.name === topic && t.subscriberIds.length > 0);
    const serviceOk = g.advertisedServices.some((s) => s.name === service && s.providerIds.length > 0);
    if (topicOk && serviceOk) finish(`graph lists ${topic} and ${service}`);
  });
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
