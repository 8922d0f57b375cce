// Setting up a second factor and signing in with it (issue 24), as the demo administrator
// whose role requires one: with JavaScript on and off, at 320 px wide, by keyboard. The test
// reads the key the page shows (as a person types it into an authenticator app) and computes
// the codes itself (RFC 6238, HMAC-SHA1). Screenshots go to test-artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { startServer, launchBrowser, look, DEMO_PASSWORD } from "./harness.mjs";

let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

function base32(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of text.replace(/[\s=]/g, "").toUpperCase()) {
    bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The six-digit code for `secret` at `seconds` since the epoch. */
function totp(secret, seconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(seconds / 30)));
  const mac = createHmac("sha1", secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(value).padStart(6, "0");
}

for (const javaScriptEnabled of [true, false]) {
  const mode = javaScriptEnabled ? "js" : "nojs";
  test(`an administrator sets up a second factor and signs in with it (JavaScript ${javaScriptEnabled ? "on" : "off"}, 320 px)`, { timeout: 90_000 }, async (t) => {
    // The default configuration: administrators must have a second factor.
    const server = await startServer({});
    t.after(() => server.stop());
    const context = await browser.newContext({ javaScriptEnabled, viewport: { width: 320, height: 800 } });
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    const check = { checkAccessibility: javaScriptEnabled };

    // Password first, by keyboard: then the set-up page, not the dashboard.
    await page.goto(`${server.base}/login`);
    await page.getByLabel("Email address").fill("admin@dma.example");
    await page.getByLabel("Password").fill(DEMO_PASSWORD);
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/account\/second-factor\?next=/);
    await page.getByRole("img", { name: "QR code to scan with your authenticator app" }).waitFor();
    const box = await page.locator("svg.dma-qr").boundingBox();
    assert.ok(box.width <= 320 && box.width >= 150, `the QR code is ${box.width}px wide`);
    const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scroll <= 320, `the page scrolls sideways at 320 px (${scroll})`);
    await look(t, page, `second-factor-setup-${mode}`, assert, check);
    // Nothing else is open until it is set up.
    await page.goto(`${server.base}/dashboard`);
    await page.waitForURL(/\/login/);
    await page.goto(`${server.base}/account/second-factor`);

    const secret = base32(await page.locator("[data-secret]").textContent());
    await page.getByLabel("Enter the 6-digit code the app shows").fill("000000" === totp(secret, Date.now() / 1000) ? "111111" : "000000");
    await page.getByRole("button", { name: "Turn on the second factor" }).click();
    await page.getByText("The code is not correct").first().waitFor();
    await look(t, page, `second-factor-setup-error-${mode}`, assert, check);
    // After a refusal the page shows a new QR code and key: read it again.
    const again = base32(await page.locator("[data-secret]").textContent());
    await page.getByLabel("Enter the 6-digit code the app shows").fill(totp(again, Date.now() / 1000));
    await page.getByLabel("Enter the 6-digit code the app shows").press("Enter");
    await page.getByRole("heading", { name: "Your recovery codes" }).waitFor();
    const codes = await page.locator("[data-recovery-code]").allTextContents();
    assert.equal(codes.length, 10);
    await look(t, page, `second-factor-recovery-codes-${mode}`, assert, check);
    await page.locator("[data-continue]").click();
    await page.waitForURL(`${server.base}/dashboard`);

    // Sign out, and in again: password, then the next step's code.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.goto(`${server.base}/login`);
    await page.getByLabel("Email address").fill("admin@dma.example");
    await page.getByLabel("Password").fill(DEMO_PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/login\/second-factor/);
    await page.getByLabel("Security code").fill("123");
    await page.getByRole("button", { name: "Continue" }).click();
    await page.getByText("The code is not correct").first().waitFor();
    await look(t, page, `second-factor-code-error-${mode}`, assert, check);
    await page.getByLabel("Security code").fill(totp(again, Date.now() / 1000 + 30));
    await page.getByLabel("Security code").press("Enter");
    await page.waitForURL(`${server.base}/dashboard`);

    // The settings page says it is on and, for this role, cannot be turned off.
    await page.goto(`${server.base}/account/second-factor`);
    await page.getByText("cannot be turned off").waitFor();
    await look(t, page, `second-factor-on-${mode}`, assert, check);
    await context.close();
  });
}
