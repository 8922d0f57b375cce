// Administrators' pages added for issue 20: an organisation's page (change, close), a
// person's page (change role, send an invitation again) and closing a cycle, each with
// JavaScript on (checked with axe-core) and off at 320 px (no sideways scrolling of the page;
// wide tables scroll in their own focusable region). Screenshots go to test-artifacts/.
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

const narrow = { javaScriptEnabled: false, viewport: { width: 320, height: 800 } };
const noA11y = { checkAccessibility: false };

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

const fitsWidth = (page) =>
  page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

test("an organisation is changed by the registry's rules and closed after a confirmation", { timeout: 120_000 }, async (t) => {
  const admin = await newPage();
  await signIn(admin, server.base, "admin@dma.example");
  await admin.goto(`${server.base}/admin/organisations?q=RZ1`);
  await admin.locator("a[href^='/admin/organisations/']", { hasText: "Northfield" }).first().click();
  await admin.waitForURL(/\/admin\/organisations\/\d+$/);
  const orgUrl = admin.url();
  await look(t, admin, "ad01-organisation", assert);
  await admin.getByLabel("Care settings").fill("Acute Care");
  await submitWith(admin, "Save changes");
  assert.ok(await admin.locator(".dma-error-summary").isVisible(), "no error summary");
  assert.match(await admin.locator("#settings-error").textContent(), /settings/i);
  await look(t, admin, "ad02-organisation-error", assert);

  // Without JavaScript, at 320 px: the same page fits, its table scrolls in its own region.
  const narrowAdmin = await newPage(narrow);
  await signIn(narrowAdmin, server.base, "admin@dma.example");
  await narrowAdmin.goto(orgUrl);
  assert.ok(await fitsWidth(narrowAdmin), "the organisation page scrolls sideways at 320 px");
  const region = narrowAdmin.locator(".dma-table-container").first();
  assert.equal(await region.getAttribute("tabindex"), "0");
  assert.equal(await region.getAttribute("role"), "region");
  await look(t, narrowAdmin, "ad03-organisation-320", assert, noA11y);
  await narrowAdmin.getByLabel("Name").fill("Northfield Teaching Hospitals NHS Trust");
  await submitWith(narrowAdmin, "Save changes");
  assert.match(await narrowAdmin.locator(".dma-notification").textContent(), /was saved/);
  await narrowAdmin.getByRole("link", { name: /^Close Northfield/ }).click();
  await narrowAdmin.waitForURL(/\/close$/);
  assert.ok(await fitsWidth(narrowAdmin), "the close page scrolls sideways at 320 px");
  await look(t, narrowAdmin, "ad04-organisation-close-320", assert, noA11y);
  // The confirmation itself is checked with JavaScript on, then cancelled.
  await admin.goto(`${orgUrl}/close`);
  await look(t, admin, "ad05-organisation-close", assert);
  await admin.getByRole("link", { name: "Cancel" }).click();
  await admin.waitForURL(orgUrl);
});

test("an administrator changes a person's role and sends an invitation again", { timeout: 120_000 }, async (t) => {
  const admin = await newPage();
  await signIn(admin, server.base, "admin@dma.example");
  await admin.goto(`${server.base}/admin/users?q=clinical`);
  await admin.locator("table a[href^='/admin/users/']").first().click();
  await admin.waitForURL(/\/admin\/users\/\d+$/);
  await look(t, admin, "ad06-person", assert);
  await admin.getByLabel("Group viewer").check();
  await submitWith(admin, "Change role");
  assert.ok(await admin.locator(".dma-error-summary").isVisible(), "no error summary");
  await look(t, admin, "ad07-person-error", assert);
  await admin.getByLabel("Approver").check();
  await admin.getByLabel("Organisation ODS code").fill("RZ1");
  await submitWith(admin, "Change role");
  assert.match(await admin.locator(".dma-notification").textContent(), /role was changed/);

  // Someone invited but not yet signed up, without JavaScript at 320 px.
  const narrowAdmin = await newPage(narrow);
  await signIn(narrowAdmin, server.base, "admin@dma.example");
  await narrowAdmin.goto(`${server.base}/admin/users/invite`);
  await narrowAdmin.getByLabel("Email address").fill("new.person@northfield.dma.example");
  await narrowAdmin.getByLabel("Full name").fill("New Person");
  await narrowAdmin.getByLabel("Contributor").check();
  await narrowAdmin.getByLabel("Organisation ODS code").fill("RZ1");
  await submitWith(narrowAdmin, "Send invitation");
  await narrowAdmin.goto(`${server.base}/admin/users?q=new.person`);
  assert.ok(await fitsWidth(narrowAdmin), "the people list scrolls sideways at 320 px");
  await narrowAdmin.locator("table a[href^='/admin/users/']", { hasText: "New Person" }).click();
  await narrowAdmin.waitForURL(/\/admin\/users\/\d+$/);
  assert.ok(await fitsWidth(narrowAdmin), "the person page scrolls sideways at 320 px");
  await submitWith(narrowAdmin, /Send a new invitation/);
  assert.match(await narrowAdmin.locator(".dma-notification").textContent(), /new invitation was sent/);
  await look(t, narrowAdmin, "ad08-person-invited-again-320", assert, noA11y);
});

test("an assessment prints with its answers or blank, laid out for paper", { timeout: 60_000 }, async (t) => {
  const page = await newPage();
  await signIn(page, server.base, "contributor@northfield.dma.example");
  await page.getByRole("link", { name: "2025/26" }).first().click();
  await page.waitForURL(/\/assessments\/\d+$/);
  const overview = page.url();
  await page.getByRole("link", { name: "the questions with your answers" }).click();
  await page.waitForURL(/\/print$/);
  assert.ok(await page.getByText("Asked only when").first().isVisible(), "no conditions in words");
  await look(t, page, "ad17-print", assert);
  await page.emulateMedia({ media: "print" });
  assert.equal(await page.locator(".dma-navigation").isVisible(), false, "the menus are printed");
  await look(t, page, "ad18-print-media", assert, noA11y);
  const narrowPage = await newPage(narrow);
  await signIn(narrowPage, server.base, "contributor@northfield.dma.example");
  await narrowPage.goto(`${overview}/print?blank=yes`);
  assert.ok(await fitsWidth(narrowPage), "the print page scrolls sideways at 320 px");
  await look(t, narrowPage, "ad19-print-blank-320", assert, noA11y);
});

test("closing a cycle is confirmed, then respondents are told and can change nothing", { timeout: 120_000 }, async (t) => {
  const narrowAdmin = await newPage(narrow);
  await signIn(narrowAdmin, server.base, "admin@dma.example");
  await narrowAdmin.goto(`${server.base}/admin/cycles`);
  assert.ok(await fitsWidth(narrowAdmin), "the cycles page scrolls sideways at 320 px");
  await narrowAdmin.getByRole("link", { name: "2025/26" }).click();
  await narrowAdmin.waitForURL(/\/admin\/cycles\/\d+$/);
  const cycleUrl = narrowAdmin.url();
  assert.ok(await fitsWidth(narrowAdmin), "the cycle page scrolls sideways at 320 px");
  await narrowAdmin.getByRole("link", { name: "Close this cycle" }).click();
  await narrowAdmin.waitForURL(/\/close$/);
  assert.ok(await fitsWidth(narrowAdmin), "the close page scrolls sideways at 320 px");
  await look(t, narrowAdmin, "ad09-cycle-close-320", assert, noA11y);

  const admin = await newPage();
  await signIn(admin, server.base, "admin@dma.example");
  await admin.goto(`${cycleUrl}/close`);
  await look(t, admin, "ad10-cycle-close", assert);

  await submitWith(narrowAdmin, "Close cycle 2025/26");
  assert.match(await narrowAdmin.locator(".dma-notification").textContent(), /The cycle is closed/);
  await look(t, narrowAdmin, "ad11-cycle-closed-320", assert, noA11y);
  await admin.goto(cycleUrl);
  assert.match(await admin.locator("main").textContent(), /Not submitted/);
  await look(t, admin, "ad12-cycle-closed", assert);

  // A respondent: told why, with no way to change or submit.
  const contributor = await newPage();
  await signIn(contributor, server.base, "contributor@northfield.dma.example");
  await contributor.getByRole("link", { name: "2025/26" }).first().click();
  await contributor.waitForURL(/\/assessments\/\d+$/);
  const overview = contributor.url();
  assert.match(await contributor.locator("#closed").textContent(), /cycle closed on/);
  assert.equal(await contributor.getByRole("link", { name: "Sign off and submit" }).count(), 0);
  await look(t, contributor, "ad13-respondent-closed", assert);
  await contributor.goto(`${overview}/domains/infrastructure`);
  assert.equal(await contributor.locator("form[data-autosave-url]").count(), 0, "autosave still on");
  assert.match(await contributor.locator("main").textContent(), /recorded as not submitted/);
});

test("people are invited from a CSV file after a preview, without JavaScript at 320 px", { timeout: 120_000 }, async (t) => {
  const admin = await newPage(narrow);
  await signIn(admin, server.base, "admin@dma.example");
  await admin.goto(`${server.base}/admin/users/import`);
  const file = (text) => ({ name: "people.csv", mimeType: "text/csv", buffer: Buffer.from(text) });
  await admin.setInputFiles("#file", file("email,name,role,organisation\nbad-address,Bad,org_contributor,RZ1\n"));
  await submitWith(admin, "Check the file");
  assert.ok(await admin.locator(".dma-error-summary").isVisible(), "no error summary");
  assert.ok(await fitsWidth(admin), "the problems page scrolls sideways at 320 px");
  await look(t, admin, "ad14-people-file-problems-320", assert, noA11y);
  await admin.setInputFiles("#file", file("email,name,role,organisation\nfile.one@northfield.dma.example,File One,org_contributor,RZ1\nfile.two@northfield.dma.example,File Two,org_approver,RZ1\n"));
  await submitWith(admin, "Check the file");
  assert.ok(await fitsWidth(admin), "the preview scrolls sideways at 320 px");
  await look(t, admin, "ad15-people-file-preview-320", assert, noA11y);
  await submitWith(admin, "Send 2 invitations");
  assert.match(await admin.locator(".dma-notification").textContent(), /Everyone in the file was invited/);
  // The same pages with JavaScript on pass axe.
  const checked = await newPage();
  await signIn(checked, server.base, "admin@dma.example");
  await checked.goto(`${server.base}/admin/users/import`);
  await look(t, checked, "ad16-people-file", assert);
});
