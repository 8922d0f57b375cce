// Authoring a question set in the browser (issue 26): an administrator builds a small set from
// nothing in the editor, publishes it, opens a cycle with it, and a contributor answers it;
// once with JavaScript on (checked with axe-core), once with JavaScript off at 320 px, where
// every change is a plain form post and a refused change shows its error beside the field.
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

/** Click a button that submits a form and wait for the next page. */
async function submitWith(page, name, options = {}) {
  const navigated = page.waitForEvent("framenavigated");
  await page.getByRole("button", { name, ...options }).first().click();
  await navigated;
  await page.waitForLoadState("load");
}

/** Build "key" from nothing: a yes/no and a single-choice question shown only after Yes. */
async function buildSet(t, page, key, title, shots, a11y) {
  const { base } = server;
  await page.goto(`${base}/admin/questionnaires`);
  await page.getByRole("link", { name: "Start a question set in the editor" }).click();
  await look(t, page, `${shots}-new`, assert, a11y);
  await page.getByLabel("Key").fill(key);
  await page.getByLabel("Version").fill("1");
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Care settings").fill("acute");
  await submitWith(page, "Create the draft");
  assert.match(page.url(), new RegExp(`/admin/questionnaires/${key}/1/edit\\?done=created`));
  // The first question: reword it.
  await page.getByRole("link", { name: "New question: write the question here" }).click();
  await page.getByLabel("Question", { exact: true }).fill("Is there a board-approved digital strategy?");
  await submitWith(page, "Save question");
  assert.match(page.url(), /done=saved/);
  // A second question, of another type, with a condition chosen from the first one's values.
  await page.getByLabel("Type of the new question").selectOption("single");
  await submitWith(page, "Add a question to New domain");
  assert.match(page.url(), /\/edit\/0\/1$/);
  await page.getByLabel("Question", { exact: true }).fill("How is the strategy funded?");
  await page.locator("#question-options-0--label").fill("Not funded");
  await page.locator("#question-options-1--label").fill("Fully funded");
  await page.locator("#question-options-2--key").fill("partly");
  await page.locator("#question-options-2--label").fill("Partly funded");
  await page.locator("#question-options-2--score").fill("0.5");
  await page.locator("#question-show_if_rows-0--test").selectOption("question-1|equals|true");
  await look(t, page, `${shots}-question`, assert, a11y);
  await submitWith(page, "Save question");
  assert.match(page.url(), /done=saved/);
  await look(t, page, `${shots}-editor`, assert, a11y);
  assert.match(await page.textContent("main"), /shown on a condition/);
  // Publish behind the confirmation.
  await page.goto(`${base}/admin/questionnaires/${key}/1/publish`);
  await page.locator('label[for="confirm"]').click();
  await submitWith(page, "Publish");
  assert.match(page.url(), /done=published/);
}

async function openCycle(page, label, key) {
  const { base } = server;
  await page.goto(`${base}/admin/cycles`);
  await page.getByLabel("Cycle", { exact: true }).fill(label);
  await page.getByLabel("Opens on").fill("2026-10-01");
  await page.getByLabel("Deadline").fill("2027-01-31");
  await page.locator("#version-acute").selectOption({ label: `${key} 1` });
  await submitWith(page, "Open the cycle");
  assert.match(page.url(), /done=opened/);
}

/** The contributor answers Yes, sees the follow-up, answers it, and reaches the review. */
async function answer(t, page, label, shots, a11y, js) {
  const { base } = server;
  await signIn(page, base, "contributor@northfield.dma.example");
  await page.getByRole("link", { name: label }).click();
  await page.waitForURL(/\/assessments\/\d+$/);
  const url = page.url();
  await page.goto(`${url}/domains/domain-1`);
  const followUp = page.getByRole("heading", { name: "How is the strategy funded?" });
  assert.equal(await followUp.isVisible(), false, "the follow-up shows before Yes");
  await page.locator("#q-question-1-group").getByText("Yes", { exact: true }).click();
  if (!js) await submitWith(page, "Save and continue");
  await followUp.waitFor({ state: "visible" });
  await page.getByText("Partly funded").click();
  await look(t, page, `${shots}-answer`, assert, a11y);
  await submitWith(page, "Save and continue");
  await page.goto(`${url}/review`);
  assert.match(await page.textContent("main"), /Every required question is answered/);
  await look(t, page, `${shots}-review`, assert, a11y);
}

test("with JavaScript on, a set built in the editor is published, opened in a cycle and answered", { timeout: 120_000 }, async (t) => {
  const admin = await newPage();
  await signIn(admin, server.base, "admin@dma.example");
  await buildSet(t, admin, "browser-set", "Built in the browser", "a01", {});
  await openCycle(admin, "2027/28", "browser-set");
  const contributor = await newPage();
  await answer(t, contributor, "2027/28", "a02", {}, true);
});

test("with JavaScript off at 320 px the editor works by forms alone and shows errors beside the field", { timeout: 120_000 }, async (t) => {
  const opts = { javaScriptEnabled: false, viewport: { width: 320, height: 800 } };
  const noA11y = { checkAccessibility: false };
  const admin = await newPage(opts);
  await signIn(admin, server.base, "admin@dma.example");
  // A refused change first: a duplicate option key, beside its field with the format's path.
  await admin.goto(`${server.base}/admin/questionnaires/new`);
  await admin.getByLabel("Key").fill("small-set");
  await admin.getByLabel("Version").fill("1");
  await admin.getByLabel("Title").fill("Small");
  await admin.getByLabel("Care settings").fill("acute");
  await submitWith(admin, "Create the draft");
  await admin.getByLabel("Type of the new question").selectOption("single");
  await submitWith(admin, "Add a question to New domain");
  await admin.locator("#question-options-1--key").fill("no");
  await submitWith(admin, "Save question");
  const error = admin.locator("#question-options-1--key-error");
  assert.match(await error.textContent(), /domains\[0\]\.questions\[1\]\.options\[1\]\.key/);
  await look(t, admin, "a03-question-error-320", assert, noA11y);
  assert.ok(await admin.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "the question form scrolls sideways at 320 px");
  // Reorder and remove with buttons; add a domain and a pillar.
  await admin.goto(`${server.base}/admin/questionnaires/small-set/1/edit`);
  await submitWith(admin, "Add a domain");
  await submitWith(admin, "Move up domain New domain");
  await submitWith(admin, "Add a pillar");
  await look(t, admin, "a04-editor-320", assert, noA11y);
  assert.ok(await admin.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "the editor scrolls sideways at 320 px");
  await submitWith(admin, "Remove pillar New pillar");
  await submitWith(admin, "Remove domain New domain");
  // Then the same set as with JavaScript, answered without it.
  await buildSet(t, admin, "browser-nojs", "Built without JavaScript", "a05", noA11y);
  await openCycle(admin, "2028/29", "browser-nojs");
  const contributor = await newPage(opts);
  await answer(t, contributor, "2028/29", "a06", noA11y, false);
});
