// Single sign-on in a real browser (issue 24), against the real OpenID provider of
// tests/oidc-peer (run `npm ci` there first; .ci/run does): the sign-in page's "Sign in with"
// link, a refusal while the domain is not allowed, the administrators' page allowing it, a
// sign-in through the provider, and signing out with the provider's sign-out offered. With
// JavaScript on and off, at 320 px; axe checks every page of ours (JavaScript on).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { startServer, launchBrowser, look, signIn } from "./harness.mjs";

const peerDir = resolve(dirname(fileURLToPath(import.meta.url)), "../oidc-peer");
let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** Start the provider; it signs in the demo administrator (verified email) every time. */
async function startPeer() {
  assert.ok(
    existsSync(join(peerDir, "node_modules", "oidc-provider")),
    "tests/oidc-peer/node_modules is missing: run `npm ci` in tests/oidc-peer",
  );
  const child = spawn(process.execPath, [join(peerDir, "server.mjs"), "--port", "0",
    "--default-account", "admin-sub:admin@dma.example:1"], { stdio: ["pipe", "pipe", "ignore"] });
  const line = await new Promise((ok, fail) => {
    createInterface({ input: child.stdout }).once("line", ok);
    child.once("exit", (code) => fail(new Error(`the provider exited with ${code}`)));
  });
  return { issuer: line.replace(/^listening /, "").trim(), stop: () => child.kill("SIGTERM") };
}

for (const javaScriptEnabled of [true, false]) {
  const mode = javaScriptEnabled ? "js" : "nojs";
  test(`signing in through a provider, refused then allowed (JavaScript ${javaScriptEnabled ? "on" : "off"}, 320 px)`, { timeout: 120_000 }, async (t) => {
    const peer = await startPeer();
    t.after(() => peer.stop());
    const server = await startServer({
      DMA_SECOND_FACTOR_ROLES: "none",
      DMA_OIDC_PROVIDERS: "peer",
      DMA_OIDC_PEER_ISSUER: peer.issuer,
      DMA_OIDC_PEER_CLIENT_ID: "dma",
      DMA_OIDC_PEER_CLIENT_SECRET: "peer-secret",
      DMA_OIDC_PEER_LABEL: "Test Peer",
    });
    t.after(() => server.stop());
    const context = await browser.newContext({ javaScriptEnabled, viewport: { width: 320, height: 800 } });
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    const check = { checkAccessibility: javaScriptEnabled };

    // The sign-in page offers the provider; the domain is not allowed yet: a clear refusal.
    await page.goto(`${server.base}/login`);
    await look(t, page, `sso-login-${mode}`, assert, check);
    await page.getByRole("link", { name: "Sign in with Test Peer" }).click();
    await page.waitForURL(/\/login\/sso\/peer\/callback/);
    await page.getByRole("heading", { name: "You cannot sign in with Test Peer" }).waitFor();
    assert.match(await page.textContent("main"), /not allowed for email addresses ending @dma\.example/);
    await look(t, page, `sso-refused-${mode}`, assert, check);

    // The administrator allows the domain (by password; the page asks nothing more so soon).
    await signIn(page, server.base, "admin@dma.example");
    await page.goto(`${server.base}/admin/sso`);
    await look(t, page, `sso-admin-${mode}`, assert, check);
    await page.getByLabel("Email domain").fill("dma.example");
    await page.getByRole("button", { name: "Allow" }).click();
    await page.waitForURL(/\/admin\/sso\?done=allowed/);
    assert.match(await page.textContent("main"), /@dma\.example/);
    await look(t, page, `sso-admin-allowed-${mode}`, assert, check);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${server.base}/`);

    // Now the provider signs the administrator in, and signing out offers its sign-out.
    await page.goto(`${server.base}/login`);
    await page.getByRole("link", { name: "Sign in with Test Peer" }).click();
    await page.waitForURL(`${server.base}/dashboard`);
    // "How you sign in" lists the linked provider, with the unlink button (the account has a
    // password, so the provider is not its only way in).
    await page.getByRole("link", { name: "How you sign in" }).click();
    await page.waitForURL(`${server.base}/account/sign-in`);
    assert.match(await page.textContent("main"), /Test Peer as admin@dma\.example/);
    assert.ok(await page.getByRole("button", { name: "Unlink Test Peer" }).isVisible());
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 320, "the page scrolls sideways at 320 px");
    await look(t, page, `sso-how-you-sign-in-${mode}`, assert, check);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${server.base}/signed-out?provider=peer`);
    const logout = page.getByRole("link", { name: "Sign out of Test Peer" });
    assert.ok((await logout.getAttribute("href")).startsWith(`${peer.issuer}/session/end?`));
    await look(t, page, `sso-signed-out-${mode}`, assert, check);
    await context.close();
  });
}
