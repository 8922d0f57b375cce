// Working together (issue 22): a trust of five people shares the sections out, hands them
// over, has one returned and fixed, meets a conflicting review, and submits; each person's
// dashboard lists their own sections and no one else's. The approver works with JavaScript
// on; Sam (infrastructure) with JavaScript off, by keyboard, 320 px wide. Screenshots of every
// page go to test-artifacts/screenshots/collab-*.png.
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

async function submitWith(page, name, options = {}) {
  const navigated = page.waitForEvent("framenavigated");
  await page.getByRole("button", { name, ...options }).click();
  await navigated;
  await page.waitForLoadState("load");
}

/** Focus a button with the keyboard's Tab order in mind and press Enter. */
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
      if ((await inputs.count()) > 0) {
        if ((await group.locator(`input[type=${kind}]:checked`).count()) === 0) {
          await page.locator(`label[for="${await inputs.first().getAttribute("id")}"]`).click();
        }
      }
    }
    const number = group.locator("input[inputmode=decimal]");
    if ((await number.count()) > 0 && (await number.inputValue()) === "") await number.fill("42");
    const text = group.locator("textarea");
    if ((await text.count()) > 0 && (await text.inputValue()) === "") await text.fill("Written in the browser test.");
  }
}

const SHARES = [
  ["strategy", "Chris Contributor"],
  ["governance", "Chris Contributor"],
  ["infrastructure", "Sam Okafor"],
  ["cyber", "Jo Lindqvist"],
  ["clinical-care", "Mo Haddad"],
];

test("a trust of five shares out the sections, hands them over, and submits", { timeout: 170_000 }, async (t) => {
  const { base } = server;
  const approver = await newPage();
  await signIn(approver, base, "approver@northfield.dma.example");
  await approver.getByRole("link", { name: "2025/26" }).first().click();
  await approver.waitForURL(/\/assessments\/\d+$/);
  const overview = approver.url();
  await look(t, approver, "collab-01-overview-before", assert);

  // The approver shares out five sections among four people, with a due date.
  const due = new Date(Date.now() + 14 * 86_400_000).toISOString().slice(0, 10);
  for (const [key, name] of SHARES) {
    await approver.goto(`${overview}/sections/${key}`);
    const option = approver.locator("#person option", { hasText: name });
    await approver.locator("#person").selectOption(await option.getAttribute("value"));
    await approver.getByLabel("Due date (optional)").fill(due);
    await submitWith(approver, "Give them this section");
    assert.match(approver.url(), /done=assigned/);
  }
  await look(t, approver, "collab-02-section-assigned", assert);
  await approver.goto(overview);
  const overviewText = await approver.textContent("main");
  for (const [, name] of SHARES) assert.match(overviewText, new RegExp(`With [^·]*${name}`));
  await look(t, approver, "collab-03-overview-shared", assert);

  // Each person sees their own sections and nobody else's.
  const expected = {
    "contributor@northfield.dma.example": ["Digital strategy and leadership", "Clinical and data governance"],
    "infrastructure@northfield.dma.example": ["Infrastructure and records"],
    "cyber@northfield.dma.example": ["Cyber security"],
    "clinical@northfield.dma.example": ["Care pathways"],
  };
  const titles = ["Digital strategy and leadership", "Clinical and data governance", "Infrastructure and records", "Cyber security", "Care pathways"];
  for (const [email, mine] of Object.entries(expected)) {
    const page = await newPage();
    await signIn(page, base, email);
    const table = page.getByRole("region", { name: "Your sections" });
    const listed = await table.locator("tbody tr td:first-child").allTextContents();
    assert.deepEqual(listed.map((s) => s.trim()).sort(), [...mine].sort(), email);
    for (const other of titles.filter((x) => !mine.includes(x))) {
      assert.ok(!listed.includes(other), `${email} is shown ${other}`);
    }
    if (email.startsWith("cyber")) await look(t, page, "collab-04-dashboard-your-sections", assert);
    await page.context().close();
  }

  // Sam works without JavaScript, on a 320 px wide screen, by keyboard.
  const sam = await newPage({ javaScriptEnabled: false, viewport: { width: 320, height: 640 } });
  await signIn(sam, base, "infrastructure@northfield.dma.example");
  await sam.getByRole("link", { name: "Infrastructure and records" }).click();
  await sam.waitForURL(/sections\/infrastructure$/);
  await look(t, sam, "collab-05-section-320-nojs", assert, { checkAccessibility: false });
  await sam.getByRole("link", { name: "Answer the questions in this section" }).click();
  await answerPage(sam);
  await submitWith(sam, "Save", { exact: true });
  await answerPage(sam); // follow-up questions shown by the first save
  await submitWith(sam, "Save", { exact: true });
  await sam.goto(`${overview}/sections/infrastructure`);
  await pressButton(sam, "Mark as ready for review");
  assert.match(await sam.textContent("main"), /The section is ready for review/);
  const width = await sam.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 320, `the section page scrolls sideways at 320 px (${width})`);

  // The approver returns it with a message; Sam sees why at the top of the section.
  await approver.goto(`${overview}/sections/infrastructure`);
  await look(t, approver, "collab-06-ready-for-review", assert);
  await approver.getByLabel("Or return it: what needs to change").fill("Give the EPR's uptime for the last 12 months, not the last month.");
  await submitWith(approver, "Return with this message");
  assert.match(approver.url(), /done=returned/);
  await sam.goto(`${overview}/domains/infrastructure`);
  const returned = sam.locator("#returned");
  assert.match(await returned.textContent(), /last 12 months/);
  const [bannerTop, firstQuestionTop] = await sam.evaluate(() => [
    document.querySelector("#returned").getBoundingClientRect().top,
    document.querySelector("[data-question]").getBoundingClientRect().top,
  ]);
  assert.ok(bannerTop < firstQuestionTop, "the reason is not above the questions");
  await look(t, sam, "collab-07-returned-320-nojs", assert, { checkAccessibility: false });
  await sam.goto(`${overview}/sections/infrastructure`);
  await pressButton(sam, "Mark as ready for review");

  await approver.goto(`${overview}/sections/infrastructure`);
  await submitWith(approver, "Mark as reviewed");
  assert.match(await approver.textContent("main"), /marked as reviewed/);

  // Jo hands over cyber security; two reviewers act on the same page at once.
  const jo = await newPage();
  await signIn(jo, base, "cyber@northfield.dma.example");
  // A section goes for review only with its required questions answered: refused first.
  await jo.goto(`${overview}/sections/cyber`);
  await submitWith(jo, "Mark as ready for review");
  assert.match(await jo.textContent("main"), /before marking the section ready for review/);
  await look(t, jo, "collab-07b-not-ready", assert);
  await jo.goto(`${overview}/domains/cyber`);
  await answerPage(jo);
  await submitWith(jo, "Save", { exact: true });
  await answerPage(jo);
  await submitWith(jo, "Save", { exact: true });
  await jo.goto(`${overview}/sections/cyber`);
  await submitWith(jo, "Mark as ready for review");
  assert.match(await jo.textContent("main"), /The section is ready for review/);
  const first = approver;
  const second = await newPage();
  await signIn(second, base, "approver@northfield.dma.example");
  await first.goto(`${overview}/sections/cyber`);
  await second.goto(`${overview}/sections/cyber`);
  await submitWith(first, "Mark as reviewed");
  await second.getByLabel("Or return it: what needs to change").fill("Name the phishing exercise.");
  await submitWith(second, "Return with this message");
  const conflict = await second.textContent("main");
  assert.match(conflict, /There is a problem/);
  assert.match(conflict, /changed the section "Cyber security" to reviewed/);
  await look(t, second, "collab-08-conflict", assert);

  // Notes on a question: Chris asks, the approver answers and shares one with the
  // submission (Chris works without JavaScript, at 320 px).
  const chris = await newPage({ javaScriptEnabled: false, viewport: { width: 320, height: 640 } });
  await signIn(chris, base, "contributor@northfield.dma.example");
  await chris.goto(`${overview}/domains/strategy`);
  await chris.getByRole("link", { name: "Notes (0) on this question" }).first().click();
  await chris.waitForURL(/questions\/wl-strategy\/notes$/);
  await chris.getByLabel("Add a note").fill("Is the refreshed strategy approved yet, or only the draft?");
  await submitWith(chris, "Add note");
  // Chris corrects his note: the Edit link opens its form in place, without JavaScript.
  await chris.getByRole("link", { name: /^Edit/ }).click();
  await chris.getByLabel("Change your note").fill("Is the refreshed strategy approved yet, or only the draft of January?");
  await submitWith(chris, "Save the change");
  assert.match(await chris.textContent("main"), /Your note has been changed/);
  assert.match(await chris.textContent("main"), /\(edited /);
  await look(t, chris, "collab-09a-notes-320-nojs", assert, { checkAccessibility: false });
  await approver.goto(`${overview}/questions/wl-strategy/notes`);
  await approver.getByLabel("Add a note").fill("Approved by the board on 4 March; minutes item 7.");
  await submitWith(approver, "Add note");
  await approver.getByRole("button", { name: /Share with the submission\W+the note by Priya Approver/ }).click();
  await approver.waitForURL(/done=shared/);
  assert.match(await approver.textContent("main"), /Shared with the submission/);
  await look(t, approver, "collab-09b-notes-shared", assert);
  await approver.goto(`${overview}/domains/strategy`);
  assert.match(await approver.textContent("main"), /Notes \(2\)/);

  // The approver answers what is left and signs off: the page warns about the sections
  // not reviewed, and submitting still works.
  await approver.goto(`${overview}/domains/strategy`);
  for (let i = 0; i < 30 && approver.url().includes("/domains/"); i += 1) {
    await answerPage(approver);
    await submitWith(approver, "Save and continue");
  }
  await approver.goto(`${overview}/submit`);
  const warning = approver.locator("#unreviewed");
  const warned = await warning.textContent();
  assert.match(warned, /Sections not yet reviewed/);
  assert.match(warned, /Care pathways/);
  assert.doesNotMatch(warned, /Infrastructure and records/);
  assert.doesNotMatch(warned, /Cyber security/);
  await look(t, approver, "collab-09c-sign-off-warning", assert);
  await approver.getByLabel("Job title").fill("Chief Information Officer");
  await approver.locator('label[for="declaration"]').click();
  await approver.getByRole("button", { name: "Submit assessment" }).click();
  await approver.waitForURL(/confirmation/);
  await approver.goto(overview);
  assert.match(await approver.textContent("main"), /2 of 8 sections reviewed/);
  await look(t, approver, "collab-10-overview-submitted", assert);

  // An auditor reads the submission's shared note and not the unshared one.
  const auditor = await newPage();
  await signIn(auditor, base, "auditor@dma.example");
  await auditor.goto(`${overview}/questions/wl-strategy/notes`);
  const seen = await auditor.textContent("main");
  assert.match(seen, /minutes item 7/);
  assert.doesNotMatch(seen, /only the draft/);
  await look(t, auditor, "collab-11-auditor-notes", assert);
});

test("a CIO of two trusts switches between them, with JavaScript on, and off by keyboard at 320 px", { timeout: 90_000 }, async (t) => {
  const { base } = server;
  const home = "Thameside University Hospitals NHS Trust";
  const other = "Dales Valley Hospitals NHS Foundation Trust";

  // JavaScript on: the header offers the switcher; the dashboard follows the choice.
  const cio = await newPage();
  await signIn(cio, base, "cio@thameside.dma.example");
  assert.match(await cio.textContent("main"), new RegExp(home));
  await cio.getByRole("navigation", { name: "Primary navigation" }).getByRole("link", { name: "Switch organisation" }).click();
  await cio.waitForURL(`${base}/account/organisations`);
  const list = await cio.textContent("main");
  assert.match(list, /You work for more than one organisation/);
  assert.match(list, /Working for this one now/);
  await look(t, cio, "collab-12-switch-organisations", assert);
  await submitWith(cio, `Work for ${other}`);
  assert.equal(cio.url(), `${base}/dashboard?switched=1`);
  assert.match(await cio.textContent("main"), new RegExp(`You are working for ${other} now`));
  const dashboard = await cio.textContent("main");
  assert.match(dashboard, new RegExp(other));
  assert.doesNotMatch(dashboard, new RegExp(home));
  await look(t, cio, "collab-13-dashboard-after-switch", assert);

  // JavaScript off, 320 px, keyboard only: the same switch back and forth; nothing scrolls
  // sideways; the first browser's choice is its own.
  const narrow = await newPage({ javaScriptEnabled: false, viewport: { width: 320, height: 800 } });
  await signIn(narrow, base, "cio@thameside.dma.example");
  assert.match(await narrow.textContent("main"), new RegExp(home), "a new session starts at home");
  await narrow.goto(`${base}/account/organisations`);
  assert.ok((await narrow.evaluate(() => document.documentElement.scrollWidth)) <= 320, "the switcher scrolls sideways at 320 px");
  // (axe needs the page's JavaScript: it checked this page above, with JavaScript on.)
  await look(t, narrow, "collab-14-switch-organisations-320", assert, { checkAccessibility: false });
  await pressButton(narrow, `Work for ${other}`);
  assert.match(await narrow.textContent("main"), new RegExp(other));
  await narrow.goto(`${base}/account/organisations`);
  await pressButton(narrow, `Work for ${home}`);
  assert.match(await narrow.textContent("main"), new RegExp(home));
  await cio.reload();
  assert.match(await cio.textContent("main"), new RegExp(other), "the first browser still works for the other trust");
  await cio.context().close();
  await narrow.context().close();
});
