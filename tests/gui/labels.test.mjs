// GUI test of the map's names in a crowded view: 700 simulated devices seen at street
// zoom are too many to read, so the map hides their names and the legend says why; zoomed in
// until fewer than the limit are in view, the names come back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, openAtView, startDriver, Session, until } from './webdriver.mjs';

const app = process.env.WATCHFLOOR_BIN ?? 'target/debug/watchfloor';
const artifacts = process.env.WATCHFLOOR_ARTIFACTS ?? 'test-artifacts';
mkdirSync(artifacts, { recursive: true });

test('the map hides device names while too many are in view, and shows them zoomed in', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'watchfloor-gui-labels-'));
  const driver = await startDriver({
    WATCHFLOOR_DB: join(dir, 'history.sqlite'),
    WATCHFLOOR_LISTEN: `127.0.0.1:${await freePort()}`,
    WATCHFLOOR_SIMULATE: '700',
    XDG_DATA_HOME: join(dir, 'data'),
  });
  let session;
  try {
    session = await Session.create(driver.port, app, []);
    const s = session;
    // Start at street zoom over the simulated fleet (about 13 x 13 km around Rotterdam): the
    // console opens at the view it remembers.
    const restored = await openAtView(s, 4.48, 51.92, 12.1);
    assert.equal(restored.zoom, 12.1);
    const map = () =>
      s.execute(`const m = document.querySelector('[data-testid=map]');
        return { held: Number(m?.dataset.sourceDevices ?? 0), hidden: m?.dataset.labelsHidden, labels: window.__watchfloorLabels?.() ?? 0,
          legend: document.querySelector('[data-testid=labels-hidden]')?.textContent ?? '' };`);
    let seen = null;
    // Hidden, and no name drawn: the frame after the switch (the count read in the same
    // instant as the switch may still be the last frame's, 64 names, on a loaded machine).
    const crowded = await until('names hidden over the crowded view, none drawn', async () => {
      const r = (seen = await map());
      return r.held === 700 && r.hidden === 'true' && r.labels === 0 ? r : false;
    }, 60_000).catch((e) => {
      throw new Error(`${e.message}; the map showed ${JSON.stringify(seen)}`);
    });
    assert.match(crowded.legend, /names hidden: \d+ devices in view/);
    await until('the crowded view drawn', async () => (await s.execute(`return window.__watchfloorRendered();`)) > 400);
    // Drawn (more than 400 devices on screen), still without a name.
    assert.equal((await map()).labels, 0, 'no names drawn in the drawn crowded view');
    writeFileSync(join(artifacts, 'gui-labels-hidden.png'), await s.screenshot());

    // Zoom in with the map's + button until the view holds few enough devices.
    let r = crowded;
    for (let i = 0; i < 4 && r.hidden !== 'false'; i++) {
      await s.execute(`document.querySelector('.maplibregl-ctrl-zoom-in').click(); return true;`);
      await new Promise((resolve) => setTimeout(resolve, 800)); // the zoom animation
      r = await map();
    }
    const labelled = await until('names shown zoomed in', async () => {
      const now = await map();
      return now.hidden === 'false' && now.labels > 0 ? now : false;
    });
    assert.equal(labelled.legend, '', 'the legend no longer says names are hidden');
    writeFileSync(join(artifacts, 'gui-labels-shown.png'), await s.screenshot());
  } finally {
    await session?.close();
    await driver.stop();
  }
});
