// Makes world-atlas geometry safe for a flat (Web Mercator) map.
//
// world-atlas ships "stitched" geometry for spherical renderers: rings that cross the
// antimeridian jump from +179 to -179 (Russia, Fiji), and Antarctica is one ring around the pole.
// Drawn on a flat map, those jumps become streaks across the whole world. We unwrap each ring's
// longitudes so consecutive points never differ by more than 180 degrees (MapLibre draws
// longitudes beyond +-180 on the neighbouring world copy), and close rings that go around a pole
// along that pole's edge of the map.

/** Web Mercator's latitude limit; polar rings are closed along it. */
export const MERCATOR_LIMIT = 85.0511;

/** Returns the ring with continuous longitudes; a ring around a pole is closed along it. */
export function unwrapRing(ring) {
  const out = unwrapLine(ring);
  if (out.length === 0) return out;
  const shift = out[out.length - 1][0] - out[0][0];
  if (Math.abs(shift) > 180) {
    // The ring went once around the globe: it encloses a pole. Close it along that pole.
    const meanLat = out.reduce((sum, p) => sum + p[1], 0) / out.length;
    const pole = meanLat < 0 ? -MERCATOR_LIMIT : MERCATOR_LIMIT;
    const last = out[out.length - 1][0];
    out.push([last, pole], [out[0][0], pole], out[0]);
  }
  return out;
}

/** Unwraps a line: each longitude moved by whole turns to within 180 degrees of the previous. */
export function unwrapLine(line) {
  if (line.length === 0) return line;
  const out = [[line[0][0], clampLat(line[0][1])]];
  for (let i = 1; i < line.length; i++) {
    const prev = out[out.length - 1][0];
    let lon = line[i][0];
    while (lon - prev > 180) lon -= 360;
    while (lon - prev < -180) lon += 360;
    out.push([lon, clampLat(line[i][1])]);
  }
  return out;
}

function clampLat(lat) {
  return Math.max(-MERCATOR_LIMIT, Math.min(MERCATOR_LIMIT, lat));
}

/** Applies the unwrapping to any GeoJSON geometry. */
export function unwrapGeometry(g) {
  switch (g.type) {
    case 'Polygon':
      return { ...g, coordinates: g.coordinates.map(unwrapRing) };
    case 'MultiPolygon':
      return { ...g, coordinates: g.coordinates.map((p) => p.map(unwrapRing)) };
    case 'LineString':
      return { ...g, coordinates: unwrapLine(g.coordinates) };
    case 'MultiLineString':
      return { ...g, coordinates: g.coordinates.map(unwrapLine) };
    default:
      return g;
  }
}
