// The desktop console stopped by a signal (kill, a logout, Ctrl-C in the terminal that started
// it) or quit from its tray menu flushes its history as closing the window does: its simulated devices say goodbye (an
// offline status each), the writer commits, and the process exits 0. Before, only the window's
// close ran that path, and a SIGTERM lost what was still queued.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startDesktopHost, until } from './webdriver.mjs';

const app = process.env.WATCHFLOOR_BIN ?? 'target/debug/watchfloor';

/**
 * Starts a console with five simulated devices, stops it with `stop(child, read)` once it is
 * connected and its fleet has reported, and checks that it flushed its history and exited 0;
 * `env` is added to its environment. Returns the console's log.
 */
async function stopsCleanly(env, stop) {
  const dir = mkdtempSync(join(tmpdir(), 'watchfloor-gui-stop-'));
  const db = join(dir, 'history.sqlite');
  const logPath = join(dir, 'console.log');
  const log = openSync(logPath, 'w');
  const child = spawn(app, [], {
    env: {
      ...process.env,
      WATCHFLOOR_DB: db,
      WATCHFLOOR_LISTEN: `127.0.0.1:${await freePort()}`,
      WATCHFLOOR_SIMULATE: '5',
      XDG_DATA_HOME: join(dir, 'data'),
      RUST_LOG: 'info,rumqttd=off,rumqttc=warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', log],
  });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
  try {
    const read = () => readFileSync(logPath, 'utf8');
    await until('the console connected', () => read().includes('connected to broker'), 60_000);
    await new Promise((r) => setTimeout(r, 3_000)); // the simulated fleet reports
    await stop(child, read);
    const { code, sig } = await Promise.race([exited, new Promise((r) => setTimeout(() => r({ code: 'timeout' }), 30_000))]);
    assert.equal(code, 0, `exit ${code} ${sig ?? ''}; log:\n${read()}`);
    assert.match(read(), /console closed; history flushed/);
    // The simulated devices' goodbyes, sent at the stop, are in the file.
    const out = spawnSync(app, ['export', '--db', db, '--what', 'statuses', '--format', 'ndjson'], { encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    const offline = out.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .filter((r) => r.online === false || r.online === 0);
    assert.equal(new Set(offline.map((r) => r.device_id)).size, 5, `offline statuses: ${out.stdout.slice(0, 2000)}`);
    return read();
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

for (const signal of ['SIGTERM', 'SIGHUP']) {
  test(`a console stopped with ${signal} flushes its history and exits 0`, { timeout: 120_000 }, async () => {
    const log = await stopsCleanly({}, (child) => child.kill(signal));
    assert.match(log, /stop signal: closing the console/);
  });
}

test('a console quit from its tray menu flushes its history and exits 0', { timeout: 120_000 }, async () => {
  // A stand-in desktop session: the tray host shows the menu, and picks "Quit Watchfloor".
  const desktop = await startDesktopHost();
  try {
    const log = await stopsCleanly({ DBUS_SESSION_BUS_ADDRESS: desktop.address }, async () => {
      const menu = () => desktop.seen.filter((r) => r.tray).at(-1)?.tray.menu;
      await until('the tray menu', () => menu()?.includes('Quit Watchfloor'), 20_000);
      // Its first line says the count (a simulated device may have raised an incident by now).
      assert.match(menu()[0], /unacknowledged/);
      assert.deepEqual(menu().slice(1), ['Show Watchfloor', 'Quit Watchfloor']);
      desktop.click('Quit Watchfloor');
      await until('the click delivered', () => desktop.seen.some((r) => r.clicked === 'Quit Watchfloor'), 10_000);
    });
    assert.match(log, /quit from the tray menu/);
  } finally {
    desktop.stop();
  }
});

test('a review window stopped with SIGTERM deletes its private copy of an older file', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'watchfloor-gui-stop-review-'));
  const temp = join(dir, 'tmp');
  mkdirSync(temp);
  // A history file of schema 1 (positions, statuses, events, quarantine): review copies it to
  // bring it up to date, and the copy must not outlive the window.
  const old = join(dir, 'old.sqlite');
  const made = spawnSync('python3', ['-c', OLD_SCHEMA_FILE, old], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const logPath = join(dir, 'review.log');
  const child = spawn(app, ['review', old], {
    env: { ...process.env, TMPDIR: temp, XDG_DATA_HOME: join(dir, 'data'), RUST_LOG: 'info' },
    stdio: ['ignore', 'ignore', openSync(logPath, 'w')],
  });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
  try {
    const read = () => readFileSync(logPath, 'utf8');
    await until('the file opened as a copy', () => read().includes('opened=Copy'), 60_000);
    assert.equal(readdirSync(temp).length, 1, 'the private copy');
    child.kill('SIGTERM');
    const { code, sig } = await Promise.race([exited, new Promise((r) => setTimeout(() => r({ code: 'timeout' }), 30_000))]);
    assert.equal(code, 0, `exit ${code} ${sig ?? ''}; log:\n${read()}`);
    assert.deepEqual(readdirSync(temp), [], 'the private copy is deleted');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

// Writes a schema-1 history file (the first Watchfloor's tables, as crates/core/src/store's DDL
// has them, and one fix) at argv[1].
const OLD_SCHEMA_FILE = `
import sqlite3, sys
d = sqlite3.connect(sys.argv[1])
d.executescript('''
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;
CREATE TABLE positions (id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, ts_ms INTEGER NOT NULL,
  lat REAL NOT NULL, lon REAL NOT NULL, alt REAL, heading REAL, speed REAL, accuracy REAL,
  received_ms INTEGER NOT NULL) STRICT;
CREATE INDEX positions_by_device_time ON positions (device_id, ts_ms);
CREATE TABLE statuses (id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, ts_ms INTEGER NOT NULL,
  online INTEGER NOT NULL, battery REAL, signal REAL, kind TEXT, name TEXT,
  simulated INTEGER NOT NULL, received_ms INTEGER NOT NULL, UNIQUE (device_id, ts_ms, online)) STRICT;
CREATE TABLE events (id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, event_id TEXT NOT NULL,
  ts_ms INTEGER NOT NULL, type TEXT NOT NULL, severity TEXT NOT NULL, message TEXT,
  lat REAL, lon REAL, received_ms INTEGER NOT NULL, UNIQUE (device_id, event_id)) STRICT;
CREATE INDEX events_by_time ON events (ts_ms);
CREATE TABLE quarantine (id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, topic TEXT NOT NULL,
  payload BLOB NOT NULL, payload_len INTEGER NOT NULL, reason_code TEXT NOT NULL,
  reason TEXT NOT NULL) STRICT;
CREATE INDEX quarantine_by_time ON quarantine (received_ms);
INSERT INTO positions (device_id, ts_ms, lat, lon, received_ms)
  VALUES ('v1', 1795421700000, 51.9, 4.4, 1795421700000);
PRAGMA user_version = 1;
''')
d.commit()
`;
