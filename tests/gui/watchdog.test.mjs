// The page's watchdog (src-tauri/desktop/watchdog.rs): the console's page runs in WebKit's web
// process, and it is the page that raises the alerts. When that process crashes (here: SIGKILL)
// or hangs (here: SIGSTOP, which leaves it alive but answering nothing), the console reloads the
// page in a new process, which subscribes to live state again, and says so in a desktop
// notification. Before, a crashed page left a blank window and no alerts until someone looked.
// An incident raised while the page was hung alerts once the new page runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startDesktopHost, until } from './webdriver.mjs';

const app = process.env.WATCHFLOOR_BIN ?? 'target/debug/watchfloor';

/** The fields of /proc/PID/stat after the command name: [state, ppid, pgrp, ...]. */
function statFields(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The pid of the WebKit web process that `parent` started, or null. */
function webProcessOf(parent) {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(statFields(entry)[1]);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (ppid === parent && cmdline.includes('WebKitWebProcess')) return Number(entry);
    } catch {
      // the process ended while we read
    }
  }
  return null;
}

/** The process group of `pid`. */
function processGroupOf(pid) {
  return Number(statFields(pid)[2]);
}

test('a crashed or hung page is reloaded, re-subscribes, and the operator is told', { timeout: 180_000 }, async () => {
  const desktop = await startDesktopHost();
  const dir = mkdtempSync(join(tmpdir(), 'watchfloor-gui-watchdog-'));
  const port = await freePort();
  const logPath = join(dir, 'console.log');
  const child = spawn(app, [], {
    env: {
      ...process.env,
      DBUS_SESSION_BUS_ADDRESS: desktop.address,
      WATCHFLOOR_DB: join(dir, 'history.sqlite'),
      WATCHFLOOR_LISTEN: `127.0.0.1:${port}`,
      WATCHFLOOR_SIMULATE: '5',
      XDG_DATA_HOME: join(dir, 'data'),
      RUST_LOG: 'info,rumqttd=off,rumqttc=warn',
    },
    stdio: ['ignore', 'ignore', openSync(logPath, 'w')],
    detached: true, // a process group of its own, as a terminal gives it
  });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
  const read = () => readFileSync(logPath, 'utf8');
  const subscriptions = () => read().split('a page subscribed to live state').length - 1;
  const watchdogNotices = () => desktop.seen.filter((r) => r.notification?.summary?.startsWith('Watchfloor: the screen'));
  try {
    await until('the page subscribed to live state', () => subscriptions() === 1, 90_000);
    const first = await until('the web process', () => webProcessOf(child.pid), 10_000);

    // A crash.
    process.kill(first, 'SIGKILL');
    await until('the page reloaded after the crash', () => subscriptions() === 2, 60_000);
    assert.match(read(), /the page's web process ended: reloading the page window="The console" reason="crashed"/);
    const crashed = await until('the crash notification', () => watchdogNotices()[0], 10_000);
    assert.equal(crashed.notification.summary, 'Watchfloor: the screen crashed');
    assert.match(crashed.notification.body, /^The console's page crashed at \d\d:\d\d:\d\d and is being reloaded\./);
    assert.equal(crashed.notification.urgency, 2, 'critical');
    const second = await until('a new web process', () => {
      const pid = webProcessOf(child.pid);
      return pid !== first && pid;
    }, 10_000);

    // A hang: the process lives but answers nothing. Meanwhile a device raises a critical
    // event, which the frozen page cannot alert.
    await new Promise((r) => setTimeout(r, 2_000)); // the new page saves what it holds
    process.kill(second, 'SIGSTOP');
    execFileSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', 'devices/gap-1/events',
      '-m', JSON.stringify({ id: 'gap-event', ts: Date.now(), type: 'panic_button', severity: 'critical', message: 'pressed while the screen was down' })]);
    await until('the page reloaded after the hang', () => subscriptions() === 3, 90_000);
    assert.match(read(), /the page has stopped answering: ending its web process to reload it/);
    const hung = await until('the hang notification', () => watchdogNotices()[1], 10_000);
    assert.equal(hung.notification.summary, 'Watchfloor: the screen stopped answering');
    const third = webProcessOf(child.pid);
    assert.ok(third && third !== second, `a third web process: ${third}`);
    // The reloaded page alerts what opened while the screen was down (it compares its first
    // snapshot with what the page before it held), and nothing it had already seen.
    const gap = await until('the alert for the incident raised during the hang', () =>
      desktop.seen.find((r) => /^CRITICAL: .*panic button/.test(r.notification?.summary ?? '')), 30_000);
    assert.match(gap.notification.body, /gap-1/);
    await new Promise((r) => setTimeout(r, 2_000));
    const incidentAlerts = desktop.seen.filter((r) => r.notification && !r.notification.summary.startsWith('Watchfloor: the screen'));
    assert.equal(incidentAlerts.length, 1, `one incident alert: ${JSON.stringify(incidentAlerts)}`);

    // Ctrl-C in the terminal that started it: the whole process group gets SIGINT, the web
    // process too (WebKit calls that a crash). The console closes cleanly, and neither reloads
    // its page nor tells of a crash.
    assert.equal(processGroupOf(third), child.pid, 'the web process is in the console\'s process group');
    process.kill(-child.pid, 'SIGINT');
    const { code, sig } = await Promise.race([exited, new Promise((r) => setTimeout(() => r({ code: 'timeout' }), 30_000))]);
    assert.equal(code, 0, `exit ${code} ${sig ?? ''}; log:\n${read()}`);
    assert.match(read(), /console closed; history flushed/);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(watchdogNotices().length, 2, `no crash told at the stop: ${JSON.stringify(watchdogNotices())}`);
    assert.equal(read().split('reloading the page').length - 1, 2, read());
  } finally {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid, 'SIGKILL');
    desktop.stop();
  }
});
