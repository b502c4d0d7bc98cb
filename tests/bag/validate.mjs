// An independent check of a meshy recording with Foxglove's MCAP reader (@mcap/core, with the
// zstd/lz4 decompression of @mcap/support), pinned by package-lock.json.
//
// Usage: node validate.mjs FILE.mcap EXPECTED.json
//   EXPECTED.json: {"compression": "zstd" | "lz4" | "",
//                   "messages": [{"topic": "t", "publish_time": "<ns>", "data_hex": "92..."}, ...]}
//   (times are strings: nanoseconds do not fit in a JSON number)
//
// It reads the file twice — through its index (Footer, summary, chunk indexes, message indexes) and as
// a stream of records (every chunk decompressed and CRC-checked) — and checks that both give exactly
// the expected messages (topic, publish time, bytes), per-topic counts, sane log times, the chunk
// compression, and Statistics that agree. Prints "OK: ..." and exits 0, or prints each "FAIL: ..." and
// exits 1 (2 for bad usage or an unreadable file).
import { McapIndexedReader, McapStreamReader } from "@mcap/core";
import { loadDecompressHandlers } from "@mcap/support";
import { open, readFile } from "node:fs/promises";

const [file, expectedPath] = process.argv.slice(2);
if (!file || !expectedPath) {
  console.error("usage: node validate.mjs FILE.mcap EXPECTED.json");
  process.exit(2);
}

const failures = [];
const fail = (text) => failures.push(text);
const hex = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
const key = (topic, publishTime, dataHex) => `${topic}|${publishTime}|${dataHex}`;

function countBy(items, keyOf) {
  const counts = new Map();
  for (const item of items) {
    const k = keyOf(item);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

function compareCounts(what, actual, expected) {
  for (const [k, n] of expected) {
    if ((actual.get(k) ?? 0) !== n) {
      fail(`${what}: expected ${n} of ${k}, found ${actual.get(k) ?? 0}`);
    }
  }
  for (const [k, n] of actual) {
    if (!expected.has(k)) {
      fail(`${what}: unexpected ${n} of ${k}`);
    }
  }
}

const expected = JSON.parse(await readFile(expectedPath, "utf8"));
const decompressHandlers = await loadDecompressHandlers();
const expectedByKey = countBy(expected.messages, (m) => key(m.topic, BigInt(m.publish_time), m.data_hex));
const expectedByTopic = countBy(expected.messages, (m) => m.topic);

// --- 1. Through the index ---------------------------------------------------------------------------
const handle = await open(file, "r");
const readable = {
  size: async () => BigInt((await handle.stat()).size),
  read: async (offset, size) => {
    const buffer = new Uint8Array(Number(size));
    const { bytesRead } = await handle.read(buffer, 0, Number(size), Number(offset));
    if (bytesRead !== Number(size)) {
      throw new Error(`short read at ${offset}`);
    }
    return buffer;
  },
};
let indexed;
try {
  indexed = await McapIndexedReader.Initialize({ readable, decompressHandlers });
} catch (error) {
  console.error(`FAIL: the indexed reader cannot open ${file}: ${error.message}`);
  process.exit(1);
}
const topicOf = (channelId) => indexed.channelsById.get(channelId)?.topic ?? `<unknown channel ${channelId}>`;
const indexedMessages = [];
for await (const m of indexed.readMessages({ validateCrcs: true })) {
  indexedMessages.push(m);
}
compareCounts(
  "indexed read",
  countBy(indexedMessages, (m) => key(topicOf(m.channelId), m.publishTime, hex(m.data))),
  expectedByKey,
);
compareCounts("indexed read, per topic", countBy(indexedMessages, (m) => topicOf(m.channelId)), expectedByTopic);
for (let i = 1; i < indexedMessages.length; ++i) {
  if (indexedMessages[i].logTime < indexedMessages[i - 1].logTime) {
    fail(`indexed read: log times go back at message ${i}`);
    break;
  }
}
for (const m of indexedMessages) {
  // log_time is when the recorder received the message, publish_time when it was sent (same host).
  const lag = m.logTime - m.publishTime;
  if (lag < -1_000_000n || lag > 60_000_000_000n) {
    fail(`message on ${topicOf(m.channelId)}: log time ${m.logTime} is not just after publish time ${m.publishTime}`);
  }
}

const stats = indexed.statistics;
if (!stats) {
  fail("no Statistics record in the summary");
} else {
  if (stats.messageCount !== BigInt(expected.messages.length)) {
    fail(`Statistics.message_count ${stats.messageCount}, expected ${expected.messages.length}`);
  }
  if (stats.chunkCount !== indexed.chunkIndexes.length) {
    fail(`Statistics.chunk_count ${stats.chunkCount}, but ${indexed.chunkIndexes.length} chunk indexes`);
  }
  if (stats.channelCount !== indexed.channelsById.size) {
    fail(`Statistics.channel_count ${stats.channelCount}, but ${indexed.channelsById.size} channels`);
  }
  let sum = 0n;
  for (const n of stats.channelMessageCounts.values()) {
    sum += n;
  }
  if (sum !== stats.messageCount) {
    fail(`Statistics.channel_message_counts add up to ${sum}, not ${stats.messageCount}`);
  }
  if (indexedMessages.length > 0) {
    const times = indexedMessages.map((m) => m.logTime);
    const min = times.reduce((a, b) => (b < a ? b : a));
    const max = times.reduce((a, b) => (b > a ? b : a));
    if (stats.messageStartTime !== min || stats.messageEndTime !== max) {
      fail(`Statistics times ${stats.messageStartTime}..${stats.messageEndTime}, messages span ${min}..${max}`);
    }
  }
}
for (const chunk of indexed.chunkIndexes) {
  if (chunk.compression !== expected.compression) {
    fail(`chunk at ${chunk.chunkStartOffset}: compression '${chunk.compression}', expected '${expected.compression}'`);
  }
  if (chunk.messageIndexOffsets.size === 0) {
    fail(`chunk at ${chunk.chunkStartOffset}: no message indexes`);
  }
}
for (const opcode of [0x03, 0x04, 0x08, 0x0b]) {
  if (!indexed.summaryOffsetsByOpcode.has(opcode)) {
    fail(`no SummaryOffset for opcode 0x${opcode.toString(16)}`);
  }
}
for (const channel of indexed.channelsById.values()) {
  if (channel.messageEncoding !== "msgpack") {
    fail(`channel ${channel.id} (${channel.topic}): message encoding '${channel.messageEncoding}', expected msgpack`);
  }
  if (channel.metadata.get("meshy.codec") !== "1") {
    fail(`channel ${channel.id} (${channel.topic}): no meshy.codec=1 in its metadata`);
  }
  if (channel.schemaId !== 0 && !indexed.schemasById.has(channel.schemaId)) {
    fail(`channel ${channel.id} (${channel.topic}): schema ${channel.schemaId} is not in the summary`);
  }
}
await handle.close();

// --- 2. As a stream of records ---------------------------------------------------------------------
const stream = new McapStreamReader({ decompressHandlers, validateCrcs: true, includeChunks: true });
stream.append(new Uint8Array(await readFile(file)));
const streamMessages = [];
const streamChannels = new Map();
const seen = new Map();
try {
  for (let record; (record = stream.nextRecord()); ) {
    seen.set(record.type, (seen.get(record.type) ?? 0) + 1);
    if (record.type === "Channel") {
      streamChannels.set(record.id, record);
    } else if (record.type === "Message") {
      streamMessages.push(record);
    }
  }
} catch (error) {
  fail(`the stream reader stopped: ${error.message}`);
}
if (!stream.done()) {
  fail("the stream reader did not reach the Footer and closing magic");
}
for (const type of ["Header", "Schema", "Channel", "Chunk", "MessageIndex", "DataEnd", "Statistics", "ChunkIndex",
  "SummaryOffset", "Footer"]) {
  if (!seen.has(type) && expected.messages.length > 0) {
    fail(`no ${type} record in the file`);
  }
}
compareCounts(
  "stream read",
  countBy(streamMessages, (m) => key(streamChannels.get(m.channelId)?.topic, m.publishTime, hex(m.data))),
  expectedByKey,
);

if (failures.length > 0) {
  for (const f of failures.slice(0, 50)) {
    console.log(`FAIL: ${f}`);
  }
  process.exit(1);
}
console.log(
  `OK: ${indexedMessages.length} messages on ${expectedByTopic.size} topic(s), ${indexed.chunkIndexes.length} ` +
    `chunk(s), compression '${expected.compression}', records: ` +
    [...seen].map(([t, n]) => `${t}=${n}`).join(" "),
);
