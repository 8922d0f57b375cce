// The defects people met using the service (issue 20), each held by a test: follow-up
// questions appearing at once with JavaScript on, stale edits explained in words with a
// one-step "keep mine", check-your-answers and sign-off showing every answer, the
// footer's pages, form errors shown on the form. Screenshots go to test-artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, signIn, look } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.stop();
});

async function newPage(options = {}) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(15_000);
  return context.newPage();
}

/** Sign in and open the 2025/26 assessment's overview; returns its address. */
async function openAssessment(page, email) {
  await signIn(page, server.base, email);
  await page.getByRole("link", { name: "2025/26" }).first().click();
  await page.waitForURL(/\/assessments\/\d+$/);
  return page.url();
}

async function submitWith(page, name, options = {}) {
  const navigated = page.waitForEvent("framenavigated");
  await page.getByRole("button", { name, ...options }).click();
  await navigated;
  await page.waitForLoadState("load");
}

test("with JavaScript on, a follow-up question appears at once, is announced, and the count follows", { timeout: 60_000 }, async (t) => {
  const page = await newPage();
  const overview = await openAssessment(page, "contributor@northfield.dma.example");
  await page.goto(`${overview}/domains/infrastructure`);
  const uptime = page.locator("input[name='q.sf-uptime']");
  assert.equal(await uptime.isVisible(), false, "the follow-up is shown before it applies");
  // Under the page's h1, each question is a second-level heading (no skip to h3).
  assert.equal(await page.locator("h2", { hasText: "Which best describes your electronic patient record?" }).count(), 1);
  const before = await page.locator("[data-progress-label]").textContent();
  await page.locator("label", { hasText: "An EPR in some departments" }).click();
  await uptime.waitFor({ state: "visible", timeout: 5_000 });
  assert.match(await page.locator("[data-reveal-status]").textContent(), /availability of your EPR/);
  assert.match(await page.locator("[data-autosave-status]").textContent(), /Saved at/);
  const afterText = await page.locator("[data-progress-label]").textContent();
  assert.notEqual(afterText, before, "the answered count did not change after autosave");
  // A text answer counts its characters instead of cutting pasted text at the limit.
  const notes = page.locator("textarea[name='q.sf-epr-notes']");
  assert.equal(await notes.getAttribute("maxlength"), null, "pasted text would be cut silently");
  await notes.fill("Second phase next spring.");
  await page.locator("#q-sf-epr-notes-count").getByText(/You have \d+ characters remaining/).waitFor();
  await look(t, page, "p01-follow-up-revealed", assert);
  // Its answer is posted and saved with the rest of the form.
  await uptime.fill("99.5");
  await submitWith(page, "Save", { exact: true });
  assert.equal(await page.locator("input[name='q.sf-uptime']").inputValue(), "99.5");
  assert.match(await page.textContent("main"), /have been saved/);
  // Choosing paper records hides it again.
  await page.locator("label", { hasText: "Paper records in most areas" }).click();
  await uptime.waitFor({ state: "hidden", timeout: 5_000 });
  assert.match(await page.locator("[data-reveal-status]").textContent(), /no longer applies/);
  // At 320 px the revealed question fits.
  await page.setViewportSize({ width: 320, height: 800 });
  await page.locator("label", { hasText: "One EPR across the whole trust" }).click();
  await uptime.waitFor({ state: "visible", timeout: 5_000 });
  await look(t, page, "p02-follow-up-320", assert);
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
});

test("a stale edit shows both answers in words, and the person keeps theirs in one step", { timeout: 60_000 }, async (t) => {
  const mine = await newPage({ javaScriptEnabled: false });
  const overview = await openAssessment(mine, "contributor@northfield.dma.example");
  await mine.goto(`${overview}/domains/strategy`);
  const theirs = await newPage({ javaScriptEnabled: false });
  await signIn(theirs, server.base, "approver@northfield.dma.example");
  await theirs.goto(`${overview}/domains/strategy`);
  await theirs.locator("label", { hasText: "A strategy is being drafted" }).click();
  await submitWith(theirs, "Save", { exact: true });

  await mine.locator("label", { hasText: "The strategy is reviewed yearly" }).click();
  await submitWith(mine, "Save", { exact: true });
  const text = await mine.textContent("main");
  assert.match(text, /How mature is the board-approved digital strategy\?/);
  assert.match(text, /2: A strategy is being drafted/, "their answer is not in words");
  assert.match(text, /5: The strategy is reviewed yearly against measured outcomes/, "your answer is not in words");
  assert.doesNotMatch(text, /wl-strategy/, "the question is named by its key");
  await look(t, mine, "p03-stale-edit", assert, { checkAccessibility: false });
  await submitWith(mine, "Keep my answer");
  await mine.goto(`${overview}/domains/strategy`);
  assert.equal(await mine.locator("input[name='q.wl-strategy'][value='5']").isChecked(), true, "keeping my answer did not save it");
});

test("check answers and sign-off list every answer in words; results show the answer behind each score", { timeout: 60_000 }, async (t) => {
  const page = await newPage();
  const overview = await openAssessment(page, "approver@northfield.dma.example");
  await page.goto(`${overview}/domains/infrastructure`);
  await page.locator("label", { hasText: "An EPR in some departments" }).click();
  await page.locator("input[name='q.sf-uptime']").waitFor({ state: "visible" });
  // A section whose only unanswered question is optional is complete.
  await page.goto(`${overview}/domains/strategy`);
  await page.locator("label", { hasText: "The strategy is approved, resourced and monitored" }).click();
  await page.locator("#q-wl-board-digital-lead-group label", { hasText: "Yes" }).click();
  await submitWith(page, "Save", { exact: true });
  await page.goto(overview);
  assert.match(await page.locator("li.dma-task-list__item", { hasText: "Digital strategy and leadership" }).textContent(), /all required answered/);
  // The header's primary navigation for an approver; the logo goes to their dashboard.
  const nav = page.getByRole("navigation", { name: "Primary navigation" });
  assert.deepEqual((await nav.getByRole("link").allTextContents()).map((s) => s.trim()), ["Home", "People", "Reports"]);
  assert.equal(await page.locator("a.dma-header__service").getAttribute("href"), "/dashboard");
  await look(t, page, "p12-overview-nav", assert);
  await page.goto(`${overview}/review`);
  const review = page.locator("dl.dma-summary-list");
  assert.ok((await review.count()) >= 8, "not one list per section");
  assert.match(await page.textContent("main"), /Which best describes your electronic patient record\?\s*An EPR in some departments\s*Change/);
  await look(t, page, "p04-check-answers", assert);
  await page.goto(`${overview}/submit`);
  assert.match(await page.textContent("main"), /An EPR in some departments/);
  await look(t, page, "p05-sign-off", assert);
  await page.goto(`${overview}/results`);
  await page.locator("summary", { hasText: "Infrastructure and records" }).click();
  const row = page.locator("tr", { hasText: "Which best describes your electronic patient record?" });
  assert.match(await row.textContent(), /An EPR in some departments\s*50\s*0\.50/);
  await look(t, page, "p06-results-workings", assert);
  await page.setViewportSize({ width: 320, height: 800 });
  await page.goto(`${overview}/review`);
  await look(t, page, "p07-check-answers-320", assert);
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "check answers scrolls sideways at 320 px");
  // The radar is drawn whole at 320 px, not cut and scrolled.
  await page.goto(`${overview}/results`);
  const figure = await page.locator("figure.dma-chart-figure").boundingBox();
  const radar = await page.locator("svg.dma-chart--radar").boundingBox();
  assert.ok(radar.x + radar.width <= figure.x + figure.width, `the radar is cut at 320 px (${radar.width}px in a ${figure.width}px figure)`);
  await look(t, page, "p15-results-320", assert);
  // Answer history in words.
  await page.goto(`${overview}/questions/sf-epr/history`);
  assert.match(await page.textContent("main"), /An EPR in some departments/);
  await look(t, page, "p16-history-320", assert);
  await page.goto(`${overview}/results`);
  assert.match(await page.textContent("main"), /Scores run from 1 to 5\./);
});

test("the footer's statements exist; error pages know who is signed in; refused admin forms come back with an error summary", { timeout: 60_000 }, async (t) => {
  const visitor = await newPage({ viewport: { width: 320, height: 800 } });
  await visitor.goto(`${server.base}/`);
  await visitor.getByRole("link", { name: "Accessibility statement" }).click();
  await visitor.waitForURL(/\/accessibility$/);
  assert.equal(await visitor.locator("h1").textContent(), "Accessibility statement");
  await look(t, visitor, "p08-accessibility-320", assert);
  await visitor.getByRole("link", { name: "Privacy", exact: true }).click();
  await visitor.waitForURL(/\/privacy$/);
  await look(t, visitor, "p09-privacy-320", assert);
  assert.ok(await visitor.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));

  const admin = await newPage();
  await signIn(admin, server.base, "admin@dma.example");
  await admin.goto(`${server.base}/no/such/page`);
  assert.equal(await admin.getByRole("button", { name: "Sign out" }).count(), 1, "the error page offers Sign in to a signed-in person");
  await look(t, admin, "p10-not-found-signed-in", assert);
  const nav = admin.getByRole("navigation", { name: "Primary navigation" });
  for (const name of ["Cycles", "Question sets", "Organisations", "People", "Reports", "Audit log"]) {
    assert.equal(await nav.getByRole("link", { name, exact: true }).count(), 1, `no ${name} in the administrator's navigation`);
  }
  await admin.goto(`${server.base}/dashboard`);
  assert.equal(await admin.locator("h1").textContent(), "Run the digital maturity assessment");

  // Extending a deadline with no date: the overview again, the error by the field.
  await admin.goto(`${server.base}/dashboard`);
  const overview = await openAssessmentAsAdmin(admin);
  await admin.goto(overview);
  await submitWith(admin, "Extend deadline");
  assert.match(await admin.textContent("main"), /There is a problem/);
  assert.match(await admin.textContent("main"), /Enter a real date/);
  await look(t, admin, "p11-overview-error", assert);
});

/** The first assessment an administrator can reach (by address: the admin pages list none). */
async function openAssessmentAsAdmin(page) {
  for (let id = 1; id < 50; id += 1) {
    const res = await page.goto(`${server.base}/assessments/${id}`);
    if (res.ok() && (await page.getByRole("button", { name: "Extend deadline" }).count()) > 0) return page.url();
  }
  throw new Error("no open assessment");
}

test("an administrator opens a cycle to see each organisation's progress and reach its assessment", { timeout: 60_000 }, async (t) => {
  const admin = await newPage();
  await signIn(admin, server.base, "admin@dma.example");
  await admin.getByRole("navigation", { name: "Primary navigation" }).getByRole("link", { name: "Cycles" }).click();
  await admin.getByRole("link", { name: "2025/26" }).click();
  await admin.waitForURL(/\/admin\/cycles\/\d+$/);
  const row = admin.locator("tr", { hasText: "Northfield Teaching Hospitals NHS Foundation Trust" });
  assert.match(await row.textContent(), /In progress|Not started|Submitted/);
  await look(t, admin, "p13-admin-cycle", assert);
  await admin.locator("#status").selectOption("not_started");
  await submitWith(admin, "Show");
  assert.match(admin.url(), /status=not_started/);
  await admin.goto(admin.url().replace(/\?.*$/, ""));
  await row.getByRole("link").click();
  await admin.waitForURL(/\/assessments\/\d+$/);
  assert.equal(await admin.getByRole("button", { name: "Extend deadline" }).count(), 1);
  await admin.setViewportSize({ width: 320, height: 800 });
  await admin.goBack();
  await look(t, admin, "p14-admin-cycle-320", assert);
  // The outbox and the audit log show every column at 1280 px (nothing scrolled out of sight).
  await admin.setViewportSize({ width: 1280, height: 800 });
  for (const [name, path] of [["p18-outbox-1280", "/admin/outbox"], ["p19-audit-1280", "/admin/audit"]]) {
    await admin.goto(`${server.base}${path}`);
    const hidden = await admin.evaluate(() => [...document.querySelectorAll(".dma-table-container")].map((c) => c.scrollWidth - c.clientWidth));
    assert.ok(hidden.every((px) => px <= 0), `${path} hides columns at 1280 px (${hidden})`);
    await look(t, admin, name, assert);
  }
  // Opening a cycle with nothing filled in: every problem at once.
  await admin.setViewportSize({ width: 1280, height: 800 });
  await admin.goto(`${server.base}/admin/cycles`);
  await submitWith(admin, "Open the cycle");
  assert.equal(await admin.locator(".dma-error-summary li").count(), 4);
  await look(t, admin, "p17-open-cycle-errors", assert);
  assert.ok(await admin.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "the cycle page scrolls sideways at 320 px");
});
