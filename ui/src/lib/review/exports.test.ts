import { describe, expect, it } from 'vitest';
import { EXPORT_OPTIONS, exportRequest } from './exports';

const ctx = { atMs: 1500.4, fromMs: 1000, toMs: 9000, device: null };

describe('review exports', () => {
  it('asks for the view at the instant drawn, rounded to a millisecond', () => {
    expect(exportRequest('devices', 'geojson', ctx)).toEqual({ what: 'devices', at_ms: 1500, format: 'geojson' });
    expect(exportRequest('incidents', 'csv', ctx)).toEqual({ what: 'incidents', at_ms: 1500 });
  });

  it('turns the inclusive timeline range into the backend half-open range', () => {
    expect(exportRequest('report_availability', 'html', ctx)).toEqual({
      what: 'report',
      kind: 'availability',
      format: 'html',
      from_ms: 1000,
      to_ms: 9001,
    });
  });

  it('needs a device for a track, and refuses formats a part does not come in', () => {
    expect(exportRequest('track', 'kml', ctx)).toEqual({ error: expect.stringContaining('pick a device') });
    expect(exportRequest('track', 'kml', { ...ctx, device: 'van-7' })).toMatchObject({ what: 'track', device: 'van-7', to_ms: 9001 });
    expect(exportRequest('incidents', 'kml', ctx)).toEqual({ error: expect.stringContaining('does not come as kml') });
  });

  it('offers every choice with a default format it accepts', () => {
    for (const o of EXPORT_OPTIONS) {
      const r = exportRequest(o.choice, o.formats[0], { ...ctx, device: 'd' });
      expect('error' in r, o.choice).toBe(false);
    }
  });
});
