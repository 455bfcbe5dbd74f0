// Benchmark of the console's screen side, in the real app under Xvfb (through tauri-driver):
// device-to-screen latency (device timestamp -> the frame that painted it, p50/p99) and the
// webview main-thread time per live batch (applying it to the stores, and the map's paint:
// features + updateData), as measured by the app itself (window.__watchfloorPerf, 10 s windows).
//
// `to the webview` is the part before the map: device timestamp -> the batch reached the page;
// `batch IPC` the last hop of it, from the backend emitting the batch to the page receiving it.
//
//   xvfb-run -a -s "-screen 0 1600x1000x24" node scripts/bench-ui.mjs DEVICES HZ [SECONDS] [--load fleet|sim] [--batch-ms N] [--window WxH] [--view LON,LAT,ZOOM]
//
// The load, by default `fleet`, is `watchfloor-bench fleet` in a process of its own: one MQTT
// connection publishing every device's fix HZ times a second, stamped with the wall clock,
// into the console's embedded broker. `sim` is the console's built-in simulator instead (one
// MQTT client per device, in the console's process). Either way it shares the machine's cores
// with the console, so the figures are conservative. WATCHFLOOR_BIN picks the app
// (default target/release/watchfloor), WATCHFLOOR_BENCH_BIN the publisher.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, openAtView, startDriver, Session, until } from '../tests/gui/webdriver.mjs';

const positional = [];
const flags = { load: 'fleet', 'batch-ms': null, window: null, view: null };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a.startsWith('--')) flags[a.slice(2)] = process.argv[++i];
  else positional.push(a);
}
const [devices = '1000', hz = '2', seconds = '30'] = positional;
const app = process.env.WATCHFLOOR_BIN ?? 'target/release/watchfloor';
const publisher = process.env.WATCHFLOOR_BENCH_BIN ?? 'target/release/watchfloor-bench';
const dir = mkdtempSync(join(tmpdir(), 'watchfloor-bench-ui-'));
const intervalMs = Math.round(1000 / Number(hz));
let config = `[simulator]\ninterval_ms = ${intervalMs}\n`;
if (flags['batch-ms']) config = `[ui]\nbatch_interval_ms = ${flags['batch-ms']}\n\n` + config;
writeFileSync(join(dir, 'config.toml'), config);
const brokerPort = await freePort();
const driver = await startDriver({
  WATCHFLOOR_DB: join(dir, 'history.sqlite'),
  WATCHFLOOR_LISTEN: `127.0.0.1:${brokerPort}`,
  WATCHFLOOR_SIMULATE: flags.load === 'sim' ? devices : '0',
  WATCHFLOOR_CONFIG: join(dir, 'config.toml'),
  XDG_DATA_HOME: join(dir, 'data'),
});
let session;
let fleet;
const fleetLines = [];
let fleetDied = null;
let stopping = false;
try {
  session = await Session.create(driver.port, app, []);
  // A smaller window leaves the software rasteriser fewer pixels to fill each frame.
  if (flags.window) {
    const [width, height] = flags.window.split('x').map(Number);
    await session.cmd('POST', '/window/rect', { width, height });
  }
  // A fixed view instead of fitting the fleet: the console restores the view it remembers.
  if (flags.view) {
    const [lon, lat, zoom] = flags.view.split(',').map(Number);
    await openAtView(session, lon, lat, zoom);
  }
  await until('the map', () => session.execute(`return document.querySelector('[data-testid=map]')?.dataset.mapLoaded === 'true';`), 120_000);
  if (flags.load === 'fleet') {
    fleet = spawn(publisher, ['fleet', '--port', String(brokerPort), '--devices', devices, '--hz', hz, '--seconds', '3600'], { stdio: ['ignore', 'pipe', 'inherit'] });
    // How far behind schedule it ran (its fixes carry the time they were due, so a late
    // publisher adds to the latency measured rather than hiding in it), and whether it died.
    fleet.stdout.setEncoding('utf8');
    fleet.stdout.on('data', (text) => fleetLines.push(...text.split('\n').filter(Boolean)));
    fleet.on('exit', (code, signal) => {
      if (!stopping) fleetDied = `the load generator exited (${code ?? signal}) during the run`;
    });
  }
  await until(
    `${devices} devices on screen`,
    async () => {
      const t = await session.execute(`return document.querySelector('[data-testid=device-count]')?.textContent ?? '';`);
      return new RegExp(`/\\s*${devices}\\s*devices`).test(t);
    },
    300_000,
  );
  await session.execute(`window.__watchfloorPerf.frames?.(); return true;`); // start frame gaps
  const rounds = [];
  const end = Date.now() + 10_000 + Number(seconds) * 1000;
  await new Promise((r) => setTimeout(r, 10_000)); // warm-up: one full window
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 10_000));
    rounds.push(
      await session.execute(`const p = window.__watchfloorPerf; return { latency: p.latency(), arrival: p.arrival?.() ?? null, ipc: p.ipc?.() ?? null, apply: p.apply(), paint: p.paint(), diff: p.diff?.() ?? null, send: p.send?.() ?? null, frames: p.frames?.() ?? null, undrawn: p.undrawn?.() ?? null };`),
    );
  }
  const fmt = (s) => (s ? `p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms, max ${s.max.toFixed(1)} ms (n=${s.n})` : 'no samples');
  const viewport = await session.execute('return `${window.innerWidth}x${window.innerHeight}`;');
  console.log(`devices=${devices} hz=${hz} load=${flags.load} batch_ms=${flags['batch-ms'] ?? 'default'} viewport=${viewport} view=${flags.view ?? 'fit'} app=${app}`);
  rounds.forEach((r, i) => {
    console.log(`window ${i + 1}: device-to-screen ${fmt(r.latency)}`);
    console.log(`          to the webview ${fmt(r.arrival)}`);
    console.log(`          batch IPC     ${fmt(r.ipc)}`);
    console.log(`          batch apply   ${fmt(r.apply)}`);
    console.log(`          map paint     ${fmt(r.paint)}`);
    console.log(`            of updates: diff ${fmt(r.diff)}`);
    console.log(`                        send ${fmt(r.send)}`);
    console.log(`          frame gaps    ${fmt(r.frames)}`);
    // Map updates not seen drawn within 2 s are not stamped (they would cap the figure).
    if (r.undrawn) console.log(`          map updates not seen drawn within 2 s since the start: ${r.undrawn}`);
  });
  for (const line of fleetLines) console.log(line);
  if (fleetDied) {
    console.error(`bench-ui: ${fleetDied}: the figures above are not of the load asked for`);
    process.exitCode = 1;
  }
} finally {
  stopping = true;
  fleet?.kill('SIGTERM');
  await session?.close();
  await driver.stop();
}
