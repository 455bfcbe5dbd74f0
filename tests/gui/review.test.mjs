// GUI test of the review window: `watchfloor record` with 6 SIMULATED devices writes a history
// file for about 10 s and stops; then `watchfloor review FILE` opens it in the real window with
// no broker running. The map draws the devices, scrubbing back to the first second shows where
// they were then (fewer fixes, different positions), picking a device draws its track with trip
// totals and the speed chart, the view and a report export to files, playback moves the
// instant, and the file's bytes are unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answerFileDialog, freePort, startDriver, Session, until } from './webdriver.mjs';

const app = process.env.WATCHFLOOR_BIN ?? 'target/debug/watchfloor';
const artifacts = process.env.WATCHFLOOR_ARTIFACTS ?? 'test-artifacts';
mkdirSync(artifacts, { recursive: true });

const sha = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function record(db, dir) {
  const port = await freePort();
  const rec = spawn(app, ['record', '--listen', `127.0.0.1:${port}`, '--simulate', '6', '--db', db], {
    stdio: 'ignore',
    env: { ...process.env, XDG_DATA_HOME: join(dir, 'data') },
  });
  await sleep(10_000);
  const exited = new Promise((r) => rec.on('exit', r));
  rec.kill('SIGTERM');
  assert.equal(await exited, 0, 'record flushes and exits 0');
}

test('a reviewer opens a recorded file offline, scrubs, follows a track and the file is untouched', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'watchfloor-gui-review-'));
  const db = join(dir, 'shift.sqlite');
  await record(db, dir);
  const before = sha(db);
  let driver;
  let session;
  try {
    driver = await startDriver({ XDG_DATA_HOME: join(dir, 'data') });
    session = await Session.create(driver.port, app, ['review', db]);
    const s = session;
    await until('the review window', () => s.execute(`return !!document.querySelector('[data-testid=review]');`), 60_000);
    // The first frame (the file's first instant, paused) is fitted at street zoom, where devices
    // carry labels. Label images are drawn when MapLibre first asks for them and must reach the
    // layout that asked: nothing lays a still map's tiles out again.
    const labelled = await until('device labels on the still first frame', async () => {
      const n = await s.execute(`return window.__watchfloorLabels();`);
      return n > 0 ? n : false;
    }, 10_000);
    assert.ok(labelled <= 6, `${labelled} labels for 6 devices`);
    // Jump to the file's last instant to see everyone.
    await s.execute(`const r = document.querySelector('[data-testid=scrubber]'); r.value = r.max;
      r.dispatchEvent(new Event('input', { bubbles: true })); return true;`);
    const drawn = await until('devices drawn on the map', async () => {
      const n = Number(await s.execute(`return document.querySelector('[data-testid=map]')?.dataset.sourceDevices ?? 0;`));
      return n >= 6 ? n : false;
    }, 30_000);
    assert.equal(drawn, 6);
    const atEnd = await s.execute(`return document.querySelector('[data-testid=review-at]').textContent;`);

    // Scrub back to the first instant: the clock and the positions change.
    const positions = () => s.execute(`return document.querySelector('[data-testid=map]')?.dataset.sourceDevices;`);
    await s.execute(`const r = document.querySelector('[data-testid=scrubber]'); r.value = r.min;
      r.dispatchEvent(new Event('input', { bubbles: true })); return true;`);
    const atStart = await until('the clock moved back', async () => {
      const t = await s.execute(`return document.querySelector('[data-testid=review-at]').textContent;`);
      return t !== atEnd ? t : false;
    });
    assert.ok(atStart < atEnd, `${atStart} is before ${atEnd}`);
    assert.ok(Number(await positions()) <= 6);

    // The review window may call only the review's commands: the live console's are refused.
    const refused = await s.executeAsync(`const done = arguments[arguments.length - 1];
      window.__TAURI_INTERNALS__.invoke('console_info').then(() => done('allowed'), (e) => done(String(e?.message ?? e)));`);
    assert.match(refused, /not allowed|not found|denied/i, refused);

    // A device's track: trip totals and the chart.
    await s.execute(`const sel = document.querySelector('[data-testid=review-device]');
      sel.selectedIndex = 1; sel.dispatchEvent(new Event('change', { bubbles: true })); return true;`);
    const trip = await until('trip totals', async () => {
      const t = await s.execute(`return document.querySelector('[data-testid=review-trip]')?.textContent ?? '';`);
      return /Fixes\s*\d+/.test(t) ? t : false;
    });
    const fixes = Number(/Fixes\s*(\d+)/.exec(trip)[1]);
    assert.ok(fixes >= 5, `a 10 s recording at 1 Hz holds several fixes, got ${fixes}`);
    assert.equal(await s.execute(`return !!document.querySelector('[data-testid=speed-chart] polyline');`), true);

    // Export the view through the native save dialog: every device at the instant (CSV), the
    // picked device's track (KML), and the availability report (the printable page), each read
    // back from disk.
    const exported = async (what, format, name) => {
      const path = join(dir, name);
      await s.execute(`
        if (!document.querySelector('[data-testid=review-export-what]')) document.querySelector('[data-testid=review-export]').click();
        const set = (id, v, ev) => { const el = document.querySelector('[data-testid=' + id + ']'); el.value = v; el.dispatchEvent(new Event(ev, { bubbles: true })); };
        set('review-export-what', arguments[0], 'change');
        return true;`, [what]);
      await s.execute(`
        const set = (id, v, ev) => { const el = document.querySelector('[data-testid=' + id + ']'); el.value = v; el.dispatchEvent(new Event(ev, { bubbles: true })); };
        set('review-export-format', arguments[0], 'change');
        document.querySelector('[data-testid=review-export-run]').click(); return true;`, [format]);
      await answerFileDialog('Export to a file', path, { save: true });
      const result = await until(`the ${what} export`, () =>
        s.execute(`const r = document.querySelector('[data-testid=review-export-result]'); return r && r.textContent.includes(arguments[0]) ? r.textContent : false;`, [name]), 15_000);
      assert.match(result, /^written to /, result);
      return readFileSync(path, 'utf8');
    };
    // At the file's last instant every device has reported (at its first, only one had).
    await s.execute(`const r = document.querySelector('[data-testid=scrubber]'); r.value = r.max;
      r.dispatchEvent(new Event('input', { bubbles: true })); return true;`);
    await until('the last instant drawn', async () => (await s.execute(`return document.querySelector('[data-testid=review-at]').textContent;`)) === atEnd);
    const devicesCsv = await exported('devices', 'csv', 'devices.csv');
    assert.equal(devicesCsv.trim().split('\n').length, 1 + 6, `a header and one row per device:\n${devicesCsv}`);
    const kml = await exported('track', 'kml', 'track.kml');
    assert.match(kml, /<LineString>/);
    const page = await exported('report_availability', 'html', 'availability.html');
    assert.match(page, /Device availability/);
    assert.equal((page.match(/<tr>/g) ?? []).length, 1 + 6, 'a header row and one row per device');

    // Playback (1x) moves the drawn instant forward; pause holds it.
    await s.execute(`const sp = document.querySelector('[data-testid=speed]'); sp.value = '1';
      sp.dispatchEvent(new Event('change', { bubbles: true })); document.querySelector('[data-testid=play]').click(); return true;`);
    await until('playback advances', async () => {
      const t = await s.execute(`return document.querySelector('[data-testid=review-at]').textContent;`);
      return t > atStart;
    });
    await s.execute(`const b = document.querySelector('[data-testid=play]'); if (b.dataset.playing === 'true') b.click(); return true;`);
    // The screenshot: everyone drawn, playing at 1x through the last seconds. (WebKitWebDriver's
    // screenshot waits for the page to paint again; a still page under software GL never does.)
    await s.execute(`[...document.querySelectorAll('button')].find((b) => b.textContent === 'Fit all')?.click(); return true;`);
    await s.execute(`const r = document.querySelector('[data-testid=scrubber]'); r.value = String(Number(r.max) - 6000);
      r.dispatchEvent(new Event('input', { bubbles: true })); document.querySelector('[data-testid=play]').click(); return true;`);
    await sleep(1000);
    writeFileSync(join(artifacts, 'gui-review.png'), await s.screenshot());
  } finally {
    if (session) await session.close();
    if (driver) await driver.stop();
  }
  assert.equal(sha(db), before, 'the history file is byte for byte what it was');
});

test("a review of a running console's file follows it as it grows", { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'watchfloor-gui-review-live-'));
  const db = join(dir, 'live.sqlite');
  const port = await freePort();
  const rec = spawn(app, ['record', '--listen', `127.0.0.1:${port}`, '--simulate', '3', '--db', db], {
    stdio: 'ignore',
    env: { ...process.env, XDG_DATA_HOME: join(dir, 'data') },
  });
  const recExited = new Promise((r) => rec.on('exit', r));
  let driver;
  let session;
  try {
    await sleep(6_000);
    driver = await startDriver({ XDG_DATA_HOME: join(dir, 'data') });
    session = await Session.create(driver.port, app, ['review', db]);
    const s = session;
    await until('the review window', () => s.execute(`return !!document.querySelector('[data-testid=review]');`), 60_000);
    const devices = () => s.execute(`return [...document.querySelectorAll('[data-testid=review-device] option')].map((o) => o.value).filter(Boolean);`);
    assert.deepEqual((await devices()).length, 3, 'the three simulated devices');
    const end = () => s.execute(`return Number(document.querySelector('[data-testid=scrubber]').max);`);
    const endAtOpening = await end();
    // A device the file did not hold when the window opened.
    execFileSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-t', 'devices/late-1/location',
      '-m', JSON.stringify({ ts: Date.now(), lat: 51.92, lon: 4.48 })]);
    const grown = await until('the new device in the review window', async () => {
      const ids = await devices();
      return ids.includes('late-1') ? ids : false;
    }, 30_000);
    assert.equal(grown.length, 4);
    assert.ok((await end()) > endAtOpening, 'the timeline reaches further');
  } finally {
    if (session) await session.close();
    if (driver) await driver.stop();
    rec.kill('SIGTERM');
    await recExited;
  }
});
