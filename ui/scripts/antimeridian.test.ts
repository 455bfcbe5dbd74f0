import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { unwrapRing, MERCATOR_LIMIT } from './antimeridian.mjs';

type Pos = [number, number];

/** The widest longitude step between consecutive points, except along the map's polar edge
 * (where a ring around a pole is closed on purpose). */
function maxJump(line: Pos[]): number {
  let max = 0;
  for (let i = 1; i < line.length; i++) {
    const alongPole = Math.abs(line[i][1]) === MERCATOR_LIMIT && line[i][1] === line[i - 1][1];
    if (!alongPole) max = Math.max(max, Math.abs(line[i][0] - line[i - 1][0]));
  }
  return max;
}

describe('antimeridian unwrapping', () => {
  it('keeps a ring crossing the antimeridian continuous', () => {
    const ring: Pos[] = [[179, 60], [-179, 60], [-179, 62], [179, 62], [179, 60]];
    const out = unwrapRing(ring) as Pos[];
    expect(maxJump(out)).toBeLessThanOrEqual(2);
    expect(out[out.length - 1]).toEqual(out[0]);
  });

  it('closes a ring around the south pole along the map edge', () => {
    const ring: Pos[] = [[-180, -70], [-90, -72], [0, -70], [90, -71], [180, -70]];
    const out = unwrapRing(ring) as Pos[];
    expect(out[out.length - 1]).toEqual(out[0]);
    expect(out.some((p) => p[1] === -MERCATOR_LIMIT)).toBe(true);
  });

  it('leaves no streak in the bundled basemap', () => {
    const land = JSON.parse(readFileSync(fileURLToPath(new URL('../public/basemap/land.json', import.meta.url)), 'utf8'));
    let rings = 0;
    for (const f of land.features) {
      const g = f.geometry;
      const polys: Pos[][][] = g.type === 'Polygon' ? [g.coordinates] : g.coordinates;
      for (const p of polys)
        for (const r of p) {
          rings++;
          expect(maxJump(r)).toBeLessThan(180);
          expect(r[r.length - 1]).toEqual(r[0]);
        }
    }
    expect(rings).toBeGreaterThan(1000);
  });
});
