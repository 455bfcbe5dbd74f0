// GUI test of an online map style that does not load (the console configured for a tile
// server it cannot reach tonight): the map falls back to the bundled offline basemap, draws
// the fleet on it, and tells the operator why, instead of a blank map with nothing on it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startDriver, Session, until } from './webdriver.mjs';

const app = process.env.WATCHFLOOR_BIN ?? 'target/debug/watchfloor';
const artifacts = process.env.WATCHFLOOR_ARTIFACTS ?? 'test-artifacts';
mkdirSync(artifacts, { recursive: true });

test('an online style that does not load gives way to the offline basemap, and the operator is told', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'watchfloor-gui-basemap-'));
  // A port nobody listens on: the style's request is refused at once.
  const style = `http://127.0.0.1:${await freePort()}/style.json`;
  writeFileSync(join(dir, 'config.toml'), `[ui]\nmap_style_url = "${style}"\n`);
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
  } finally {
    await session?.close();
    await driver.stop();
  }
});
