// Checks a bag meshy recorded as JSON the way Foxglove reads it (@mcap/core, @mcap/support, ajv,
// pinned by package-lock.json); tests/integration/foxglove_test.cpp runs it.
//
// Usage: node bag_check.mjs JSON.mcap MSGPACK.mcap REPLAYED.mcap MSGPACK_TOPICS [TYPED]
//   JSON.mcap       recorded with the default encoding: every channel of a topic not in MSGPACK_TOPICS
//                   (comma-separated) must be json/jsonschema with a schema every message validates
//                   against; the topics in MSGPACK_TOPICS must (also) have msgpack channels
//   MSGPACK.mcap    the same sends recorded with --encoding msgpack (the bytes as sent)
//   REPLAYED.mcap   `meshy bag play JSON.mcap` recorded with --encoding msgpack: per topic, as many
//                   messages as JSON.mcap has, and the same distinct payloads, byte for byte, as
//                   MSGPACK.mcap (senders repeat each payload until both recorders have it, so the
//                   two recordings may differ in how often each was taken, not in what)
//   TYPED           topic=TypeName=schema.json,... : topics whose publisher advertised a type: every
//                   channel of the topic in JSON.mcap is json, its schema is named TypeName and is the
//                   advertised schema text (the file's), byte for byte
// Prints each schema, then "OK: ..." and exits 0, or each "FAIL: ..." and exits 1.
import { McapIndexedReader } from "@mcap/core";
import { loadDecompressHandlers } from "@mcap/support";
import Ajv from "ajv";
import { open, readFile } from "node:fs/promises";

const [jsonFile, msgpackFile, replayedFile, msgpackTopicsText = "", typedText = ""] = process.argv.slice(2);
if (!jsonFile || !msgpackFile || !replayedFile) {
  console.error("usage: node bag_check.mjs JSON.mcap MSGPACK.mcap REPLAYED.mcap MSGPACK_TOPICS");
  process.exit(2);
}
const msgpackTopics = new Set(msgpackTopicsText.split(",").filter((t) => t));
const typed = new Map(); // topic -> { name, schema, channels }
for (const spec of typedText.split(",").filter((t) => t)) {
  const [topic, name, file] = spec.split("=");
  typed.set(topic, { name, schema: (await readFile(file, "utf8")).trim(), channels: 0 });
}
const failures = [];
const fail = (text) => failures.push(text);
const decompressHandlers = await loadDecompressHandlers();
const decoder = new TextDecoder();

async function read(file) {
  const handle = await open(file, "r");
  const reader = await McapIndexedReader.Initialize({
    readable: {
      size: async () => BigInt((await handle.stat()).size),
      read: async (offset, size) => {
        const buffer = new Uint8Array(Number(size));
        await handle.read(buffer, 0, Number(size), Number(offset));
        return buffer;
      },
    },
    decompressHandlers,
  });
  const messages = [];
  for await (const m of reader.readMessages()) {
    messages.push({ channel: reader.channelsById.get(m.channelId), data: m.data });
  }
  await handle.close();
  return { reader, messages };
}

// 1. The JSON bag, as Foxglove decodes it.
const json = await read(jsonFile);
const ajv = new Ajv({ allErrors: true });
const validators = new Map();
let validated = 0;
const seenMsgpack = new Set();
for (const [id, channel] of json.reader.channelsById) {
  const schema = json.reader.schemasById.get(channel.schemaId);
  if (channel.messageEncoding === "json") {
    if (!schema || schema.encoding !== "jsonschema") {
      fail(`channel ${id} (${channel.topic}): json without a jsonschema schema`);
      continue;
    }
    const text = decoder.decode(schema.data);
    console.log(`schema ${channel.topic} "${schema.name}": ${text}`);
    const type = typed.get(channel.topic);
    if (type) {
      ++type.channels;
      if (schema.name !== type.name) fail(`channel ${id} (${channel.topic}): schema "${schema.name}", advertised "${type.name}"`);
      if (text !== type.schema) fail(`channel ${id} (${channel.topic}): schema ${text} is not the advertised ${type.schema}`);
    }
    try {
      validators.set(id, ajv.compile(JSON.parse(text)));
    } catch (e) {
      fail(`channel ${id} (${channel.topic}): schema does not compile: ${e.message}`);
    }
  } else if (channel.messageEncoding === "msgpack") {
    seenMsgpack.add(channel.topic);
    if (!msgpackTopics.has(channel.topic)) fail(`channel ${id} (${channel.topic}) is msgpack`);
  } else {
    fail(`channel ${id} (${channel.topic}): encoding ${channel.messageEncoding}`);
  }
}
for (const t of msgpackTopics) {
  if (!seenMsgpack.has(t)) fail(`topic ${t} has no msgpack channel`);
}
for (const [t, type] of typed) {
  if (type.channels === 0) fail(`typed topic ${t} has no json channel`);
  if (seenMsgpack.has(t)) fail(`typed topic ${t} has a msgpack channel`);
}
for (const { channel, data } of json.messages) {
  if (channel.messageEncoding !== "json") continue;
  const text = decoder.decode(data);
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    fail(`${channel.topic}: not JSON: ${text}`);
    continue;
  }
  const validate = validators.get(channel.id);
  if (validate && !validate(value)) {
    fail(`${channel.topic}: ${text} does not validate: ${ajv.errorsText(validate.errors)}`);
  } else {
    ++validated;
  }
}

// 2. Playing the JSON bag sent the very bytes that were recorded.
const byTopic = (messages) => {
  const out = new Map();
  for (const { channel, data } of messages) {
    if (!out.has(channel.topic)) out.set(channel.topic, []);
    out.get(channel.topic).push(Buffer.from(data).toString("hex"));
  }
  return out;
};
const recordedAsJson = byTopic(json.messages);
const original = byTopic((await read(msgpackFile)).messages);
const replayed = byTopic((await read(replayedFile)).messages);
let compared = 0;
for (const [topic, list] of recordedAsJson) {
  const again = replayed.get(topic) ?? [];
  if (again.length !== list.length) fail(`${topic}: ${list.length} messages in the JSON bag, ${again.length} replayed`);
}
for (const [topic, list] of original) {
  const want = new Set(list);
  const got = new Set(replayed.get(topic) ?? []);
  for (const hex of want) {
    if (!got.has(hex)) fail(`${topic}: recorded payload ${hex} was not replayed`);
    else ++compared;
  }
  for (const hex of got) {
    if (!want.has(hex)) fail(`${topic}: replayed payload ${hex} was never sent`);
  }
}

if (failures.length > 0) {
  for (const f of failures) console.log(`FAIL: ${f}`);
  process.exit(1);
}
console.log(`OK: ${validated} JSON messages validate; ${compared} distinct payloads replayed byte for byte`);
