// The built-in dashboard in a real browser: Debian's Chromium driven by playwright-core (no downloaded
// browser). tests/integration/bridge_test.cpp starts the bridge, a service provider and a periodic
// `meshy topic send`, then runs
//
//   node dashboard_test.mjs PAGE_URL NODE TOPIC TEXT SERVICE ARGS_JSON RESULT_TEXT PUB_TOPIC PUB_JSON SCREENSHOT
//
// and this checks that the page connects, lists NODE, echoes a message containing TEXT on TOPIC live
// and counts a rate for it, calls SERVICE with ARGS_JSON showing a result containing RESULT_TEXT, shows
// the error of a call nobody answers, and (once PUB_TOPIC, which a `meshy topic echo` of the test
// listens to, is listed) publishes PUB_JSON on it; then, after printing "ready for restart", that it
// reconnects and echoes again when the test restarts the bridge; then saves a screenshot to SCREENSHOT.
// Progress lines on stdout, "FAIL: ..." and exit 1 on failure.
import {mkdtempSync, rmSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {chromium} from "playwright-core";

const [pageUrl, node, topic, text, service, argsJson, resultText, pubTopic, pubJson, screenshot] =
    process.argv.slice(2);
const CHROMIUM = process.env.MESHY_CHROMIUM || "/usr/bin/chromium";
const WAIT_MS = 30000;  // per step; generous for sanitizer builds on a busy machine

function say(line) {
  process.stdout.write(line + "\n");
}

if (!screenshot) {
  say("usage: node dashboard_test.mjs PAGE_URL NODE TOPIC TEXT SERVICE ARGS_JSON RESULT_TEXT PUB_TOPIC PUB_JSON " +
      "SCREENSHOT");
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), "meshy-dashboard-chromium-"));
let context;
let failed = false;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: {width: 1280, height: 900},
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on("pageerror", (e) => say(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") say(`console error: ${m.text()}`);
  });
  // Only the bridge itself may be contacted: the page loads nothing from elsewhere.
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.host !== new URL(pageUrl).host) say(`foreign request: ${r.url()}`);
  });

  await page.goto(pageUrl);
  await page.locator('[data-testid="connection"][data-state="connected"]').waitFor();
  say("connected");

  await page.locator(`[data-testid="node-row"][data-node="${node}"]`).waitFor();
  say(`node ${node} listed`);

  await page.fill("#echo-topic", topic);
  await page.click("#echo-start");
  say("echoing");
  const line = page.locator('[data-testid="echo-message"]', {hasText: text}).first();
  await line.waitFor();
  say(`echo ${await line.textContent()}`);

  const rate = page.locator(`[data-testid="topic-row"][data-topic="${topic}"] [data-testid="topic-rate"]`);
  await page.waitForFunction(
      (el) => el !== null && Number(el.textContent) > 0, await rate.elementHandle({timeout: WAIT_MS}),
      {timeout: WAIT_MS});
  say(`rate ${await rate.textContent()} Hz`);

  await page.fill("#call-service", service);
  await page.fill("#call-args", argsJson);
  await page.click("#call-send");
  const result = page.locator('[data-testid="call-result"][data-state="ok"]');
  await result.waitFor();
  const shown = await result.textContent();
  say(`call result ${shown.replace(/\s+/g, " ")}`);
  if (!shown.includes(resultText)) throw new Error(`the call result does not contain ${resultText}`);

  // A service nobody provides: the page shows the bridge's error.
  await page.fill("#call-service", "/nobody_provides_this");
  await page.fill("#call-args", "{}");
  await page.click("#call-send");
  const error = page.locator('[data-testid="call-result"][data-state="error"]');
  await error.waitFor();
  say(`call error ${await error.textContent()}`);

  // The topic list comes from the bridge's view of the mesh: once PUB_TOPIC is there, its listener is known.
  await page.locator(`[data-testid="topic-row"][data-topic="${pubTopic}"]`).waitFor();
  await page.fill("#publish-topic", pubTopic);
  await page.fill("#publish-msg", pubJson);
  await page.click("#publish-send");
  await page.locator('[data-testid="publish-result"][data-state="ok"]').waitFor();
  say(`published ${pubJson} on ${pubTopic}`);

  // The test restarts the bridge now: the page reconnects by itself and echoes again.
  say("ready for restart");
  await page.locator('[data-testid="connection"][data-state="disconnected"]').waitFor();
  say("disconnected");
  await page.click("#echo-clear");
  await page.locator('[data-testid="connection"][data-state="connected"]').waitFor();
  say("reconnected");
  await page.locator('[data-testid="echo-message"]', {hasText: text}).first().waitFor();
  say("echoing again");

  await page.screenshot({path: screenshot, fullPage: true});
  say(`screenshot ${screenshot}`);
  say("ok");
} catch (e) {
  failed = true;
  say(`FAIL: ${e.message}`);
  if (context && context.pages()[0]) {
    await context.pages()[0].screenshot({path: screenshot, fullPage: true}).catch(() => {});
  }
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, {recursive: true, force: true});
}
process.exit(failed ? 1 : 0);
