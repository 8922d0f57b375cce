// Evidence per answer (issue 23) in a real browser: the approver (JavaScript on) adds a PDF
// and a link to the first question of a section, sees them listed, downloads the file and
// gets the same bytes under its safe name; a contributor (JavaScript off, 320 px wide) does the
// same with the forms alone, meets a refused file with the reason on the page, and removes an
// item. Screenshots go to test-artifacts/screenshots/evidence-*.png; axe checks the pages
// opened with JavaScript on.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
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
  const context = await browser.newContext({ acceptDownloads: true, ...options });
  context.setDefaultTimeout(15_000);
  return context.newPage();
}

/** A small PDF whose bytes differ by `n`. */
function pdf(n) {
  return Buffer.from(`%PDF-1.4\n% browser evidence ${n}\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n`);
}

/** Open the organisation's 2025/26 assessment and its first section; return the first
 * question's evidence part. */
async function firstQuestion(page, base) {
  await page.goto(`${base}/dashboard`);
  await page.getByRole("link", { name: "2025/26" }).first().click();
  await page.waitForURL(/\/assessments\/\d+$/);
  const overview = page.url();
  await page.goto(`${overview}/domains/strategy`);
  const part = page.locator(".dma-evidence").first();
  const id = await part.getAttribute("id");
  return { overview, part, id };
}

async function submitWith(page, locator) {
  const navigated = page.waitForEvent("framenavigated");
  await locator.click();
  await navigated;
  await page.waitForLoadState("load");
}

test("with JavaScript on, a file and a link are added, listed and downloaded", { timeout: 90_000 }, async (t) => {
  const { base } = server;
  const page = await newPage();
  await signIn(page, base, "approver@northfield.dma.example");
  const { part, id } = await firstQuestion(page, base);
  await part.locator("summary").click();
  await part.getByLabel("Title of the file").fill("Board minutes, March");
  await part.getByLabel("File", { exact: true }).setInputFiles({ name: "../../board minutes.pdf", mimeType: "application/pdf", buffer: pdf(1) });
  await submitWith(page, part.getByRole("button", { name: "Add file" }));
  assert.match(page.url(), new RegExp(`#${id}$`));
  const again = page.locator(`#${id}`);
  await assert.doesNotReject(again.getByRole("link", { name: /Board minutes, March/ }).waitFor());
  assert.match(await again.textContent(), /PDF, \d+ bytes/);

  await again.locator("summary").click();
  await again.getByLabel("Title of the link").fill("Digital strategy on the intranet");
  await again.getByLabel("Link (web address)").fill("https://intranet.example.nhs.uk/strategy");
  await submitWith(page, again.getByRole("button", { name: "Add link" }));
  const listed = page.locator(`#${id}`);
  const link = listed.getByRole("link", { name: "Digital strategy on the intranet" });
  assert.equal(await link.getAttribute("href"), "https://intranet.example.nhs.uk/strategy");
  await look(t, page, "evidence-01-listed-js", assert);

  const downloading = page.waitForEvent("download");
  await listed.getByRole("link", { name: /Board minutes, March/ }).click();
  const download = await downloading;
  assert.equal(download.suggestedFilename(), "board minutes.pdf");
  assert.deepEqual(readFileSync(await download.path()), pdf(1));
  await page.context().close();
});

test("with JavaScript off at 320 px, evidence is added, refused with a reason, and removed", { timeout: 90_000 }, async (t) => {
  const { base } = server;
  const page = await newPage({ javaScriptEnabled: false, viewport: { width: 320, height: 800 } });
  await signIn(page, base, "contributor@northfield.dma.example");
  const { part, id } = await firstQuestion(page, base);
  await part.locator("summary").click();
  await part.getByLabel("Title of the file").fill("Contributor's evidence");
  await part.getByLabel("File", { exact: true }).setInputFiles({ name: "evidence.pdf", mimeType: "application/pdf", buffer: pdf(2) });
  await submitWith(page, part.getByRole("button", { name: "Add file" }));
  const listed = page.locator(`#${id}`);
  await assert.doesNotReject(listed.getByRole("link", { name: /Contributor's evidence/ }).waitFor());
  await look(t, page, "evidence-02-listed-nojs-320", assert, { checkAccessibility: false });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 320, `the page is ${width} px wide at 320`);

  // A file that is not what its name says: the reason, on the question's evidence page.
  await listed.locator("summary").click();
  await listed.getByLabel("Title of the file").fill("Not a PDF");
  await listed.getByLabel("File", { exact: true }).setInputFiles({ name: "notes.pdf", mimeType: "application/pdf", buffer: Buffer.from("just some text, not a PDF at all\n") });
  await submitWith(page, listed.getByRole("button", { name: "Add file" }));
  assert.match(await page.locator(".dma-error-summary").textContent(), /could not be recognised|not accepted/);
  await look(t, page, "evidence-03-refused-nojs-320", assert, { checkAccessibility: false });

  // Remove the contributor's item from the evidence page.
  await submitWith(page, page.getByRole("button", { name: /Remove Contributor's evidence/ }));
  assert.match(await page.locator(".dma-notification").textContent(), /removed/);
  assert.equal(await page.getByRole("link", { name: /Contributor's evidence/ }).count(), 0);
  await page.context().close();

  // The same page with JavaScript on passes axe (the refusal's markup is the same).
  const checked = await newPage();
  await signIn(checked, base, "contributor@northfield.dma.example");
  await firstQuestion(checked, base);
  await checked.goto(`${checked.url().replace(/\/domains\/.*$/, "")}/questions/${id.replace(/^q-|-evidence$/g, "")}/evidence`);
  await look(t, checked, "evidence-04-page-js", assert);
  await checked.context().close();
});
