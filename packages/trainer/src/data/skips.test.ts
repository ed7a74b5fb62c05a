import { afterEach, describe, expect, it, vi } from 'vitest';
import { DataSkipError, SkipStats, skipOf, warnSkips, type SkipEvent } from './skips.js';

const event = (reason: SkipEvent['reason'], scope: SkipEvent['scope'] = 'record'): SkipEvent => ({
  reason,
  scope,
  detail: 'd',
  source: 's',
  index: 1,
  position: 2,
  epoch: 0,
});

afterEach(() => vi.restoreAllMocks());

describe('skips', () => {
  it('counts records and boxes by reason and summarises the non-zero ones', () => {
    const stats = new SkipStats();
    stats.add(event('corrupt-image'));
    stats.add(event('corrupt-image'));
    stats.add(event('degenerate-box', 'box'));
    stats.delivered = 4;
    expect(stats.skipped).toBe(2);
    expect(stats.summary()).toEqual({ delivered: 4, records: { 'corrupt-image': 2 }, boxes: { 'degenerate-box': 1 } });
  });

  it('keeps the reason of a DataSkipError and calls anything else a pipeline-error', () => {
    expect(skipOf(new DataSkipError('empty-text', 'x: empty text'))).toEqual({
      reason: 'empty-text',
      detail: 'x: empty text',
    });
    expect(skipOf(new TypeError('boom'))).toEqual({ reason: 'pipeline-error', detail: 'boom' });
  });

  it('warns a few times per reason, then says the rest are only counted', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const report = warnSkips(2);
    for (let i = 0; i < 5; i++) report(event('missing-image'));
    report(event('empty-text'));
    expect(warn).toHaveBeenCalledTimes(4);
    expect(warn.mock.calls[0][0]).toBe('[fiber-vl data] epoch 0: skipped s#1: missing-image: d');
    expect(warn.mock.calls[2][0]).toMatch(/further 'missing-image' record skips are only counted/);
  });
});
