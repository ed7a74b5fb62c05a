import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SkipLog, fileStamp, tokenizerStamp } from './data.js';

const dir = mkdtempSync(join(tmpdir(), 'fiber-stamp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('partial results stamps', () => {
  it('stamp a tokenizer folder by its files, and a tokenizer.json given by path', () => {
    const folder = join(dir, 'tok');
    mkdirSync(folder);
    writeFileSync(join(folder, 'vocab.json'), '{}');
    writeFileSync(join(folder, 'merges.txt'), '#version: 0.2\n');
    expect(tokenizerStamp(folder).map((s) => s.path)).toEqual([join(folder, 'vocab.json'), join(folder, 'merges.txt')]);
    const file = join(dir, 'tokenizer.json');
    writeFileSync(file, '{"model": {}}');
    expect(tokenizerStamp(file)).toEqual([fileStamp(file)]);
  });

  it('digest the bytes, sampled past 4 MiB (first and last MiB and chunks between)', () => {
    const small = join(dir, 'small.bin');
    writeFileSync(small, Buffer.from([1, 2, 3]));
    const before = fileStamp(small).sha256;
    writeFileSync(small, Buffer.from([1, 2, 4]));
    expect(fileStamp(small).sha256).not.toBe(before);

    const big = join(dir, 'big.bin');
    const bytes = Buffer.alloc(6 << 20, 7);
    writeFileSync(big, bytes);
    const stamp = fileStamp(big);
    expect(stamp.bytes).toBe(6 << 20);
    bytes[bytes.length - 10] = 8; // in the last MiB
    writeFileSync(big, bytes);
    expect(fileStamp(big).sha256).not.toBe(stamp.sha256);
  });
});

describe('SkipLog', () => {
  it('logs a few skips per reason, and replays held ones into another log with their ids', () => {
    const held = new SkipLog(() => {});
    held.add('a.json#0', { reason: 'empty-text', detail: 'no caption' }, '7');
    held.add('a.json#1', { reason: 'malformed-record', detail: 'no id' });
    held.add('a.json#2', { reason: 'empty-text', detail: 'no caption' }, '9');
    const lines: string[] = [];
    const log = new SkipLog((l) => lines.push(l), 1);
    expect(held.replayInto(log, (s) => s.id !== '9')).toBe(2);
    expect(log.items).toEqual([
      { key: 'a.json#0', reason: 'empty-text', detail: 'no caption', id: '7' },
      { key: 'a.json#1', reason: 'malformed-record', detail: 'no id' },
    ]);
    expect(lines).toEqual([
      'skipped a.json#0 (id 7): empty-text: no caption',
      'skipped a.json#1: malformed-record: no id',
    ]);
    expect(held.replayInto(log)).toBe(3);
    expect(lines.slice(2)).toEqual([
      "(further 'empty-text' skips are only counted)",
      "(further 'malformed-record' skips are only counted)",
    ]);
    expect(log.summary()).toBe('3 empty-text, 2 malformed-record');
  });
});
