// Test harness for the browser suite: starts the real `dma` binary on the embedded SQLite
// default with demo data (as the README's first command does) in a fresh folder, launches
// Debian's Chromium headless through playwright-core (no browser download), and checks every
// page a test visits with axe-core (WCAG 2.2 A/AA rules). Screenshots go to test-artifacts/.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
export const artifacts = join(root, "test-artifacts", "screenshots");
mkdirSync(artifacts, { recursive: true });

export const DEMO_PASSWORD = "demo passphrase not for production";

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
    server.on("error", fail);
  });
}

/** Start `dma serve --demo` in an empty folder; resolves when /healthz answers. The demo's
 * administrator and auditor sign in with a password alone unless `env` says otherwise (the
 * second-factor test keeps the default requirement). */
export async function startServer(env = { DMA_SECOND_FACTOR_ROLES: "none" }) {
  const bin = process.env.DMA_BIN || join(root, "target", "debug", "dma");
  const dir = mkdtempSync(join(tmpdir(), "dma-browser-"));
  const port = await freePort();
  const child = spawn(bin, ["serve", "--demo", "--bind", `127.0.0.1:${port}`], {
    cwd: dir,
    env: { ...process.env, RUST_LOG: "warn", DATABASE_URL: "", ...env },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`dma serve exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("dma serve did not become healthy in 60 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, dir, stop: () => child.kill("SIGTERM") };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

/** Run axe-core on the current page; returns the violations (an empty list passes). */
export async function axe(page) {
  // page.evaluate runs over the DevTools protocol, so the page's CSP (no inline script)
  // stays in force for everything else the test does.
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] },
    });
    return result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
}

/** Screenshot the page as a test artefact and assert it has no accessibility violations.
 * `checkAccessibility: false` is for pages opened with JavaScript disabled, where axe-core
 * cannot run (their markup is the same as the JavaScript-on pages that are checked). */
export async function look(t, page, name, assert, { checkAccessibility = true } = {}) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
  if (!checkAccessibility) return;
  const violations = await axe(page);
  assert.deepEqual(violations, [], `${name}: accessibility violations at ${page.url()}`);
}

export async function signIn(page, base, email, password = DEMO_PASSWORD) {
  await page.goto(`${base}/login`);
  await page.getByLabel("Email address").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/dashboard`);
}
