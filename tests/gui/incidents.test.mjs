// GUI test of the dispatcher's workflow across two consoles: two real Watchfloor windows (each
// through its own tauri-driver) on one Mosquitto. A device event published with mosquitto_pub
// appears in console A's incident list and as a ring on its map; the operator acknowledges it
// with the keyboard shortcut; console B shows it acknowledged. With no notification service
// reachable (D-Bus pointed at nothing), A says that desktop alerts are unavailable instead of
// losing them silently. Console B runs in a stand-in desktop session (desktop_host.py: a tray
// host and a notification daemon on a private bus): it raises one critical notification, and
// its tray icon's label carries the count. Both windows' titles (read from the X server) carry
// the count of unacknowledged incidents until it is acknowledged. Screenshots of both consoles and of the
// device panel are saved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startDesktopHost, startDriver, Session, until, waitForPort } from './webdriver.mjs';

const app = process.env.WATCHFLOOR_BIN ?? 'target/debug/watchfloor';
const artifacts = process.env.WATCHFLOOR_ARTIFACTS ?? 'test-artifacts';
mkdirSync(artifacts, { recursive: true });

function pub(port, topic, payload, retain = false) {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-t', topic, '-q', '1', '-m', payload];
  if (retain) args.push('-r');
  execFileSync('mosquitto_pub', args);
}

/** X window titles matching `pattern` (a regular expression), read from the X server itself. */
function windowTitles(pattern) {
  try {
    const ids = execFileSync('xdotool', ['search', '--name', pattern], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
    return ids.map((id) => execFileSync('xdotool', ['getwindowname', id], { encoding: 'utf8' }).trim());
  } catch {
    return []; // xdotool exits 1 when nothing matches
  }
}

const rows = `return [...document.querySelectorAll('[data-testid=incident-row]')]
  .map((r) => ({ id: r.dataset.incidentId, state: r.dataset.state, text: r.textContent }));`;

test('an event reaches the incident list and map; an acknowledgement in one console shows in the other', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'watchfloor-gui-incidents-'));
  chmodSync(dir, 0o755); // Mosquitto drops root privileges and must read its config
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
  const broker = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  const drivers = [];
  const sessions = [];
  let desktop;
  try {
    await waitForPort(port);
    const openConsole = async (name, extra = {}) => {
      const driver = await startDriver({
        WATCHFLOOR_DB: join(dir, `${name}.sqlite`),
        WATCHFLOOR_BROKER: `mqtt://127.0.0.1:${port}`,
        WATCHFLOOR_OPERATOR: name,
        // The webview's storage (remembered layout) in the test's own folder, per console.
        XDG_DATA_HOME: join(dir, `${name}-data`),
        ...extra,
      });
      drivers.push(driver);
      const session = await Session.create(driver.port, app, []);
      sessions.push(session);
      await until(`${name} connected`, () =>
        session.execute(`return document.querySelector('[data-testid=broker-status]')?.dataset.state === 'connected';`),
        60_000,
      );
      return session;
    };
    // A reaches no notification service: its alerts must say so.
    const a = await openConsole('ana', { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/watchfloor-test-bus' });
    // B runs in a (stand-in) desktop session: a tray host and a notification daemon.
    desktop = await startDesktopHost();
    const b = await openConsole('bo', { DBUS_SESSION_BUS_ADDRESS: desktop.address });
    const trayLabel = () => desktop.seen.filter((r) => r.tray).at(-1)?.tray.label;
    await until("B's tray icon registered with the tray host", () => trayLabel() !== undefined, 20_000);
    assert.equal(trayLabel(), '', 'nothing unacknowledged yet');
    // A says at start, before any incident needs it, that desktop alerts cannot show; B, whose
    // session has a notification service, does not.
    const problem = await until('A reports at start that desktop alerts are unavailable', () =>
      a.execute(`const el = document.querySelector('[data-testid=alert-problem]'); return el ? { text: el.textContent, title: el.title } : false;`),
    );
    assert.equal(problem.text.trim(), 'Desktop alerts unavailable');
    // The reason is kept, in the tooltip.
    assert.match(problem.title, /^Desktop alerts unavailable: \S.*\. New incidents still show here/);
    assert.equal(await b.execute(`return !!document.querySelector('[data-testid=alert-problem]');`), false);

    const now = Date.now();
    pub(port, 'devices/v7/status', JSON.stringify({ online: true, ts: now, kind: 'vehicle', name: 'Van 7', battery: 64 }), true);
    pub(port, 'devices/v7/location', JSON.stringify({ ts: now, lat: 51.92, lon: 4.48, speed: 8.5, heading: 120 }));
    pub(port, 'devices/v7/events', JSON.stringify({ id: 'gui-1', ts: now, type: 'panic_button', severity: 'critical', message: 'driver pressed panic', lat: 51.92, lon: 4.48 }));

    let seenOnA = null; // what A showed at the last look, for the message if it never arrives
    const onA = await until('the incident in console A', async () => {
      const list = await a.execute(rows);
      const map = await a.execute(`const m = document.querySelector('[data-testid=map]');
        return { rings: Number(m?.dataset.incidentRings ?? 0), drawn: window.__watchfloorRendered?.() ?? 0,
          inSource: Number(m?.dataset.sourceDevices ?? 0), loaded: m?.dataset.mapLoaded };`);
      const row = list.find((r) => /Van 7: panic button/.test(r.text));
      seenOnA = { list, map };
      return row && map.rings >= 1 && map.drawn >= 1 ? row : false;
    }, 30_000).catch(async (e) => {
      writeFileSync(join(artifacts, 'gui-incidents-a-missing.png'), await a.screenshot());
      const view = await a.execute(`return window.__watchfloorMapView?.() ?? null;`);
      throw new Error(`${e.message}; A showed ${JSON.stringify({ ...seenOnA, view })}`);
    });
    assert.equal(onA.state, 'new');
    const unackA = await a.execute(`return document.querySelector('[data-testid=unacknowledged]')?.textContent;`);
    assert.match(unackA, /1 unacknowledged/);
    // The window title carries the count (where a tray host runs, the tray label does too).
    const titled = await until('both windows titled with the count', () => {
      const t = windowTitles('^\\(1\\) Watchfloor');
      return t.length >= 2 ? t : false;
    }, 10_000);
    assert.equal(titled[0], '(1) Watchfloor: 1 unacknowledged');
    // B's tray label carries the count, and B raised a desktop notification for it.
    await until("the count on B's tray icon", () => trayLabel() === '1', 10_000);
    // And the first line of its menu, for hosts that draw no labels (GNOME's).
    const trayMenu = () => desktop.seen.filter((r) => r.tray).at(-1)?.tray.menu ?? [];
    await until("the count in B's tray menu", () => trayMenu()[0] === '1 unacknowledged incident', 10_000);
    const notified = await until("B's desktop notification", () => desktop.seen.find((r) => r.notification)?.notification, 10_000);
    assert.equal(notified.app, 'Watchfloor');
    assert.match(notified.summary, /CRITICAL: Van 7: panic button/);
    assert.equal(notified.urgency, 2, 'critical urgency');

    // Select the row and acknowledge with the keyboard shortcut.
    await a.execute(`document.querySelector('[data-incident-id="${onA.id}"]').click(); return true;`);
    await until('the detail panel', () => a.execute(`return !!document.querySelector('[data-testid=incident-detail]');`));
    await a.execute(`window.dispatchEvent(new KeyboardEvent('keydown', { key: 'a', bubbles: true })); return true;`);
    const started = Date.now();
    const onB = await until('the acknowledgement in console B', async () => {
      const list = await b.execute(rows);
      const row = list.find((r) => r.id === onA.id);
      return row && row.state === 'acknowledged' ? row : false;
    }, 15_000);
    console.log(`acknowledged in A, shown in B after ${Date.now() - started} ms (includes WebDriver polling)`);
    assert.equal(onB.id, onA.id, 'both consoles hold the same incident');
    await until('the count gone from both titles', () => windowTitles('unacknowledged').length === 0 && windowTitles('^Watchfloor$').length >= 2, 10_000);
    await until("the count gone from B's tray icon", () => trayLabel() === '', 10_000);
    await until("the count gone from B's tray menu", () => trayMenu()[0] === 'Nothing unacknowledged', 10_000);
    assert.equal(desktop.seen.filter((r) => r.notification).length, 1, 'one notification for one incident');
    const trail = await until('the audit trail in A', async () => {
      const t = await a.execute(`return document.querySelector('[data-testid=audit-trail]')?.textContent ?? '';`);
      return /ana\s+acknowledged/.test(t) ? t : false;
    });
    assert.match(trail, /system\s+opened/);

    // `r` puts the cursor in the resolution note, once: closing and reopening the panel (or
    // moving to another incident) must not take the focus there again, where the next
    // shortcut keys would be typed as text.
    const key = (k) => `window.dispatchEvent(new KeyboardEvent('keydown', { key: '${k}', bubbles: true })); return true;`;
    const focused = `return document.activeElement?.dataset?.testid ?? document.activeElement?.tagName ?? null;`;
    await a.execute(key('r'));
    await until('the resolution note focused by r', async () => (await a.execute(focused)) === 'resolution-note');
    await a.execute(`document.activeElement.blur(); document.querySelector('[data-testid=incident-detail] .close').click(); return true;`);
    await a.execute(`document.querySelector('[data-incident-id="${onA.id}"]').click(); return true;`);
    await until('the detail panel again', () => a.execute(`return !!document.querySelector('[data-testid=resolution-note]');`));
    await new Promise((r) => setTimeout(r, 300));
    assert.notEqual(await a.execute(focused), 'resolution-note', 'the focus stays out of the note');
    // Half a resolution note survives the side panel moving to Devices (a click on a device
    // on the map does that) and back.
    await a.execute(`const n = document.querySelector('[data-testid=resolution-note]');
      n.value = 'Door checked, patrol'; n.dispatchEvent(new Event('input', { bubbles: true })); return true;`);
    await a.execute(`document.querySelector('[data-testid=tab-devices]').click(); return true;`);
    await until('the Devices tab', () => a.execute(`return !document.querySelector('[data-testid=resolution-note]');`));
    await a.execute(`document.querySelector('[data-testid=tab-incidents]').click(); return true;`);
    await a.execute(`if (!document.querySelector('[data-testid=resolution-note]')) document.querySelector('[data-incident-id="${onA.id}"]').click(); return true;`);
    const draft = await until('the note as it was left', () =>
      a.execute(`return document.querySelector('[data-testid=resolution-note]')?.value ?? false;`));
    assert.equal(draft, 'Door checked, patrol');
    await a.execute(`const n = document.querySelector('[data-testid=resolution-note]');
      n.value = ''; n.dispatchEvent(new Event('input', { bubbles: true })); return true;`);
    // The incident shortcuts do nothing while the Employees workspace shows (the list is
    // hidden, not gone): `m` there must not assign an incident nobody sees.
    await a.execute(`document.querySelector('[data-testid=workspace-sites]').click(); return true;`);
    await until('the Employees workspace', () => a.execute(`return !!document.querySelector('[data-testid=sites-view]');`));
    await a.execute(key('m'));
    await new Promise((r) => setTimeout(r, 1500));
    const hidden = (await a.execute(rows)).find((r) => r.id === onA.id);
    assert.equal(hidden.state, 'acknowledged', 'no shortcut acted from the hidden list');
    await a.execute(`document.querySelector('[data-testid=workspace-live]').click(); return true;`);
    writeFileSync(join(artifacts, 'gui-incidents-a.png'), await a.screenshot());
    writeFileSync(join(artifacts, 'gui-incidents-b.png'), await b.screenshot());

    // The device panel in B: live fields and the stored event.
    await b.execute(`document.querySelector('[data-testid=tab-devices]').click(); return true;`);
    await until('the device row', () => b.execute(`const r = document.querySelector('[data-device-id="v7"][data-testid=device-row]'); if (r) r.click(); return !!r;`));
    const panel = await until('the device panel with its event', () =>
      b.execute(`const p = document.querySelector('[data-testid=device-panel]');
        return p && /panic button/.test(p.textContent) ? p.textContent : false;`),
    );
    assert.match(panel, /Van 7/);
    assert.match(panel, /64 %/);
    writeFileSync(join(artifacts, 'gui-device-panel.png'), await b.screenshot());
  } finally {
    for (const s of sessions) await s.close();
    for (const d of drivers) await d.stop();
    broker.kill('SIGTERM');
    desktop?.stop();
  }
});
