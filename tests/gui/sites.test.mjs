// GUI test of the supervisor's workspace: a real Watchfloor window on Mosquitto with two
// SIMULATED face terminals (`watchfloor sim --terminals 2`, pushing access records). The
// supervisor imports an employee CSV from the Employees panel (a refused row is listed with its
// reason), sees the open list follow the sync (changed rows only), watches both terminals' jobs
// finish in the Terminals panel, opens one employee's
// state on each terminal, sees live attendance joined to the directory, the daily report, and
// exports the log as CSV, and has to confirm an import that would remove most employees.
// Screenshots of each panel are saved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answerFileDialog, freePort, startDriver, Session, until, waitForPort } from './webdriver.mjs';

const app = process.env.WATCHFLOOR_BIN ?? 'target/debug/watchfloor';
const artifacts = process.env.WATCHFLOOR_ARTIFACTS ?? 'test-artifacts';
mkdirSync(artifacts, { recursive: true });

// The smallest JPEG header the import's size check reads (SOI + SOF0, 240x320).
const FACE_JPEG = Buffer.from([
  0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x01, 0x40, 0x00, 0xf0, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11,
  0x01, 0xff, 0xd9,
]);

const click = (testid) => `const e = document.querySelector('[data-testid=${testid}]'); if (e) e.click(); return !!e;`;
const text = (testid) => `return document.querySelector('[data-testid=${testid}]')?.textContent ?? '';`;
const count = (testid) => `return document.querySelectorAll('[data-testid=${testid}]').length;`;
/** Sets an input's value the way typing does (Svelte listens to `input`). */
const type = (testid, value) => `const e = document.querySelector('[data-testid=${testid}]');
  e.value = ${JSON.stringify(value)}; e.dispatchEvent(new Event('input', { bubbles: true })); return true;`;

test('a supervisor imports employees, watches the sync finish, and reads and exports attendance', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'watchfloor-gui-sites-'));
  chmodSync(dir, 0o755); // Mosquitto drops root privileges and must read its config
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
  const broker = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  writeFileSync(join(dir, 'face.jpg'), FACE_JPEG);
  const rows = ['employee_id,name,photo,terminals'];
  for (let i = 1; i <= 40; i++) rows.push(`E${String(i).padStart(3, '0')},Person ${i},face.jpg,`);
  rows.push('E999,Nobody,missing.jpg,');
  const csv = join(dir, 'staff.csv');
  writeFileSync(csv, rows.join('\n') + '\n');
  let sim;
  let driver;
  let session;
  try {
    await waitForPort(port);
    sim = spawn(app, ['sim', '--broker', `mqtt://127.0.0.1:${port}`, '--devices', '1', '--terminals', '2', '--terminal-records', '0.5'], {
      stdio: 'ignore',
    });
    driver = await startDriver({
      WATCHFLOOR_DB: join(dir, 'console.sqlite'),
      WATCHFLOOR_BROKER: `mqtt://127.0.0.1:${port}`,
      XDG_DATA_HOME: join(dir, 'data'),
    });
    const config = join(dir, 'console.toml');
    writeFileSync(config, '[face]\nsync = true\n');
    session = await Session.create(driver.port, app, ['--config', config]);
    const s = session;
    await until('connected', () => s.execute(`return document.querySelector('[data-testid=broker-status]')?.dataset.state === 'connected';`), 60_000);

    // Import from the Employees panel.
    await until('the workspace switch', () => s.execute(click('workspace-sites')));
    await until('the employees tab', () => s.execute(click('sites-employees')));
    await until('the import button', () => s.execute(click('import-run')));
    await answerFileDialog('Import employees (CSV)', csv);
    const report = await until('the import report', async () => {
      const t = await s.execute(text('import-report'));
      return /40 added/.test(t) ? t : false;
    }, 20_000);
    assert.match(report, /1 rows refused/);
    assert.match(report, /line 42 \(E999\)/);
    assert.equal(await until('40 employees listed', async () => ((await s.execute(count('employee-row'))) > 0 ? true : false)), true);
    // The open list follows the sync: every refresh merges the rows that changed since the
    // last, and the whole list is read once, when the panel opened.
    const following = await until('every listed employee on both terminals', async () => {
      const rows = await s.execute(`return [...document.querySelectorAll('[data-testid=employee-row]')].map((e) => e.textContent);`);
      return rows.length > 0 && rows.every((t) => /on 2/.test(t)) ? rows.length : false;
    }, 90_000);
    assert.ok(following > 10, `${following} rows shown`);
    assert.equal(await s.execute(`return document.querySelector('[data-testid=employees-panel]').dataset.wholeReads;`), '1');

    // Both terminals finish their job.
    await s.execute(click('sites-terminals'));
    const jobs = await until('both jobs done', async () => {
      const texts = await s.execute(`return [...document.querySelectorAll('[data-testid=job-text]')].map((e) => e.textContent);`);
      return texts.length === 2 && texts.every((t) => /done · 40\/40/.test(t)) ? texts : false;
    }, 90_000);
    assert.equal(jobs.length, 2);
    // Both heard from in this run (a terminal not heard yet says so rather than what an
    // earlier run stored).
    const presence = await s.execute(`return [...document.querySelectorAll('[data-testid=terminal-online]')].map((e) => e.textContent);`);
    assert.deepEqual(presence.map((t) => t.split(/\d/)[0].trim()), ['online', 'online']);
    await s.execute(`document.querySelector('[data-testid=terminal-row]').click(); return true;`);
    await until('the job view', () => s.execute(`return !!document.querySelector('[data-testid=job-view]');`));
    // Put the selected terminal in a group from the job view; the terminal's row shows it.
    await s.execute(type('terminal-groups', 'entrance, yard'));
    await s.execute(click('terminal-groups-save'));
    const grouped = await until('the groups on the terminal row', async () => {
      const rows = await s.execute(`return [...document.querySelectorAll('[data-testid=terminal-row]')].map((e) => e.textContent);`);
      return rows.find((r) => /entrance, yard/.test(r)) ?? false;
    });
    assert.match(grouped, /sim-terminal-\d/);
    await s.execute(type('terminal-groups', 'bad;name'));
    await s.execute(click('terminal-groups-save'));
    const refusedGroup = await until('the refused group name', () => s.execute(`return document.querySelector('.sites-pane [role=alert]')?.textContent ?? false;`));
    assert.match(refusedGroup, /separates names/);
    writeFileSync(join(artifacts, 'gui-sites-terminals.png'), await s.screenshot());

    // One employee on each terminal.
    await s.execute(click('sites-employees'));
    await until('an employee row', () => s.execute(`const r = document.querySelector('[data-testid=employee-row]'); if (r) r.click(); return !!r;`));
    const placed = await until('the employee synced on both terminals', async () => {
      const states = await s.execute(`return [...document.querySelectorAll('[data-testid=placement-row] .state')].map((e) => e.textContent);`);
      return states.length === 2 && states.every((t) => t === 'synced') ? states : false;
    }, 20_000);
    assert.deepEqual(placed, ['synced', 'synced']);
    writeFileSync(join(artifacts, 'gui-sites-employees.png'), await s.screenshot());

    // Live attendance, names from the directory.
    await s.execute(click('sites-attendance'));
    const line = await until('attendance lines', async () => {
      const lines = await s.execute(`return [...document.querySelectorAll('[data-testid=attendance-row]')].map((e) => e.textContent);`);
      return lines.find((l) => /Person \d+/.test(l)) ?? false;
    }, 30_000);
    assert.match(line, /E0\d\d/);
    writeFileSync(join(artifacts, 'gui-sites-attendance.png'), await s.screenshot());

    const out = join(dir, 'attendance.csv');
    await s.execute(click('export-run'));
    await answerFileDialog('Export to a file', out, { save: true });
    await until('the export', async () => /attendance\.csv/.test(await s.execute(text('export-done'))));
    const exported = readFileSync(out, 'utf8').split('\n');
    assert.match(exported[0], /^terminal_id,terminal_name,record_id/);
    assert.ok(exported.length > 2, 'the export holds the records');

    await s.execute(click('attendance-daily-tab'));
    await until('the daily report', async () => (await s.execute(count('daily-row'))) > 0, 15_000);
    writeFileSync(join(artifacts, 'gui-sites-daily.png'), await s.screenshot());
    // The daily report searched by a person: only their days.
    const dailyIds = `return [...document.querySelectorAll('[data-testid=daily-row] td:nth-child(2) .muted')].map((e) => e.textContent.trim());`;
    const before = await until('two persons in the daily report', async () => {
      const ids = await s.execute(dailyIds);
      return new Set(ids).size >= 2 ? ids : false;
    }, 30_000);
    const someone = before[0];
    await s.execute(type('attendance-search', someone));
    const theirs = await until(`the daily report of ${someone} only`, async () => {
      const ids = await s.execute(dailyIds);
      return ids.length > 0 && ids.every((id) => id === someone) ? ids : false;
    }, 15_000);
    assert.ok(theirs.length >= 1);
    await s.execute(type('attendance-search', ''));
    assert.ok(existsSync(out));

    // A file of two new hires imported as if it were the whole list: nothing is imported until
    // the supervisor confirms that the 40 it leaves out are to go.
    const hires = join(dir, 'new-hires.csv');
    writeFileSync(hires, 'employee_id,name,photo,terminals\nN001,New One,face.jpg,\nN002,New Two,face.jpg,\n');
    await s.execute(click('sites-employees'));
    await until('the import button', () => s.execute(click('import-run')));
    await answerFileDialog('Import employees (CSV)', hires);
    const asked = await until('the confirmation', async () => {
      const t = await s.execute(text('import-confirm'));
      return /leaves out/.test(t) ? t : false;
    }, 20_000);
    assert.match(asked, /Nothing was imported\..*leaves out 40 of the 40 employees/s);
    writeFileSync(join(artifacts, 'gui-sites-import-confirm.png'), await s.screenshot());
    assert.equal(await s.execute(`return [...document.querySelectorAll('[data-testid=employee-row]')].some((e) => /N001/.test(e.textContent));`), false);
    // Cancelled, the question goes (and the backend forgets the import); asked again, confirmed.
    await s.execute(click('import-confirm-cancel'));
    await until('the question gone', async () => !(await s.execute(`return !!document.querySelector('[data-testid=import-confirm]');`)));
    await until('the import button', () => s.execute(click('import-run')));
    await answerFileDialog('Import employees (CSV)', hires);
    await until('the question again', async () => /leaves out 40/.test(await s.execute(text('import-confirm'))), 20_000);
    await s.execute(click('import-confirm-run'));
    const applied = await until('the confirmed import', async () => {
      const t = await s.execute(text('import-report'));
      return /2 added/.test(t) ? t : false;
    }, 20_000);
    assert.match(applied, /40 removed/);
  } finally {
    if (session) await session.close();
    if (driver) await driver.stop();
    sim?.kill('SIGTERM');
    broker.kill('SIGTERM');
  }
});
