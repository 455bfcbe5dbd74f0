// GUI test of a console started where things are not right, that must say so instead of showing
// a blank map or an empty panel: the online map style it is configured for does not load (a
// tile server it cannot reach tonight), so the map falls back to the bundled offline basemap,
// draws the fleet on it and tells the operator why; and the employee sync cannot start (its
// photo port is taken), which the Terminals panel says, with the reason. A second console's
// online style loads, but its tile server answers every tile with an error: it falls back too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startDriver, Session, until } from './webdriver.mjs';

const app = process.env.WATCHFLOOR_BIN ?? 'target/debug/watchfloor';
const artifacts = process.env.WATCHFLOOR_ARTIFACTS ?? 'test-artifacts';
mkdirSync(artifacts, { recursive: true });

test('an unreachable map style and a sync that cannot start are both said, and the console works on', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'watchfloor-gui-degraded-'));
  // A port nobody listens on: the style's request is refused at once.
  const style = `http://127.0.0.1:${await freePort()}/style.json`;
  // A port somebody else holds: the sync's photo endpoint cannot listen there.
  const holder = createServer();
  await new Promise((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const photoPort = holder.address().port;
  writeFileSync(
    join(dir, 'config.toml'),
    `[ui]\nmap_style_url = "${style}"\n\n[face]\nsync = true\nphoto_listen = "127.0.0.1:${photoPort}"\n`,
  );
  const driver = await startDriver({
    WATCHFLOOR_DB: join(dir, 'history.sqlite'),
    WATCHFLOOR_LISTEN: `127.0.0.1:${await freePort()}`,
    WATCHFLOOR_SIMULATE: '30',
    WATCHFLOOR_CONFIG: join(dir, 'config.toml'),
    XDG_DATA_HOME: join(dir, 'data'),
  });
  let session;
  try {
    session = await Session.create(driver.port, app, []);
    const s = session;
    const notice = await until('the fallback notice', () =>
      s.execute(`return document.querySelector('[data-testid=style-fallback]')?.textContent ?? false;`),
    );
    assert.match(notice, /online map style did not load/);
    assert.ok(notice.includes(style), `the notice names the style: ${notice}`);
    await until('the map loaded on the bundled basemap', () =>
      s.execute(`return document.querySelector('[data-testid=map]')?.dataset.mapLoaded === 'true';`),
    );
    const drawn = await until('the fleet drawn', async () => {
      const n = await s.execute(`return window.__watchfloorRendered?.() ?? 0;`);
      return n >= 30 ? n : false;
    }, 60_000);
    assert.equal(drawn, 30);
    writeFileSync(join(artifacts, 'gui-basemap-fallback.png'), await s.screenshot());
    // The operator can put the notice away; the map stays.
    await s.execute(`document.querySelector('[data-testid=style-fallback] .close').click(); return true;`);
    await until('the notice dismissed', () => s.execute(`return !document.querySelector('[data-testid=style-fallback]');`));

    // The Terminals panel says why the sync is not running, and its controls say it too.
    await s.execute(`document.querySelector('[data-testid=workspace-sites]').click(); return true;`);
    const off = await until('the sync problem in the Terminals panel', () =>
      s.execute(`return document.querySelector('[data-testid=sync-off]')?.textContent ?? false;`),
    );
    assert.match(off, /The employee sync did not start: .*127\.0\.0\.1:\d+/);
    writeFileSync(join(artifacts, 'gui-sync-not-started.png'), await s.screenshot());
  } finally {
    await session?.close();
    await driver.stop();
    holder.close();
  }
});

test('an online style whose every tile fails gives way to the bundled basemap', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'watchfloor-gui-tiles-'));
  // A style server that works, with a tile server behind it that answers 500 to every tile.
  let tilesAsked = 0;
  const server = createHttpServer((req, res) => {
    if (req.url === '/style.json') {
      const { port } = server.address();
      res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
      res.end(JSON.stringify({
        version: 8,
        sources: { base: { type: 'raster', tiles: [`http://127.0.0.1:${port}/tiles/{z}/{x}/{y}.png`], tileSize: 256 } },
        layers: [
          { id: 'bg', type: 'background', paint: { 'background-color': '#223' } },
          { id: 'base', type: 'raster', source: 'base' },
        ],
      }));
      return;
    }
    tilesAsked += 1;
    res.writeHead(500, { 'access-control-allow-origin': '*' });
    res.end('tile server down');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const style = `http://127.0.0.1:${server.address().port}/style.json`;
  writeFileSync(join(dir, 'config.toml'), `[ui]\nmap_style_url = "${style}"\n`);
  const driver = await startDriver({
    WATCHFLOOR_DB: join(dir, 'history.sqlite'),
    WATCHFLOOR_LISTEN: `127.0.0.1:${await freePort()}`,
    WATCHFLOOR_SIMULATE: '10',
    WATCHFLOOR_CONFIG: join(dir, 'config.toml'),
    XDG_DATA_HOME: join(dir, 'data'),
  });
  let session;
  try {
    session = await Session.create(driver.port, app, []);
    const s = session;
    const notice = await until('the fallback notice', () =>
      s.execute(`return document.querySelector('[data-testid=style-fallback]')?.textContent ?? false;`),
    );
    assert.match(notice, /none of its \d+ map tiles loaded/);
    assert.ok(tilesAsked > 0, 'the tiles were asked for');
    const drawn = await until('the fleet drawn on the bundled basemap', async () => {
      const r = await s.execute(`return {
        loaded: document.querySelector('[data-testid=map]')?.dataset.mapLoaded === 'true',
        drawn: window.__watchfloorRendered?.() ?? 0,
      };`);
      return r.loaded && r.drawn >= 10 ? r.drawn : false;
    }, 60_000);
    assert.equal(drawn, 10);
  } finally {
    await session?.close();
    await driver.stop();
    server.close();
  }
});
