// The respondent journey in a real browser: an administrator publishes a new version and opens
// a cycle; a contributor and the approver at one trust complete it (JavaScript on, autosave);
// the approver signs off; the results show the chart. An auditor then reads the reports and
// downloads the exports. Every page passes axe-core; the report pages reflow at 320 px.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { inflateRawSync } from "node:zlib";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, launchBrowser, signIn, look, DEMO_PASSWORD } from "./harness.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
let server;
let browser;
/** The assessment the first test submits (its address), for later tests. */
let submittedAssessment;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

/** A new page in its own context (its own cookies), failing fast rather than hanging. */
async function newPage(options = {}) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(15_000);
  return context.newPage();
}

after(async () => {
  await browser?.close();
  server?.stop();
});

/** Answer every empty question on the current domain page the way a person would: click the
 * label of an option, type into boxes. */
async function answerPage(page) {
  // Questions hidden by their conditions are on the page but not shown.
  const groups = await page.locator("fieldset").filter({ visible: true }).all();
  for (const group of groups) {
    const radios = group.locator("input[type=radio]");
    if ((await radios.count()) > 0) {
      if ((await group.locator("input[type=radio]:checked").count()) === 0) {
        const id = await radios.first().getAttribute("id");
        await page.locator(`label[for="${id}"]`).click();
      }
      continue;
    }
    const boxes = group.locator("input[type=checkbox]");
    if ((await boxes.count()) > 0) {
      if ((await group.locator("input[type=checkbox]:checked").count()) === 0) {
        const id = await boxes.first().getAttribute("id");
        await page.locator(`label[for="${id}"]`).click();
      }
      continue;
    }
    const number = group.locator("input[inputmode=decimal]");
    if ((await number.count()) > 0 && (await number.inputValue()) === "") {
      await number.fill("42");
      continue;
    }
    const text = group.locator("textarea");
    if ((await text.count()) > 0 && (await text.inputValue()) === "") {
      await text.fill("Written in the browser test.");
    }
  }
}

/** Click a button that submits a form, and wait until the next page has loaded. */
async function submitWith(page, name, options = {}) {
  const navigated = page.waitForEvent("framenavigated");
  await page.getByRole("button", { name, ...options }).click();
  await navigated;
  await page.waitForLoadState("load");
}

/** Work through domain pages with "Save and continue" until the review page. */
async function completeFrom(page, firstDomainUrl, stopAtDomain = null) {
  await page.goto(firstDomainUrl);
  let pages = 0;
  while (page.url().includes("/domains/") && !(stopAtDomain && page.url().includes(`/domains/${stopAtDomain}`))) {
    await answerPage(page);
    await submitWith(page, "Save and continue");
    pages += 1;
    assert.ok(pages < 30, "did not reach the review page");
  }
}

test("an administrator publishes a new version and opens a cycle; two colleagues complete it", { timeout: 90_000 }, async (t) => {
  const { base } = server;
  const admin = await newPage();
  await signIn(admin, base, "admin@dma.example");
  await look(t, admin, "01-admin-dashboard", assert);

  // Upload a new version, see it as a draft, preview it, publish it behind the confirmation.
  const definition = readFileSync(join(root, "tests/fixtures/wgll-acute-2025.yaml"), "utf8")
    .replace('version: "2025.1"', 'version: "2026.1"');
  const file = join(server.dir, "wgll-acute-2026.yaml");
  writeFileSync(file, definition);
  await admin.goto(`${base}/admin/questionnaires`);
  await look(t, admin, "02-question-sets", assert);
  await admin.setInputFiles("#file", file);
  await admin.getByRole("button", { name: "Check and upload" }).click();
  await admin.waitForURL(/\/admin\/questionnaires\/wgll-acute\/2026\.1/);
  await look(t, admin, "03-version-draft", assert);
  await admin.getByRole("link", { name: "Preview as a respondent" }).click();
  await look(t, admin, "04-preview", assert);
  await admin.goto(`${base}/admin/questionnaires/wgll-acute/2026.1/publish`);
  await admin.locator('label[for="confirm"]').click();
  await admin.getByRole("button", { name: "Publish" }).click();
  await admin.waitForURL(/done=published/);
  assert.match(await admin.textContent("main"), /Published/);

  await admin.goto(`${base}/admin/cycles`);
  await admin.getByLabel("Cycle", { exact: true }).fill("2026/27");
  await admin.getByLabel("Opens on").fill("2026-10-01");
  await admin.getByLabel("Deadline").fill("2027-01-31");
  await admin.locator("#version-acute").selectOption({ label: "wgll-acute 2026.1" });
  await admin.getByRole("button", { name: "Open the cycle" }).click();
  await admin.waitForURL(/done=opened/);
  await look(t, admin, "05-cycles", assert);

  // The contributor starts; autosave records what they choose without a submit.
  const contributor = await newPage();
  await signIn(contributor, base, "contributor@northfield.dma.example");
  await look(t, contributor, "06-contributor-dashboard", assert);
  await contributor.getByRole("link", { name: "2026/27" }).click();
  await contributor.waitForURL(/\/assessments\/\d+$/);
  const assessmentUrl = contributor.url();
  submittedAssessment = assessmentUrl;
  await look(t, contributor, "07-assessment-overview", assert);
  await contributor.goto(`${assessmentUrl}/domains/strategy`);
  await look(t, contributor, "08-domain-page", assert);
  const first = await contributor.locator("fieldset input[type=radio]").nth(3).getAttribute("id");
  await contributor.locator(`label[for="${first}"]`).click();
  await assert.doesNotReject(contributor.getByText(/Saved at/).waitFor({ timeout: 10_000 }), "autosave did not report saving");
  await contributor.reload();
  assert.equal(await contributor.locator(`#${first}`).isChecked(), true, "the autosaved answer did not persist");

  await completeFrom(contributor, `${assessmentUrl}/domains/strategy`, "workforce");

  // The approver finishes the rest, reviews, signs off and submits.
  const approver = await newPage();
  await signIn(approver, base, "approver@northfield.dma.example");
  await completeFrom(approver, `${assessmentUrl}/domains/workforce`);
  await approver.goto(`${assessmentUrl}/review`);
  await look(t, approver, "09-review", assert);
  assert.match(await approver.textContent("main"), /Every required question is answered/);
  await approver.getByRole("link", { name: "Sign off and submit" }).click();
  await look(t, approver, "10-sign-off", assert);
  await submitWith(approver, "Submit assessment");
  assert.match(await approver.textContent("main"), /There is a problem/);
  await look(t, approver, "11-sign-off-errors", assert);
  await approver.getByLabel("Job title").fill("Chief Information Officer");
  await approver.locator('label[for="declaration"]').click();
  await approver.getByRole("button", { name: "Submit assessment" }).click();
  await approver.waitForURL(/confirmation/);
  await look(t, approver, "12-confirmation", assert);
  assert.match(await approver.textContent("main"), /DMA-202627-/);
  await approver.getByRole("link", { name: "See the results by domain" }).click();
  assert.equal(await approver.locator("svg.dma-chart--radar").count(), 1);
  await look(t, approver, "13-results", assert);

  // Read-only for everyone afterwards.
  await contributor.goto(`${assessmentUrl}/domains/strategy`);
  assert.match(await contributor.textContent("main"), /read-only/);
});

/** The bytes of one file in a zip archive (an XLSX file), found through the central
 * directory, so the test needs no unzip program. */
function zipEntry(zip, wanted) {
  let end = zip.length - 22;
  while (end >= 0 && zip.readUInt32LE(end) !== 0x06054b50) end -= 1;
  assert.ok(end >= 0, "not a zip file");
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  for (let i = 0; i < count; i += 1) {
    assert.equal(zip.readUInt32LE(at), 0x02014b50, "bad zip central directory");
    const method = zip.readUInt16LE(at + 10);
    const size = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extra = zip.readUInt16LE(at + 30);
    const comment = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString("utf8", at + 46, at + 46 + nameLength);
    if (name === wanted) {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + size);
      return method === 0 ? data : inflateRawSync(data);
    }
    at += 46 + nameLength + extra + comment;
  }
  throw new Error(`${wanted} is not in the archive`);
}

/** The rows of an XLSX worksheet's XML: each row's cell texts and values, in order (empty
 * cells are not written, so they are left out). */
function sheetRows(xml) {
  const decode = (s) => s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&amp;/g, "&");
  return [...xml.matchAll(/<row[^>]*>(.*?)<\/row>/gs)].map(([, row]) =>
    [...row.matchAll(/<t[^>]*>(.*?)<\/t>|<v>(.*?)<\/v>/gs)].map(([, t, v]) => decode(t ?? v)));
}

/** Follow a link that downloads a file; returns the file's bytes. */
async function download(page, name, fileName) {
  const [file] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name, exact: true }).click()]);
  if (fileName) assert.equal(file.suggestedFilename(), fileName, `${name} is saved under a name with its cycle`);
  return readFileSync(await file.path());
}

// A CSV export's text after its UTF-8 byte-order mark (which Excel needs); fails without one.
function csvText(bytes) {
  assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], "the CSV starts with the UTF-8 byte-order mark");
  return bytes.subarray(3).toString("utf8");
}

/** How far the page scrolls sideways (0 or less: it reflows). */
function overflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

test("an auditor reads the national, regional, organisation and year-on-year reports and downloads the exports", { timeout: 90_000 }, async (t) => {
  const { base } = server;
  const page = await newPage({ acceptDownloads: true });
  await signIn(page, base, "auditor@dma.example");
  await page.getByRole("navigation", { name: "Primary navigation" }).getByRole("link", { name: "Reports" }).click();
  await page.waitForURL(`${base}/reports`);
  await look(t, page, "18-reports-national", assert);
  // The cycle the journey above submitted.
  await page.locator("#cycle").selectOption({ label: "2026/27" });
  await submitWith(page, "Show figures");
  assert.match(await page.textContent("h1"), /2026\/27/);
  assert.equal(await page.locator("#count-submitted").textContent(), "1");
  assert.ok((await page.locator("svg.dma-chart--box").count()) > 0, "no distribution chart");
  await look(t, page, "18-reports-national-2026", assert);

  // The region's view, broken down by ICB.
  await page.locator("#region").selectOption("North East and Yorkshire");
  await page.locator("#by").selectOption("icb");
  await submitWith(page, "Show figures");
  assert.match(page.url(), /region=North/);
  assert.match(await page.textContent("main"), /By ICB/);
  await look(t, page, "19-reports-region", assert);

  // The organisation's report, from the list.
  await page.getByRole("link", { name: "Northfield Teaching Hospitals NHS Foundation Trust" }).first().click();
  await page.waitForURL(/\/reports\/organisations\/\d+/);
  assert.equal(await page.locator("svg.dma-chart--radar").count(), 1);
  assert.match(await page.textContent("main"), /All answers/);
  await look(t, page, "20-reports-organisation", assert);

  // Year on year, then comparable figures only.
  await page.goBack();
  await page.getByRole("link", { name: "See these organisations year on year" }).click();
  await page.waitForURL(/\/reports\/trends/);
  await look(t, page, "21-reports-trends", assert);
  await page.getByRole("link", { name: "Show comparable figures only" }).click();
  await page.waitForURL(/comparable=1/);
  assert.match(await page.textContent("main"), /Showing comparable figures only/);
  await look(t, page, "22-reports-trends-comparable", assert);

  // Exports of the region's figures: the documented header and a row for the organisation
  // that submitted.
  await page.goto(`${base}/reports?cycle=2026/27&region=North%20East%20and%20Yorkshire`);
  const csv = csvText(await download(page, "Scores (CSV)", "dma-scores-2026-27.csv")).split("\n");
  assert.match(csv[0], /^assessment_id,cycle,organisation_ods_code,organisation_name,/);
  assert.ok(csv.some((line) => line.includes(",RZ1,Northfield Teaching Hospitals")), "no CSV row for RZ1");
  const answers = csvText(await download(page, "Answers (CSV)", "dma-answers-2026-27.csv"));
  assert.match(answers, /^assessment_id,cycle,organisation_ods_code,/);
  for (const [label, name] of [["Scores (Excel, XLSX)", "scores"], ["Answers (Excel, XLSX)", "answers"]]) {
    const book = await download(page, label, `dma-${name}-2026-27.xlsx`);
    assert.match(zipEntry(book, "xl/workbook.xml").toString("utf8"), new RegExp(`name="${name}"`));
    const rows = sheetRows(zipEntry(book, "xl/worksheets/sheet1.xml").toString("utf8"));
    assert.deepEqual(rows[0].slice(0, 4), ["assessment_id", "cycle", "organisation_ods_code", "organisation_name"], `${label} header`);
    assert.ok(rows.slice(1).some((r) => r.includes("RZ1") && r.includes("Northfield Teaching Hospitals NHS Foundation Trust")), `no ${label} row for RZ1`);
  }
});

test("the administration, account and report pages pass axe-core, and the reports reflow at 320 px", { timeout: 90_000 }, async (t) => {
  const { base } = server;
  const admin = await newPage();
  await signIn(admin, base, "admin@dma.example");
  for (const [name, path] of [
    ["23-admin-users", "/admin/users"],
    ["24-admin-invite", "/admin/users/invite"],
    ["25-admin-organisations", "/admin/organisations"],
    ["26-admin-audit", "/admin/audit"],
    ["27-admin-outbox", "/admin/outbox"],
    ["28-admin-cycles", "/admin/cycles"],
  ]) {
    await admin.goto(`${base}${path}`);
    assert.equal(await admin.locator("h1").count(), 1, `${path} has no heading`);
    await look(t, admin, name, assert);
  }
  await admin.goto(`${base}/account/tokens`);
  await admin.getByLabel("Name").fill("Browser test");
  // Signed in moments ago, so no confirmation is asked (docs/security.md).
  await submitWith(admin, "Create token");
  assert.equal(await admin.locator("#new-token").count(), 1, "the new token is not shown");
  await look(t, admin, "29-api-tokens", assert);
  // The re-authentication page and the second factor's set-up page (issue 24).
  await admin.goto(`${base}/account/confirm?next=/account/tokens`);
  await look(t, admin, "29-confirm-it-is-you", assert);
  await admin.goto(`${base}/account/second-factor`);
  await look(t, admin, "29-second-factor-setup", assert);

  const approver = await newPage();
  await signIn(approver, base, "approver@northfield.dma.example");
  await approver.goto(`${base}/organisation/users`);
  await look(t, approver, "30-organisation-users", assert);
  assert.ok(submittedAssessment, "the journey test did not run first");
  await approver.goto(`${submittedAssessment}/questions/wl-strategy/history`);
  await look(t, approver, "31-answer-history", assert);

  const visitor = await newPage();
  await visitor.goto(`${base}/account/reset-password`);
  await look(t, visitor, "32-reset-password", assert);

  // 320 CSS pixels wide: a 1280-pixel window at 400% zoom.
  const narrow = await newPage({ viewport: { width: 320, height: 800 } });
  await signIn(narrow, base, "auditor@dma.example");
  await narrow.goto(`${base}/reports?cycle=2026/27`);
  const report = await narrow.getByRole("link", { name: "Northfield Teaching Hospitals NHS Foundation Trust" }).first().getAttribute("href");
  for (const [name, path] of [
    ["33-reports-national-320", "/reports?cycle=2026/27&by=region"],
    ["34-reports-organisation-320", report],
    ["35-reports-trends-320", "/reports/trends?comparable=1"],
    ["36-reports-progress-320", "/reports/progress"],
  ]) {
    await narrow.goto(`${base}${path}`);
    await look(t, narrow, name, assert);
    assert.ok((await overflow(narrow)) <= 0, `${path} scrolls sideways at 320 px by ${await overflow(narrow)}px`);
  }
});

test("the respondent flow works with JavaScript off and with the keyboard", { timeout: 60_000 }, async (t) => {
  const { base } = server;
  const page = await newPage({ javaScriptEnabled: false });
  // Keyboard only: type, Tab to the next field, Enter submits.
  await page.goto(`${base}/login`);
  await page.getByLabel("Email address").focus();
  await page.keyboard.type("contributor@northfield.dma.example");
  await page.keyboard.press("Tab");
  await page.keyboard.type("demo passphrase not for production");
  await page.keyboard.press("Enter");
  await page.waitForURL(`${base}/dashboard`);
  await page.getByRole("link", { name: "2025/26" }).click();
  await page.waitForURL(/\/assessments\/\d+$/);
  const overview = page.url();
  // The uptime question is conditional on the EPR answer: without JavaScript it appears once
  // the EPR answer is saved.
  await page.goto(`${overview}/domains/infrastructure`);
  assert.equal(await page.locator("input[name='q.sf-uptime']").isVisible(), false);
  await page.locator("label", { hasText: "One EPR across the whole trust" }).click();
  await submitWith(page, "Save and continue");
  assert.match(page.url(), /domains\/infrastructure\?saved=1/, "new question not shown before moving on");
  assert.equal(await page.locator("input[name='q.sf-uptime']").count(), 1);
  await page.locator("input[name='q.sf-uptime']").fill("lots");
  await submitWith(page, "Save", { exact: true });
  assert.match(await page.textContent("main"), /There is a problem/);
  assert.equal(await page.locator("input[name='q.sf-uptime']").inputValue(), "lots", "what was typed was lost");
  await look(t, page, "14-no-js-error", assert, { checkAccessibility: false });
});

test("every public page type passes axe-core and reflows at 320 px", { timeout: 60_000 }, async (t) => {
  const { base } = server;
  const page = await newPage({ viewport: { width: 320, height: 800 } });
  for (const [name, path] of [["15-start", "/"], ["16-sign-in", "/login"], ["17-not-found", "/no/such/page"]]) {
    await page.goto(`${base}${path}`);
    await look(t, page, name, assert);
    const sideways = await overflow(page);
    assert.ok(sideways <= 0, `${path} scrolls sideways at 320 px by ${sideways}px`);
  }
  // An error page shows its request id, which differs each time and once, wider than the
  // others, scrolled the page sideways: several of them, so a wide one is met.
  for (let i = 0; i < 8; i += 1) {
    await page.goto(`${base}/no/such/page/${i}`);
    const sideways = await overflow(page);
    assert.ok(sideways <= 0, `an error page scrolls sideways at 320 px by ${sideways}px (request id ${await page.textContent("code")})`);
  }
});
