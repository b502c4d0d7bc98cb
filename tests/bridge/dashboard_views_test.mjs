// The dashboard's views in a real browser: Debian's Chromium driven by playwright-core.
// tests/integration/bridge_rest_test.cpp starts the bridge, a `meshy topic send` of a number, an
// examples/camera_sender and a `meshy topic echo` of the teleop topic, then runs
//
//   node dashboard_views_test.mjs PAGE_URL PLOT_TOPIC PLOT_FIELD IMAGE_TOPIC TELEOP_TOPIC ARTIFACT_DIR
//
// and this checks that the plot draws points of PLOT_FIELD, that the image view shows frames of the
// MJPEG stream of IMAGE_TOPIC (decoded by Chromium), that the graph lists the topics, and that the
// teleop pad publishes while held ("held" once at least 5 messages went) and stops on release
// ("released"; the test checks the messages with `meshy topic echo`). Screenshots go to ARTIFACT_DIR.
// Progress lines on stdout, "FAIL: ..." and exit 1 on failure.
import {mkdtempSync, rmSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {chromium} from "playwright-core";

const [pageUrl, plotTopic, plotField, imageTopic, teleopTopic, artifactDir] = process.argv.slice(2);
const CHROMIUM = process.env.MESHY_CHROMIUM || "/usr/bin/chromium";
const WAIT_MS = 30000;  // per step; generous for sanitizer builds on a busy machine

function say(line) {
  process.stdout.write(line + "\n");
}

if (!artifactDir) {
  say("usage: node dashboard_views_test.mjs PAGE_URL PLOT_TOPIC PLOT_FIELD IMAGE_TOPIC TELEOP_TOPIC ARTIFACT_DIR");
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), "meshy-dashboard-views-"));
let context;
let failed = false;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: {width: 1400, height: 1000},
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on("pageerror", (e) => say(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") say(`console error: ${m.text()}`);
  });
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.host !== new URL(pageUrl).host) say(`foreign request: ${r.url()}`);
  });

  await page.goto(pageUrl);
  await page.locator('[data-testid="connection"][data-state="connected"]').waitFor();
  say("connected");

  // The graph shows the topics the mesh has (the echo listens to the teleop topic).
  await page.locator(`[data-testid="graph-topic"][data-name="${teleopTopic}"]`).waitFor();
  say("graph lists the teleop topic");

  // Services: rosapi's are hidden until asked for.
  if (await page.locator('[data-testid="service-item"][data-service^="/rosapi/"]').count() !== 0) {
    throw new Error("rosapi services are listed by default");
  }
  await page.check("#rosapi-shown");
  await page.locator('[data-testid="service-item"][data-service="/rosapi/topics"]').waitFor();
  await page.uncheck("#rosapi-shown");
  say("rosapi services hidden by default");

  // Echo with filter and pause.
  await page.fill("#echo-topic", plotTopic);
  await page.click("#echo-start");
  await page.locator('[data-testid="echo-message"]').first().waitFor();
  await page.fill("#echo-filter", "no such text");
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="echo-message"]').length === 0);
  await page.fill("#echo-filter", "1.5");
  await page.locator('[data-testid="echo-message"]').first().waitFor();
  await page.click("#echo-pause");
  const paused = await page.locator('[data-testid="echo-message"]').count();
  // Paused, the page stands still while messages keep coming: three more arrive, none is shown.
  const received = Number(await page.locator("#echo-output").getAttribute("data-received"));
  await page.waitForFunction(
      (n) => Number(document.querySelector("#echo-output").dataset.received) >= n + 3, received);
  if (await page.locator('[data-testid="echo-message"]').count() !== paused) throw new Error("echo moved while paused");
  await page.click("#echo-pause");
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="echo-message"]').length > n, paused);
  await page.click("#echo-stop");
  say("echo filters and pauses");

  // Plot: points of the numeric field.
  await page.fill("#plot-topic", plotTopic);
  await page.fill("#plot-fields", plotField);
  await page.click("#plot-start");
  await page.waitForFunction(() => Number(document.querySelector("#plot").dataset.points) >= 5);
  say(`plot ${await page.locator("#plot").getAttribute("data-points")} points`);
  await page.locator(`#plot-legend [data-field="${plotField}"]`).waitFor();

  // Image view: Chromium decodes frames of the MJPEG stream.
  await page.fill("#image-topic", imageTopic);
  await page.fill("#image-fps", "10");
  await page.click("#image-start");
  await page.waitForFunction(() => document.querySelector("#image").naturalWidth > 0);
  const size = await page.evaluate(() => {
    const i = document.querySelector("#image");
    return `${i.naturalWidth}x${i.naturalHeight}`;
  });
  say(`image ${size}`);
  // Frames keep coming: the picture changes (the camera's bar grows).
  const pixels = () => page.evaluate(() => {
    const i = document.querySelector("#image");
    const c = document.createElement("canvas");
    c.width = i.naturalWidth;
    c.height = i.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(i, 0, 0);
    return Array.from(g.getImageData(0, 0, c.width, c.height).data.filter((_, k) => k % 97 === 0)).join(",");
  });
  const first = await pixels();
  await page.waitForFunction(async (before) => {
    const i = document.querySelector("#image");
    const c = document.createElement("canvas");
    c.width = i.naturalWidth;
    c.height = i.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(i, 0, 0);
    return Array.from(g.getImageData(0, 0, c.width, c.height).data.filter((_, k) => k % 97 === 0)).join(",") !==
           before;
  }, first, {polling: 200});
  say("image changes");

  // Teleop: hold the pad above its centre (forward), then release.
  await page.fill("#teleop-topic", teleopTopic);
  const pad = page.locator("#teleop-pad");
  await pad.scrollIntoViewIfNeeded();
  const box = await pad.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height * 0.2);
  await page.mouse.down();
  await page.locator('#teleop-pad[data-state="held"]').waitFor();
  await page.waitForFunction(() => Number(document.querySelector("#teleop-pad").dataset.published) >= 8);
  say(`held: ${await pad.getAttribute("data-published")} published`);
  await page.screenshot({path: join(artifactDir, "dashboard-views.png"), fullPage: true});
  await page.mouse.up();
  await page.locator('#teleop-pad[data-state="idle"]').waitFor();
  say(`released: ${await pad.getAttribute("data-published")} published`);

  await page.locator("#graph-panel").screenshot({path: join(artifactDir, "dashboard-graph.png")});
  await page.click("#image-stop");
  say("ok");
} catch (e) {
  failed = true;
  say(`FAIL: ${e.message}`);
  if (context && context.pages()[0]) {
    await context.pages()[0].screenshot({path: join(artifactDir, "dashboard-views.png"), fullPage: true})
        .catch(() => {});
  }
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, {recursive: true, force: true});
}
process.exit(failed ? 1 : 0);
