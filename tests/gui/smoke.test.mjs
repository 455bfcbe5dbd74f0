// GUI smoke test: the real desktop app under Xvfb, with its embedded broker and 20 simulated
// devices. Through the DOM of the real webview it checks that the map loaded, that MapLibre drew
// device dots (counted from the rendered frame), that the status bar names the embedded broker
// and counts the devices; then it saves a screenshot as a test artifact. It opens the health
// panel, the quarantine list and the device list and map filtered by an operator's group (from
// the config's [groups]), and "Review a file…" through the native file dialog (refused
// for a file that is no history, a second window for the console's own history file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answerFileDialog, freePort, startDriver, Session, until } from './webdriver.mjs';

const app = process.env.WATCHFLOOR_BIN ?? 'target/debug/watchfloor';

/** Pids of processes whose command line holds `pattern` (empty when none). */
function pgrep(pattern) {
  try {
    return execFileSync('pgrep', ['-f', '--', pattern], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}
const artifacts = process.env.WATCHFLOOR_ARTIFACTS ?? 'test-artifacts';
mkdirSync(artifacts, { recursive: true });

test('the console shows a simulated fleet on the map with the broker status', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'watchfloor-gui-'));
  const brokerPort = await freePort();
  const env = {
    WATCHFLOOR_DB: join(dir, 'history.sqlite'),
    WATCHFLOOR_LISTEN: `127.0.0.1:${brokerPort}`,
    WATCHFLOOR_SIMULATE: '20',
    // The webview's storage (remembered layout) in the test's own folder.
    XDG_DATA_HOME: join(dir, 'data'),
  };
  // The operator's groups: the simulator's vehicles are sim-veh-NNNN, its cameras sim-cam-NNNN.
  const config = join(dir, 'console.toml');
  writeFileSync(config, '[groups]\n"Patrol units" = ["sim-veh-*"]\nCameras = ["sim-cam-*", "none-such"]\n');
  const driver = await startDriver(env);
  let session;
  try {
    session = await Session.create(driver.port, app, ['--config', config]);

    const state = await until(
      'device dots drawn on the map',
      async () => {
        const s = await session.execute(`
          const map = document.querySelector('[data-testid=map]');
          return {
            mapLoaded: map?.dataset.mapLoaded === 'true',
            rendered: window.__watchfloorRendered?.() ?? 0,
            inSource: Number(map?.dataset.sourceDevices ?? 0),
            count: document.querySelector('[data-testid=device-count]')?.textContent ?? '',
            broker: document.querySelector('[data-testid=broker-status]')?.textContent ?? '',
            linkState: document.querySelector('[data-testid=broker-status]')?.dataset.state,
            simulated: document.querySelector('[data-testid=simulated-count]')?.textContent ?? '',
          };`);
        return s.mapLoaded && s.rendered >= 15 && s.inSource === 20 ? s : false;
      },
      60_000,
    );

    assert.match(state.count, /20\s*devices/, 'the status bar counts all 20 devices');
    assert.equal(state.linkState, 'connected');
    assert.match(state.broker, new RegExp(`mqtt://127\\.0\\.0\\.1:${brokerPort}`), 'the status bar names the broker');
    assert.match(state.broker, /embedded broker/, 'and says it is the embedded one');
    assert.match(state.simulated, /20 simulated/, 'simulated devices are labelled');

    // Let the fleet move a little so the screenshot shows a live map, not a first frame.
    await new Promise((r) => setTimeout(r, 2000));
    writeFileSync(join(artifacts, 'gui-smoke.png'), await session.screenshot());
    try {
      execFileSync('import', ['-window', 'root', join(artifacts, 'gui-smoke-screen.png')]);
    } catch {
      // the window screenshot above is the artifact that matters
    }

    // The health panel opens from the status bar (its button focused, as a click or Tab
    // leaves it) and shows the pipeline's live figures.
    await session.execute(`const b = document.querySelector('[data-testid=health-toggle]'); b.focus(); b.click(); return true;`);
    const health = await until(
      'the health panel with message rates',
      async () => {
        const rows = await session.execute(`
          const panel = document.querySelector('[data-testid=health-panel]');
          if (!panel) return null;
          return Object.fromEntries([...panel.querySelectorAll('tr')].map((r) => [r.querySelector('th').textContent, r.querySelector('td').textContent]));`);
        return rows && Number(rows['Messages / s']?.replace(/,/g, '')) > 0 ? rows : false;
      },
      20_000,
    );
    assert.match(health['Broker connects'], /^1$/);
    assert.match(health['Writer'], /writing/);
    writeFileSync(join(artifacts, 'gui-health.png'), await session.screenshot());
    // The open panel has the keyboard; Escape (a real key press) closes it and gives the focus
    // back to the button that opened it. Opened again for what follows.
    const focusIn = () => session.execute(`const a = document.activeElement;
      return a?.closest('[data-testid=health-panel]') ? 'panel' : (a?.dataset.testid ?? a?.tagName);`);
    assert.equal(await focusIn(), 'panel', 'the opened panel takes the focus');
    await session.cmd('POST', '/actions', { actions: [{ type: 'key', id: 'keyboard', actions: [{ type: 'keyDown', value: '\uE00C' }, { type: 'keyUp', value: '\uE00C' }] }] });
    await until('the health panel closed by Escape', () => session.execute(`return !document.querySelector('[data-testid=health-panel]');`), 5_000);
    assert.equal(await focusIn(), 'health-toggle', 'the focus is back on the button that opened the panel');
    await session.execute(`document.querySelector('[data-testid=health-toggle]').click(); return true;`);
    await until('the health panel open again', () => session.execute(`return !!document.querySelector('[data-testid=health-panel]');`), 5_000);

    // A malformed message from a device is counted, and listed with its reason.
    execFileSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(brokerPort), '-t', 'devices/gui-bad/location', '-m', `{"ts":${Date.now()},"lat":200,"lon":4}`]);
    await until(
      'the quarantine badge',
      async () => session.execute(`return !!document.querySelector('[data-testid=quarantine-toggle]');`),
      10_000,
    );
    await session.execute(`document.querySelector('[data-testid=quarantine-toggle]').click(); return true;`);
    const listed = await until(
      'the quarantine list',
      async () =>
        session.execute(`
          const panel = document.querySelector('[data-testid=quarantine-panel]');
          return panel && panel.textContent.includes('devices/gui-bad/location') ? panel.textContent : false;`),
      10_000,
    );
    assert.match(listed, /lat = 200 is outside/, 'the reason is shown in words');
    writeFileSync(join(artifacts, 'gui-quarantine.png'), await session.screenshot());

    // The page is locked down: an injected inline script does not run (CSP), nothing but the
    // app itself can be fetched, and commands outside the console's capability are refused:
    // the review window's, and the dialog and file system plugins' (files are picked only in
    // the dialogs the backend opens; neither plugin is in the Linux build).
    const locked = await session.executeAsync(`
      const done = arguments[arguments.length - 1];
      const violations = [];
      document.addEventListener('securitypolicyviolation', (e) => violations.push(e.violatedDirective));
      const s = document.createElement('script');
      s.textContent = 'window.__inlineRan = true';
      document.head.appendChild(s);
      const refused = async (cmd, args) => {
        try { await window.__TAURI_INTERNALS__.invoke(cmd, args); return 'allowed'; }
        catch (e) { return String(e?.message ?? e); }
      };
      (async () => {
        let fetched;
        try { await fetch('http://127.0.0.1:9/'); fetched = 'fetched'; } catch (e) { fetched = String(e); }
        await new Promise((r) => setTimeout(r, 200)); // violation events are dispatched async
        done({
          violations,
          inline: window.__inlineRan === true,
          fetched,
          review: await refused('review_frame', { atMs: 0 }),
          dialog: await refused('plugin:dialog|open', { options: {} }),
          fs: await refused('plugin:fs|read_file', { path: '/etc/passwd' }),
        });
      })();`);
    console.log('lockdown:', JSON.stringify(locked));
    assert.equal(locked.inline, false, 'an injected inline script is blocked by the CSP');
    assert.notEqual(locked.fetched, 'fetched', 'no fetch leaves the app');
    assert.ok(locked.violations.some((d) => d.startsWith('script-src')), `the CSP refused the script: ${locked.violations}`);
    assert.ok(locked.violations.includes('connect-src'), `the CSP refused the fetch: ${locked.violations}`);
    for (const cmd of ['review', 'dialog', 'fs']) {
      assert.match(locked[cmd], /not allowed|not found|denied/i, `${cmd}: ${locked[cmd]}`);
    }

    // The device list filtered by an operator's group: only the vehicles, and the panel of one
    // names its group. (The health and quarantine panels close first: they cover the map.)
    await session.execute(`
      document.querySelector('[data-testid=health-toggle]').click();
      document.querySelector('[data-testid=quarantine-toggle]').click();
      return true;`);
    await session.execute(`document.querySelector('[data-testid=tab-devices]').click(); return true;`);
    const options = await until('the group filter', () =>
      session.execute(`
        const sel = document.querySelector('[data-testid=device-group-filter]');
        return sel ? [...sel.options].map((o) => o.value) : false;`),
    );
    assert.deepEqual(options, ['all', 'Cameras', 'Patrol units'], 'the configured groups, in order');
    await session.execute(`
      const sel = document.querySelector('[data-testid=device-group-filter]');
      sel.value = 'Patrol units';
      sel.dispatchEvent(new Event('change', { bubbles: true }));
      return true;`);
    const patrol = await until('the list narrowed to the group', async () => {
      const r = await session.execute(`return {
        ids: [...document.querySelectorAll('[data-testid=device-row]')].map((r) => r.dataset.deviceId),
        count: document.querySelector('[data-testid=device-list-count]')?.textContent ?? '',
      };`);
      // The count changes first; the virtualized rows follow at the next frame. The simulator
      // makes 6 of every 10 devices vehicles: 12 of its 20.
      const onlyVehicles = r.ids.length > 0 && r.ids.every((id) => id.startsWith('sim-veh-'));
      return r.count.startsWith('12 of 20') && onlyVehicles ? r : false;
    });
    assert.match(patrol.count, /^12 of 20/);
    await session.execute(`document.querySelector('[data-testid=device-row]').click(); return true;`);
    const groupsFact = await until('the device panel', () =>
      session.execute(`return document.querySelector('[data-testid=device-panel] [data-fact=Groups]')?.textContent ?? false;`),
    );
    assert.equal(groupsFact, 'Patrol units');
    // The selected device is ringed on the map where it is, also inside a cluster.
    const ring = await until('the selected device ringed on the map', () =>
      session.execute(`
        const id = document.querySelector('[data-testid=device-row][aria-current=true]')?.dataset.deviceId;
        const el = document.querySelector('[data-testid=selected-device]');
        const at = id && window.__watchfloorProject(id);
        if (!el || !at) return false;
        const r = el.getBoundingClientRect();
        return { dx: r.left + r.width / 2 - at.x, dy: r.top + r.height / 2 - at.y, named: el.dataset.named, name: el.textContent };`),
    );
    assert.ok(Math.hypot(ring.dx, ring.dy) < 2, `ring centred on the device: ${JSON.stringify(ring)}`);
    assert.match(ring.name, /\S/);
    // Following the selected device keeps it in the middle of the map, says so on the map (the
    // device panel, where it is set, is hidden on the Incidents tab), and stops when the
    // operator moves the map another way: Fit all is not pulled back to the one device.
    const offCentre = () => session.execute(`
      const id = document.querySelector('[data-testid=device-row][aria-current=true]')?.dataset.deviceId;
      const at = id && window.__watchfloorProject(id);
      const box = document.querySelector('[data-testid=map]').getBoundingClientRect();
      return at ? Math.hypot(at.x - (box.left + box.width / 2), at.y - (box.top + box.height / 2)) : null;`);
    await session.execute(`document.querySelector('[data-testid=follow]').click(); return true;`);
    const following = await until('the map following the device', async () => {
      const chip = await session.execute(`return document.querySelector('[data-testid=map-following]')?.textContent ?? null;`);
      const off = await offCentre();
      return chip && off !== null && off < 40 ? { chip, off } : false;
    }, 20_000);
    assert.match(following.chip, /Following .+Stop/);
    writeFileSync(join(artifacts, 'gui-following.png'), await session.screenshot());
    await session.execute(`document.querySelector('[data-testid=fit-all]').click(); return true;`);
    await new Promise((r) => setTimeout(r, 2_000)); // ten batches of a moving fleet
    const after = await session.execute(`return {
      chip: !!document.querySelector('[data-testid=map-following]'),
      box: document.querySelector('[data-testid=follow]').checked,
    };`);
    assert.deepEqual(after, { chip: false, box: false }, 'Fit all stops following');

    // The map follows the list's filter, and says so: the 12 vehicles in its source, no more
    // drawn (those in view, alone or in clusters), "Show all" clears it.
    const mapFiltered = await until('the map narrowed to the group', async () => {
      const r = await session.execute(`return {
        held: document.querySelector('[data-testid=map]').dataset.sourceDevices,
        drawn: window.__watchfloorRendered(),
        notice: document.querySelector('[data-testid=map-filter-notice]')?.textContent ?? '',
      };`);
      return r.held === '12' && r.drawn > 0 && r.drawn <= 12 ? r : false;
    });
    assert.match(mapFiltered.notice, /12 devices match the list's filter/);
    writeFileSync(join(artifacts, 'gui-device-group.png'), await session.screenshot());
    await session.execute(`document.querySelector('[data-testid=map-show-all]').click(); return true;`);
    const everyone = await until('the filter cleared', async () => {
      const r = await session.execute(`return {
        held: document.querySelector('[data-testid=map]').dataset.sourceDevices,
        notice: !!document.querySelector('[data-testid=map-filter-notice]'),
        group: document.querySelector('[data-testid=device-group-filter]').value,
        count: document.querySelector('[data-testid=device-list-count]')?.textContent ?? '',
      };`);
      return r.held === '20' && !r.notice ? r : false;
    });
    assert.equal(everyone.group, 'all');
    assert.match(everyone.count, /^20/);

    // An OwnTracks phone (a namespaced id, ot:...) selected after it sent three fixes shows
    // them as its trail: the trail is read from live state by the device's full id.
    const tst = Math.floor(Date.now() / 1000);
    for (const [k, lat] of [51.91, 51.912, 51.914].entries()) {
      execFileSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(brokerPort), '-t', 'owntracks/gui/phone', '-m', JSON.stringify({ _type: 'location', tst: tst - 30 + k * 10, lat, lon: 4.47 })]);
    }
    await session.execute(`
      const box = document.querySelector('[data-testid=device-search]');
      box.value = 'ot:gui';
      box.dispatchEvent(new Event('input', { bubbles: true }));
      return true;`);
    await until('the phone listed', () =>
      session.execute(`return [...document.querySelectorAll('[data-testid=device-row]')].some((r) => r.dataset.deviceId === 'ot:gui.phone');`),
    );
    await session.execute(`[...document.querySelectorAll('[data-testid=device-row]')].find((r) => r.dataset.deviceId === 'ot:gui.phone').click(); return true;`);
    const phoneTrail = await until('the phone trail', () =>
      session.execute(`
        const panel = document.querySelector('[data-testid=device-panel][data-device-id="ot:gui.phone"]');
        const t = panel?.querySelector('[data-testid=device-trail]')?.textContent ?? '';
        return t.startsWith('Trail: 3 fixes') ? t : false;`),
    );
    assert.match(phoneTrail, /^Trail: 3 fixes/);
    await session.execute(`
      const box = document.querySelector('[data-testid=device-search]');
      box.value = '';
      box.dispatchEvent(new Event('input', { bubbles: true }));
      document.querySelector('[data-testid=device-panel] .close').click();
      return true;`);

    // A wider window (a wall screen, in small): the text grows with it, and so do the side panel
    // and the map's symbols (at 1280 px both are at their laptop size).
    const sizes = () => session.execute(`return {
      scale: Number(document.querySelector('[data-testid=map]').dataset.symbolScale),
      side: document.querySelector('aside.side').getBoundingClientRect().width,
      rem: parseFloat(getComputedStyle(document.documentElement).fontSize),
    };`);
    const laptop = await sizes();
    assert.equal(laptop.scale, 1);
    await session.cmd('POST', '/window/rect', { width: 1600, height: 1000, x: 0, y: 0 });
    const wide = await until('the map and panel grown with the text', async () => {
      const r = await sizes();
      return r.scale > laptop.scale ? r : false;
    });
    assert.equal(wide.scale, 1.1, 'symbols 1.1 times a laptop\'s at 1600 px');
    assert.ok(wide.rem > laptop.rem, `text grows with the window: ${laptop.rem} -> ${wide.rem} px`);
    const ratio = wide.side / laptop.side;
    assert.ok(Math.abs(ratio - wide.rem / laptop.rem) < 0.02, `the side panel grows with the text: ${laptop.side} -> ${wide.side} px`);

    // "Review a file…": the operator picks the file in the native dialog. A file that is no
    // history file is refused in words, in the console; the console's own (live) history file
    // opens in a review window of its own, a second process.
    const openReview = async (path) => {
      await session.execute(`document.querySelector('[data-testid=open-review]').click(); return true;`);
      await answerFileDialog('Open a history file for review', path);
      return until('the review result', () => session.execute(`return document.querySelector('[data-testid=open-review-result]')?.textContent ?? false;`), 20_000);
    };
    const notHistory = join(dir, 'notes.sqlite');
    writeFileSync(notHistory, 'not a database');
    const refused = await openReview(notHistory);
    assert.match(refused, /notes\.sqlite/, `the refusal names the file: ${refused}`);
    assert.equal(pgrep(`review ${notHistory}`), '', 'no review window for a refused file');
    const opened = await openReview(env.WATCHFLOOR_DB);
    assert.match(opened, /opened in a review window/);
    const pid = await until('the review window process', () => pgrep(`review ${env.WATCHFLOOR_DB}`), 10_000);
    process.kill(Number(pid.split('\n')[0]), 'SIGTERM');
  } finally {
    await session?.close();
    await driver.stop();
  }
});
