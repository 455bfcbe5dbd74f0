// The desktop console stopped by a signal (kill, a logout, Ctrl-C in the terminal that started
// it) flushes its history as closing the window does: its simulated devices say goodbye (an
// offline status each), the writer commits, and the process exits 0. Before, only the window's
// close ran that path, and a SIGTERM lost what was still queued.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, until } from './webdriver.mjs';

const app = process.env.WATCHFLOOR_BIN ?? 'target/debug/watchfloor';

for (const signal of ['SIGTERM', 'SIGHUP']) {
  test(`a console stopped with ${signal} flushes its history and exits 0`, { timeout: 120_000 }, async () => {
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
      },
      stdio: ['ignore', 'ignore', log],
    });
    const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
    try {
      const read = () => readFileSync(logPath, 'utf8');
      await until('the console connected', () => read().includes('connected to broker'), 60_000);
      await new Promise((r) => setTimeout(r, 3_000)); // the simulated fleet reports
      child.kill(signal);
      const { code, sig } = await Promise.race([exited, new Promise((r) => setTimeout(() => r({ code: 'timeout' }), 30_000))]);
      assert.equal(code, 0, `exit ${code} ${sig ?? ''}; log:\n${read()}`);
      assert.match(read(), /stop signal: closing the console/);
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
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
}
