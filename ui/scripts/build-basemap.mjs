// Builds the offline basemap from the world-atlas npm package (Natural Earth 1:50m, public
// domain) into public/basemap/: land polygons and country borders as GeoJSON, antimeridian-safe.
// Runs before every dev, build, check and test, and skips work when the output is current.
import { readFileSync, writeFileSync, mkdirSync, statSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { feature, mesh } from 'topojson-client';
import { unwrapGeometry } from './antimeridian.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const source = require.resolve('world-atlas/countries-50m.json');
const outDir = join(here, '..', 'public', 'basemap');
const outputs = { land: join(outDir, 'land.json'), borders: join(outDir, 'borders.json') };

const newest = Math.max(statSync(source).mtimeMs, statSync(fileURLToPath(import.meta.url)).mtimeMs, statSync(join(here, 'antimeridian.mjs')).mtimeMs);
if (Object.values(outputs).every((p) => existsSync(p) && statSync(p).mtimeMs >= newest)) {
  process.exit(0);
}

const topo = JSON.parse(readFileSync(source, 'utf8'));
const land = feature(topo, topo.objects.land);
const landFc = {
  type: 'FeatureCollection',
  features: (land.type === 'FeatureCollection' ? land.features : [land]).map((f) => ({
    type: 'Feature',
    properties: {},
    geometry: unwrapGeometry(f.geometry),
  })),
};
// Borders between countries only (a !== b): coastlines come from the land fill.
const borders = mesh(topo, topo.objects.countries, (a, b) => a !== b);
const bordersFc = {
  type: 'FeatureCollection',
  features: [{ type: 'Feature', properties: {}, geometry: unwrapGeometry(borders) }],
};

mkdirSync(outDir, { recursive: true });
// Six decimals is ~0.1 m: more than Natural Earth's own precision, and half the file size.
const round = (_k, v) => (typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v);
writeFileSync(outputs.land, JSON.stringify(landFc, round));
writeFileSync(outputs.borders, JSON.stringify(bordersFc, round));
console.log(`basemap: wrote ${Object.values(outputs).join(', ')}`);
