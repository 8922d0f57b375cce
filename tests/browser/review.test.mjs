// Auditor review and improvement plans (issue 23): the approver submits; the auditor raises a
// query on a question (JavaScript on); the approver answers it and changes the answer with
// JavaScript off, by keyboard, 320 px wide (re-scored, resubmitted); the auditor closes the
// query and accepts the section; the approver starts an improvement plan action from the
// results page's path to the next band. Screenshots go to test-artifacts/screenshots/review-*.png.
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

async function submitWith(page, name) {
  const navigated = page.waitForEvent("framenavigated");
  await page.getByRole("button", { name }).click();
  await navigated;
  await page.waitForLoadState("load");
}

/** Focus a button and press Enter, as a keyboard user does. */
async function pressButton(page, name) {
  const navigated = page.waitForEvent("framenavigated");
  await page.getByRole("button", { name }).focus();
  await page.keyboard.press("Enter");
  await navigated;
  await page.waitForLoadState("load");
}

/** Answer every empty, shown question of the current domain page. */
async function answerPage(page) {
  for (const group of await page.locator("fieldset").filter({ visible: true }).all()) {
    for (const kind of ["radio", "checkbox"]) {
      const inputs = group.locator(`input[type=${kind}]`);
      if ((await inputs.count()) > 0 && (await group.locator(`input[type=${kind}]:checked`).count()) === 0) {
        await page.locator(`label[for="${await inputs.first().getAttribute("id")}"]`).click();
      }
    }
    const number = group.locator("input[inputmode=decimal]");
    if ((await number.count()) > 0 && (await number.inputValue()) === "") await number.fill("42");
    const text = group.locator("textarea");
    if ((await text.count()) > 0 && (await text.inputValue()) === "") await text.fill("Written in the browser test.");
  }
}

/** How far the page scrolls sideways (0 or less: it reflows). */
function overflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

test("an auditor raises a query and the organisation answers it with a changed answer", { timeout: 170_000 }, async (t) => {
  const { base } = server;
  const approver = await newPage();
  await signIn(approver, base, "approver@northfield.dma.example");
  await approver.getByRole("link", { name: "2025/26" }).first().click();
  await approver.waitForURL(/\/assessments\/\d+$/);
  const overview = approver.url();
  await approver.goto(`${overview}/domains/strategy`);
  for (let i = 0; i < 30 && approver.url().includes("/domains/"); i += 1) {
    await answerPage(approver);
    await submitWith(approver, "Save and continue");
  }
  await approver.goto(`${overview}/submit`);
  await approver.getByLabel("Job title").fill("Chief Information Officer");
  await approver.locator('label[for="declaration"]').click();
  await approver.getByRole("button", { name: "Submit assessment" }).click();
  await approver.waitForURL(/confirmation/);
  await approver.goto(overview);
  assert.match(await approver.textContent("#audit-state"), /Not reviewed/);

  // The auditor raises a query on the strategy question.
  const auditor = await newPage();
  await signIn(auditor, base, "auditor@dma.example");
  await auditor.goto(`${overview}/audit`);
  await look(t, auditor, "review-01-auditor-before", assert);
  await auditor.locator("#section-strategy summary").click();
  await auditor.locator("#strategy-question").selectOption("wl-strategy");
  // An empty query is refused with the reason beside the field.
  await submitWith(auditor, "Raise the query");
  assert.match(await auditor.textContent("main"), /Say what you are asking about/);
  await look(t, auditor, "review-02-auditor-empty-query", assert);
  await auditor.locator("#strategy-message").fill("Where is the evidence that the strategy is resourced?");
  await submitWith(auditor, "Raise the query");
  assert.match(await auditor.textContent("main"), /The query has been raised/);
  assert.match(await auditor.textContent("#section-strategy"), /Queried/);
  await look(t, auditor, "review-03-auditor-queried", assert);

  // The approver answers with JavaScript off, by keyboard, at 320 px, and changes the answer.
  const narrow = await newPage({ javaScriptEnabled: false, viewport: { width: 320, height: 640 } });
  await signIn(narrow, base, "approver@northfield.dma.example");
  await narrow.goto(`${overview}/audit`);
  await narrow.getByRole("link", { name: /Open the query on .* to answer it/ }).first().click();
  await narrow.waitForURL(/audit\/queries\/\d+$/);
  assert.ok((await overflow(narrow)) <= 0, "the query page scrolls sideways at 320 px");
  await narrow.getByLabel("Your answer to the auditor").fill("Funded in the 2026 budget; board minutes item 7.");
  await narrow.getByLabel(/reviewed yearly against measured outcomes/).check();
  await submitWith(narrow, "Send the answer");
  // Without the declaration the change is refused, and what was typed is kept.
  assert.match(await narrow.textContent("main"), /Confirm the declaration to change the answer/);
  assert.equal(await narrow.getByLabel("Your answer to the auditor").inputValue(), "Funded in the 2026 budget; board minutes item 7.");
  await look(t, narrow, "review-04-answer-320-nojs-refused", assert, { checkAccessibility: false });
  // By keyboard: the declaration ticked with Space, then Tab to the button and Enter.
  await narrow.getByLabel(/I confirm the new answer is accurate/).focus();
  await narrow.keyboard.press("Space");
  const sent = narrow.waitForEvent("framenavigated");
  await narrow.keyboard.press("Tab");
  await narrow.keyboard.press("Enter");
  await sent;
  await narrow.waitForLoadState("load");
  assert.match(await narrow.textContent("main"), /Your answer has been sent to the auditor/);
  assert.ok((await overflow(narrow)) <= 0, "the review page scrolls sideways at 320 px");
  await look(t, narrow, "review-05-answered-320-nojs", assert, { checkAccessibility: false });

  // The auditor sees the answer, closes the query and accepts the section by keyboard.
  await auditor.goto(`${overview}/audit`);
  assert.match(await auditor.textContent("#section-strategy"), /answer changed and resubmitted/);
  await auditor.getByRole("link", { name: /Open the query/ }).first().click();
  await auditor.waitForURL(/audit\/queries\/\d+$/);
  await look(t, auditor, "review-06-auditor-query-answered", assert);
  await pressButton(auditor, "Close the query");
  assert.match(await auditor.textContent("main"), /The query is closed/);
  await pressButton(auditor, /^Accept this section\W+Digital strategy/);
  assert.match(await auditor.textContent("#section-strategy"), /Accepted/);
  assert.match(await auditor.textContent("#review"), /In review/);
  await look(t, auditor, "review-07-auditor-accepted", assert);

  // The results page shows the review, and starts a plan action from the next band.
  await approver.goto(`${overview}/results`);
  assert.match(await approver.textContent("#review-state"), /In review/);
  await look(t, approver, "review-08-results", assert);
  await approver.getByRole("button", { name: /Add to the improvement plan/ }).first().click();
  await approver.waitForURL(/\/plan\?/);
  assert.match(await approver.textContent("main"), /Filled in from the path to the next band/);
  assert.match(await approver.locator("#title").inputValue(), /^Reach /);
  await approver.getByLabel("Or the owner's name or role").fill("Head of Digital");
  await submitWith(approver, "Add the action");
  assert.match(await approver.textContent("main"), /The action has been added to the plan/);
  await look(t, approver, "review-09-plan", assert);
  const plan320 = await newPage({ viewport: { width: 320, height: 640 } });
  await signIn(plan320, base, "approver@northfield.dma.example");
  await plan320.goto(`${overview}/plan`);
  assert.ok((await overflow(plan320)) <= 0, "the plan page scrolls sideways at 320 px");
  await look(t, plan320, "review-10-plan-320", assert);
});
