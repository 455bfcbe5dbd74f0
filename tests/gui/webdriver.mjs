// A minimal W3C WebDriver client over fetch, enough to drive the real Watchfloor window through
// tauri-driver (which starts WebKitWebDriver, which starts the app). No browser download, no
// framework: the protocol is a handful of JSON requests.
import { execFileSync, spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listened on ${port} within ${timeoutMs} ms`);
}

/** Polls `probe` until it returns a truthy value; throws with `what` on timeout. */
export async function until(what, probe, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
}

/** Starts tauri-driver on free ports; `env` reaches the app (tauri-driver passes it down).
 * The driver leads its own process group, which WebKitWebDriver and the app join, so `stop()`
 * ends all three even when the session's DELETE did not close the app. */
export async function startDriver(env) {
  const port = await freePort();
  const nativePort = await freePort();
  const proc = spawn('tauri-driver', ['--port', String(port), '--native-port', String(nativePort)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
  });
  // tauri-driver starts WebKitWebDriver on the native port as it starts; a session asked for
  // before that one listens fails with "connection refused" (seen on a loaded machine).
  await waitForPort(port);
  await waitForPort(nativePort);
  const signalGroup = (signal) => {
    try {
      process.kill(-proc.pid, signal);
      return true;
    } catch {
      return false; // the group is gone
    }
  };
  const stop = async () => {
    // SIGTERM first, so the app can flush its history; SIGKILL whatever is left after 5 s.
    if (!signalGroup('SIGTERM')) return;
    for (let i = 0; i < 50; i++) {
      await sleep(100);
      if (!signalGroup(0)) return;
    }
    signalGroup('SIGKILL');
  };
  return { port, proc, stop };
}

export class Session {
  static async create(driverPort, application, args = []) {
    const res = await fetch(`http://127.0.0.1:${driverPort}/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        capabilities: { alwaysMatch: { 'tauri:options': { application, args } } },
      }),
    });
    const body = await res.json();
    if (!res.ok) throw new Error(`new session failed: ${JSON.stringify(body)}`);
    return new Session(driverPort, body.value.sessionId);
  }

  constructor(driverPort, id) {
    this.base = `http://127.0.0.1:${driverPort}/session/${id}`;
  }

  async cmd(method, path, body) {
    const res = await fetch(this.base + path, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${path} failed: ${JSON.stringify(json)}`);
    return json.value;
  }

  /** Runs `script` (a function body) in the page and returns its result. */
  execute(script, args = []) {
    return this.cmd('POST', '/execute/sync', { script, args });
  }

  /** Runs `script` (a function body) in the page; it ends by calling its last argument with
   * the result. */
  executeAsync(script, args = []) {
    return this.cmd('POST', '/execute/async', { script, args });
  }

  /** The window's viewport as PNG bytes. */
  async screenshot() {
    return Buffer.from(await this.cmd('GET', '/screenshot'), 'base64');
  }

  async close() {
    try {
      await this.cmd('DELETE', '');
    } catch {
      // the app may already be gone
    }
  }
}

/** The X window id of the visible window titled exactly `title`, or null. */
function windowId(title) {
  try {
    const escaped = title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const out = execFileSync('xdotool', ['search', '--onlyvisible', '--name', `^${escaped}$`], { encoding: 'utf8' });
    return out.trim().split('\n')[0] || null;
  } catch {
    return null; // xdotool exits 1 when nothing matches
  }
}

/**
 * Answers the app's native file dialog titled `title` with `path`, as an operator would type
 * it: the dialog is found on the X server, focused, and given the path through the keyboard
 * (GTK's file chooser takes a typed path: Ctrl+L opens its location field in an open dialog;
 * a save dialog's name field takes a whole path). Needs xdotool and a display (Xvfb).
 *
 * A dialog opened for the first time in a process can take a while to build its widgets, and
 * its location field's completion pop-up can take the Return meant for the dialog; keys sent too
 * early are lost (GTK logs "gtk_widget_event: assertion 'WIDGET_REALIZED_FOR_EVENT'"). So the
 * answer is typed again, up to four times, while the dialog stays open. A retry does not press
 * Ctrl+L again (that would hide a focused location field): Ctrl+A selects what the field holds,
 * or, with the file list focused, typing the leading "/" opens the field with the path.
 * When it still stays open, a screenshot of the display is saved for the test's artifacts.
 */
export async function answerFileDialog(title, path, { save = false, timeoutMs = 20_000 } = {}) {
  const id = await until(`the "${title}" dialog`, async () => windowId(title), timeoutMs);
  const closed = async (ms) => {
    try {
      await until(`the "${title}" dialog to close`, async () => windowId(title) === null, ms);
      return true;
    } catch {
      return false;
    }
  };
  for (let attempt = 1; attempt <= 4; attempt++) {
    if (windowId(title) === null) return; // the previous answer took, slowly
    try {
      execFileSync('xdotool', ['windowfocus', '--sync', id]);
      await sleep(400 * attempt); // GTK maps the dialog's widgets after the window
      const select = save || attempt > 1 ? 'ctrl+a' : 'ctrl+l';
      execFileSync('xdotool', ['key', '--clearmodifiers', select]);
      execFileSync('xdotool', ['type', '--delay', '5', path]);
      await sleep(300);
      execFileSync('xdotool', ['key', 'Return']);
    } catch (e) {
      if (windowId(title) === null) return; // closed under our keys: xdotool lost its window
      throw e;
    }
    if (await closed(3_000 * attempt)) return;
  }
  const shot = join(process.env.WATCHFLOOR_ARTIFACTS ?? 'test-artifacts', `dialog-stuck-${Date.now()}.png`);
  try {
    execFileSync('import', ['-window', 'root', shot]);
  } catch {
    // the screenshot is only a diagnosis
  }
  throw new Error(`the "${title}" dialog stayed open after typing ${path} four times (display: ${shot})`);
}

/**
 * A stand-in desktop session for one console: a private D-Bus session bus with a tray host and a
 * notification daemon (desktop_host.py), which report what the console showed there. Pass
 * `address` to the console as DBUS_SESSION_BUS_ADDRESS; `seen` holds every report so far
 * ({tray: {label, menu}}, {clicked}, or {notification: {summary, body, urgency}}); `click(label)`
 * picks an item of the tray menu.
 */
export async function startDesktopHost() {
  const proc = spawn('dbus-run-session', ['--', '/usr/bin/python3', fileURLToPath(new URL('./desktop_host.py', import.meta.url))], {
    stdio: ['pipe', 'pipe', 'inherit'],
    detached: true,
  });
  const seen = [];
  let address = null;
  let buffered = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let report;
      try {
        report = JSON.parse(line);
      } catch {
        continue; // the bus's own chatter
      }
      if (report.bus) address = report.bus;
      else seen.push(report);
    }
  });
  await until('the stand-in desktop session bus', () => address, 10_000);
  const stop = () => {
    try {
      process.kill(-proc.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  /** Clicks the tray menu item `label`, as the user would in the desktop's tray. */
  const click = (label) => proc.stdin.write(`${JSON.stringify({ click: label })}\n`);
  return { address, seen, stop, click };
}

/**
 * Reloads the console at a map view of our choosing (the view it remembers in localStorage),
 * instead of fitting its fleet. The first page may save the view it fitted just before the
 * reload, over ours: then ours is set again and the page reloaded once more.
 */
export async function openAtView(session, lon, lat, zoom) {
  const mapLoaded = () => session.execute(`return document.querySelector('[data-testid=map]')?.dataset.mapLoaded === 'true';`);
  return until('the console at the view set for it', async () => {
    await until('the map', mapLoaded, 120_000);
    const view = await session.execute(`return JSON.parse(localStorage.getItem('watchfloor.prefs.v1') ?? '{}').mapView ?? null;`);
    if (view && view.zoom === zoom && view.center[0] === lon && view.center[1] === lat) return view;
    await session.execute(
      `localStorage.setItem('watchfloor.prefs.v1', JSON.stringify({ mapView: { center: [arguments[0], arguments[1]], zoom: arguments[2] } }));
       location.reload(); return true;`,
      [lon, lat, zoom],
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return false;
  }, 240_000);
}
