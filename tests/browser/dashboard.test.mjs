// The dashboard in a real browser (Debian's headless Chromium, driven by playwright-core)
// against a running suite fed by the synthetic plant: see run.sh, which starts both.
//
// TRACERY_URL: the suite's HTTP address; CHROMIUM: the browser; ARTIFACTS: where the
// screenshots go.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.env.TRACERY_URL ?? "http://127.0.0.1:8080";
const artifacts = process.env.ARTIFACTS ?? "screenshots";
mkdirSync(artifacts, { recursive: true });

// The synthetic plant (seed 1): the first run's first unit and one of its supplier lots.
const UNIT = "urn:epc:id:sgtin:4012345.000004.1000000-0-0";
const SUPPLIER_LOT = "urn:epc:class:lgtin:4012345.000001.S1000000-0";
// The second plant's supplier lot whose units fail 20 times as often (run.sh).
const PLANTED_LOT = "/10/S2L10";
// run.sh captured this scan with a wrong check digit (…353 instead of …352).
const MISREAD = "09506000134353";
const CORRECT = "09506000134352";

let browser;
let page;
const shot = (name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  page = await browser.newPage({ viewport: { width: 1440, height: 1000 }, acceptDownloads: true });
  page.on("pageerror", (err) => { throw err; });
});

after(async () => {
  await browser?.close();
});

test("the floor shows the plant's live events, stages and lines", async () => {
  await page.goto(base + "/");
  await page.waitForFunction(() => {
    const seen = document.querySelector("[data-testid=events-seen]");
    return seen && Number(seen.textContent.replace(/\D/g, "")) > 0;
  });
  const feedRows = await page.locator("[data-testid=feed] tbody tr").count();
  assert.ok(feedRows > 0, "live events are listed");
  const lines = await page.locator("[data-testid=lines] tbody tr").allTextContents();
  assert.ok(lines.some((row) => row.includes("00003.1") && row.includes("%")), `a line with its yield: ${lines}`);
  assert.ok(await page.locator("[data-testid=bottlenecks] tr").count() > 0, "the slowest stages are shown");
  await shot("1-floor");
});

test("searching a unit draws its genealogy, and a box leads on", async () => {
  await page.goto(base + "/#/search");
  await page.fill("input[name=id]", UNIT);
  await page.press("input[name=id]", "Enter");
  const graph = page.locator("[data-testid=graph] svg");
  await graph.waitFor();
  // Backward to the lots and suppliers, forward to its case and pallet.
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=graph] g.node").length >= 6);
  const ids = await page.locator("[data-testid=graph] g.node").evaluateAll((nodes) => nodes.map((n) => n.dataset.id));
  assert.ok(ids.some((id) => id.includes("/10/F1000000")), `the finished lot is drawn: ${ids}`);
  assert.ok(ids.some((id) => id.startsWith("https://id.gs1.org/00/")), `a container is drawn: ${ids}`);
  assert.ok(await page.locator("[data-testid=history] tbody tr").count() >= 2, "the unit's history is listed");
  assert.ok(await page.locator("[data-testid=where]").isVisible(), "where it is now");
  await shot("2-search-graph");

  // Clicking the finished lot follows it.
  const lot = ids.find((id) => id.includes("/10/F1000000"));
  await page.locator(`[data-testid=graph] g.node[data-id="${lot}"]`).click();
  await page.waitForFunction((id) => decodeURIComponent(location.hash).includes(id), lot);
  await page.waitForFunction((id) => document.querySelector(`[data-testid=graph] g.node.root[data-id="${id}"]`), lot);
  await shot("3-search-lot");
});

test("a recall shows its scope with counts, and the CSV downloads", async () => {
  await page.goto(base + `/#/recall?id=${encodeURIComponent(SUPPLIER_LOT)}`);
  const total = page.locator("[data-testid=recall-total]");
  await total.waitFor();
  assert.ok(Number(await total.textContent()) > 0, "the lot reached something");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("[data-testid=csv]")]);
  const csv = readFileSync(await download.path(), "utf8");
  assert.match(csv, /^id,name,kind,container,location,location_name,disposition,custodian,custodian_name\n/);
  await shot("4-recall");
});

test("the misread scan raised an alert, which is acknowledged", async () => {
  await page.goto(base + "/#/alerts");
  const row = page.locator("[data-testid=alerts] tbody tr", { hasText: "receiving-quarantined" });
  await row.waitFor();
  assert.match(await row.textContent(), /open/);
  const rules = page.locator("[data-testid=alert-rules]");
  assert.match(await rules.textContent(), /never fires: no sources are listed/);
  await shot("5-alerts");
  await row.getByRole("button", { name: "Acknowledge" }).click();
  const outcome = page.locator("[data-testid=alert-outcome]");
  await outcome.waitFor();
  assert.match(await outcome.textContent(), /receiving-quarantined: acknowledged/);
});

test("a misread scan is corrected and resubmitted from the quarantine queue", async () => {
  await page.goto(base + "/#/quarantine");
  const row = page.locator("[data-testid=quarantine] tbody tr", { hasText: "BAD_CHECK_DIGIT" });
  await row.waitFor();
  await shot("6-quarantine");
  await row.getByRole("button", { name: "Correct…" }).click();
  const editor = row.locator("[data-testid=correction]");
  const draft = await editor.inputValue();
  assert.ok(draft.includes(MISREAD), draft);
  await editor.fill(draft.replaceAll(MISREAD, CORRECT));
  await row.getByRole("button", { name: "Resubmit corrected" }).click();
  const outcome = page.locator("[data-testid=outcome]");
  await outcome.waitFor();
  assert.match(await outcome.textContent(), /stored as \S+ \(sequence \d+\)/);
  await page.locator("[data-testid=quarantine-empty]").waitFor();
  await shot("7-quarantine-resubmitted");
});

test("an analysis of the non-conformant units ranks the planted lot, which leads to its genealogy", async () => {
  await page.goto(base + "/#/analyze");
  await page.fill("input[name=disposition]", "non_conformant");
  await page.getByRole("button", { name: "Analyse" }).click();
  const rows = page.locator("[data-testid=causes] tbody tr");
  await rows.first().waitFor({ timeout: 60_000 });
  const texts = await rows.allTextContents();
  assert.ok(texts.some((row) => row.includes(PLANTED_LOT)), `the planted lot is ranked: ${texts.slice(0, 5)}`);
  await shot("9-analysis");
  await page.locator("[data-testid=causes] a", { hasText: PLANTED_LOT }).first().click();
  await page.waitForFunction((lot) => decodeURIComponent(location.hash).includes(lot), PLANTED_LOT);
  await page.locator("[data-testid=graph] svg").waitFor();
  await shot("10-analysis-lot");
});

test("the trend charts draw the first plant's first day per line, with dwell per stage", async () => {
  // The synthetic plant's events start at 2026-01-01T00:00:00Z.
  await page.goto(base + "/#/trends?from=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z");
  for (const chart of ["chart-events", "chart-yield", "chart-quarantine"]) {
    await page.locator(`[data-testid=${chart}] canvas`).first().waitFor({ timeout: 30_000 });
  }
  await page.locator("[data-testid=chart-dwell] canvas").first().waitFor();
  const legend = await page.locator("[data-testid=chart-events] .u-legend").textContent();
  assert.match(legend, /urn:epc:id:sgln:/, "a series per line");
  await shot("11-trends");
});

test("the integration view shows the connectors' state", async () => {
  await page.goto(base + "/#/integration");
  await page.locator("[data-testid=connectors]").waitFor();
  await shot("8-integration");
});
