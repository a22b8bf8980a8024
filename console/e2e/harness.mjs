// Starts the real `auditrail serve --demo` (target/debug, free port, temp --data-dir) and a
// headless Debian Chromium (playwright-core, never a downloaded browser).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import net from "node:net";
import { chromium } from "playwright-core";

export const ROOT = resolve(new URL("../..", import.meta.url).pathname);

export function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on("error", rej);
  });
}

/**
 * `startTimeoutMs`: how long loading the demo data may take (a large `E2E_DEMO_SIZE` takes
 * minutes); `port`: a port chosen beforehand (e.g. for an issuer's redirect URIs); `args` and
 * `env`: more `serve` flags and variables (`AUDITRAIL_AUTH` is `local` unless `env` says otherwise).
 */
export async function startServer({ startTimeoutMs = 120_000, port, args = [], env = {} } = {}) {
  const bin = process.env.AUDITRAIL_BIN ?? join(ROOT, "target/debug/auditrail");
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run cargo build -p auditrail --all-features (after npm --prefix console run build)`);
  const dataDir = mkdtempSync(join(tmpdir(), "auditrail-e2e-"));
  port ??= await freePort();
  const base = `http://127.0.0.1:${port}`;
  const proc = spawn(bin, ["--data-dir", dataDir, "serve", "--demo", "--demo-size", process.env.E2E_DEMO_SIZE ?? "2000", "--addr", `127.0.0.1:${port}`, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, AUDITRAIL_AUTH: "local", RUST_LOG: "warn", ...env },
  });
  let log = "";
  proc.stdout.on("data", (d) => (log += d));
  proc.stderr.on("data", (d) => (log += d));
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`auditrail exited: ${log}`);
    try {
      const r = await fetch(`${base}/v1/health`);
      if (r.ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`auditrail did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    base,
    log: () => log,
    async stop() {
      proc.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 300));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function startBrowser() {
  // playwright gives every launch a fresh temporary profile (--user-data-dir).
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return {
    browser,
    async close() {
      await browser.close();
    },
  };
}

/** A token for the test's own API calls (the same development sign-in the console uses). */
export async function token(base, role, user = "e2e-api", tenant = "acme-contact") {
  const r = await fetch(`${base}/v1/console/dev-sign-in`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ tenant, role, user }) });
  if (!r.ok) throw new Error(`dev sign-in: ${r.status} ${await r.text()}`);
  return (await r.json()).access_token;
}

export function sevenZipList(file, password) {
  return execFileSync("7z", ["x", "-so", `-p${password}`, file], { encoding: "utf8", maxBuffer: 64 << 20 });
}
