// Benchmark of the console's screen side, in the real app under Xvfb (through tauri-driver):
// device-to-screen latency (device timestamp -> the frame that painted it, p50/p99) and the
// webview main-thread time per live batch (applying it to the stores, and the map's paint:
// features + setData), as measured by the app itself (window.__watchfloorPerf, 10 s windows).
//
//   xvfb-run -a -s "-screen 0 1600x1000x24" node scripts/bench-ui.mjs DEVICES INTERVAL_MS [SECONDS]
//
// The fleet is the built-in simulator on the embedded broker, in the same process: it competes
// with the console for the same two cores, so the figures are conservative.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startDriver, Session, until } from '../tests/gui/webdriver.mjs';

const [devices = '1000', intervalMs = '500', seconds = '30'] = process.argv.slice(2);
const app = process.env.WATCHFLOOR_BIN ?? 'target/debug/watchfloor';
const dir = mkdtempSync(join(tmpdir(), 'watchfloor-bench-ui-'));
writeFileSync(join(dir, 'config.toml'), `[simulator]\ninterval_ms = ${intervalMs}\n`);
const driver = await startDriver({
  WATCHFLOOR_DB: join(dir, 'history.sqlite'),
  WATCHFLOOR_LISTEN: `127.0.0.1:${await freePort()}`,
  WATCHFLOOR_SIMULATE: devices,
  WATCHFLOOR_CONFIG: join(dir, 'config.toml'),
  XDG_DATA_HOME: join(dir, 'data'),
});
let session;
try {
  session = await Session.create(driver.port, app, []);
  await until(
    `${devices} devices on screen`,
    async () => {
      const t = await session.execute(`return document.querySelector('[data-testid=device-count]')?.textContent ?? ''`);
      return new RegExp(`/\\s*${devices}\\s*devices`).test(t);
    },
    300_000,
  );
  const rounds = [];
  const end = Date.now() + Number(seconds) * 1000;
  await new Promise((r) => setTimeout(r, 10_000)); // warm-up: one full window
  while (Date.now() < end) {
    rounds.push(
      await session.execute(`const p = window.__watchfloorPerf; return { latency: p.latency(), apply: p.apply(), paint: p.paint() };`),
    );
    await new Promise((r) => setTimeout(r, 10_000));
  }
  const fmt = (s) => (s ? `p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms, max ${s.max.toFixed(1)} ms (n=${s.n})` : 'no samples');
  console.log(`devices=${devices} interval_ms=${intervalMs}`);
  rounds.forEach((r, i) => {
    console.log(`window ${i + 1}: device-to-screen ${fmt(r.latency)}`);
    console.log(`          batch apply   ${fmt(r.apply)}`);
    console.log(`          map paint     ${fmt(r.paint)}`);
  });
} finally {
  await session?.close();
  await driver.stop();
}
