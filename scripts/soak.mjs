// The soak of docs/RELIABILITY.md: the real desktop app (release build) under Xvfb for MINUTES
// (default 60), connected to a Mosquitto of its own on a free port, with a fleet of DEVICES x HZ (default 1,000 x 2) from `watchfloor-bench fleet`,
// plus one QoS 1 event a second from `mosquitto_pub`. Every minute it samples the private
// memory (RssAnon, from /proc) of the backend and of the webview's web process, the webview's
// own figures (device-to-screen latency), and at the end counts the events stored against
// those the broker acknowledged. Prints one Markdown table row per sample and a summary.
//
//   xvfb-run -a -s "-screen 0 1600x1000x24" node scripts/soak.mjs [MINUTES] [DEVICES] [HZ]
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startDriver, Session, until, waitForPort } from '../tests/gui/webdriver.mjs';

const [minutes = '60', devices = '1000', hz = '2'] = process.argv.slice(2);
const app = process.env.WATCHFLOOR_BIN ?? 'target/release/watchfloor';
const publisher = process.env.WATCHFLOOR_BENCH_BIN ?? 'target/release/watchfloor-bench';
const dir = mkdtempSync(join(tmpdir(), 'watchfloor-soak-'));
const db = join(dir, 'history.sqlite');
const brokerPort = await freePort();
const run = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Private memory of a process in MiB (RssAnon), or null when it is gone. */
function anonMib(pid) {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('RssAnon:'));
    return Number(line.split(/\s+/)[1]) / 1024;
  } catch {
    return null;
  }
}

/** Pids whose parent is `ppid` and whose name is `name`. */
function children(ppid, name) {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return parent === ppid && comm.startsWith(name);
      } catch {
        return false;
      }
    })
    .map(Number);
}

chmodSync(dir, 0o755); // Mosquitto drops root privileges and must read its config
const conf = join(dir, 'mosquitto.conf');
writeFileSync(conf, `listener ${brokerPort} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
const broker = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
await waitForPort(brokerPort);
const driver = await startDriver({
  WATCHFLOOR_DB: db,
  WATCHFLOOR_BROKER: `mqtt://127.0.0.1:${brokerPort}`,
  XDG_DATA_HOME: join(dir, 'data'),
});
let session;
let fleet;
let events;
try {
  session = await Session.create(driver.port, app, []);
  await until('the map', () => session.execute(`return document.querySelector('[data-testid=map]')?.dataset.mapLoaded === 'true';`), 120_000);
  const [appPid] = children(driver.proc.pid, 'WebKitWebDriver').flatMap((wd) => children(wd, 'watchfloor'));
  const [webPid] = children(appPid, 'WebKitWebProces');
  if (!appPid || !webPid) throw new Error(`processes not found: app ${appPid}, web ${webPid}`);

  fleet = spawn(publisher, ['fleet', '--port', String(brokerPort), '--devices', devices, '--hz', hz, '--seconds', String(Number(minutes) * 60 + 120)], { stdio: 'ignore' });
  // One QoS 1 event a second; an id counts as sent once the broker acknowledged it.
  const acked = [];
  let running = true;
  events = (async () => {
    for (let n = 0; running; n++) {
      const id = `soak-${String(n).padStart(6, '0')}`;
      const payload = JSON.stringify({ id, ts: Date.now(), type: 'soak', severity: 'info' });
      // mosquitto_pub exits 0 once the broker sent PUBACK; run asynchronously (execFile), so
      // the minute samples are not held up while it connects.
      const started = Date.now();
      try {
        await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(brokerPort), '-q', '1', '-t', 'devices/soak-cam/events', '-m', payload]);
        acked.push(id);
      } catch {
        // not acknowledged: not counted as sent
      }
      await sleep(Math.max(0, 1000 - (Date.now() - started)));
    }
  })();
  await until(`${devices} devices on screen`, async () => {
    const t = await session.execute(`return document.querySelector('[data-testid=device-count]')?.textContent ?? '';`);
    return new RegExp(`/\\s*${Number(devices) + 1}\\s*devices`).test(t) || new RegExp(`/\\s*${devices}\\s*devices`).test(t);
  }, 300_000);

  console.log(`soak: ${devices} devices x ${hz} Hz + 1 QoS 1 event/s for ${minutes} min; app ${app}`);
  console.log('| minute | backend RssAnon | web process RssAnon | device -> screen p50 / p99 | fixes painted (10 s) |');
  console.log('|---|---|---|---|---|');
  const samples = [];
  for (let m = 0; m <= Number(minutes); m++) {
    const perf = await session.execute(`return window.__watchfloorPerf.latency();`);
    const s = { minute: m, backend: anonMib(appPid), web: anonMib(webPid), perf };
    samples.push(s);
    const lat = perf ? `${Math.round(perf.p50)} / ${Math.round(perf.p99)} ms` : 'n/a';
    console.log(`| ${m} | ${s.backend?.toFixed(1)} MiB | ${s.web?.toFixed(1)} MiB | ${lat} | ${perf?.n ?? 0} |`);
    if (m < Number(minutes)) await sleep(60_000);
  }
  running = false;
  await events;
  fleet.kill('SIGTERM');
  // Everything acknowledged must be stored (the writer commits within a second).
  await sleep(5_000);
  // Read as a user would, with `watchfloor export` (read-only, while nothing else writes).
  const stored = new Set(
    execFileSync(app, ['export', '--what', 'events', '--format', 'ndjson', '--device', 'soak-cam', '--db', db], {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    })
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line).event_id),
  );
  const lost = acked.filter((id) => !stored.has(id)).length;
  // Growth: the last 30 minutes' slope, so the warm-up (caches filling) does not count.
  const tail = samples.filter((s) => s.minute >= Math.floor(Number(minutes) / 2));
  const slope = (k) => {
    const [a, b] = [tail[0], tail[tail.length - 1]];
    return ((b[k] - a[k]) / Math.max(1, b.minute - a.minute)) * 60;
  };
  const first = samples[1] ?? samples[0];
  const last = samples[samples.length - 1];
  console.log(
    `soak summary: backend ${first.backend.toFixed(1)} -> ${last.backend.toFixed(1)} MiB (second half: ${slope('backend').toFixed(2)} MiB/h), ` +
      `web process ${first.web.toFixed(1)} -> ${last.web.toFixed(1)} MiB (second half: ${slope('web').toFixed(2)} MiB/h); ` +
      `QoS 1 events acknowledged ${acked.length}, stored ${acked.length - lost}, lost ${lost}`,
  );
} finally {
  fleet?.kill('SIGTERM');
  await session?.close();
  await driver.stop();
  broker.kill('SIGTERM');
}
