import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { outFolderProblem } from './out-folder.js';

describe('outFolderProblem', () => {
  const root = mkdtempSync(join(tmpdir(), 'fiber-out-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('accepts a folder, or a path whose nearest existing parent is one, and creates nothing', () => {
    mkdirSync(join(root, 'there'));
    expect(outFolderProblem(join(root, 'there'))).toBeUndefined();
    expect(outFolderProblem(join(root, 'not', 'yet', 'made'))).toBeUndefined();
    expect(() => mkdirSync(join(root, 'not'))).not.toThrow(); // it was not created
  });

  it('names a file on the path, at the folder itself or above it', () => {
    writeFileSync(join(root, 'a-file'), 'x');
    expect(outFolderProblem(join(root, 'a-file'))).toBe(
      `--out ${join(root, 'a-file')}: ${join(root, 'a-file')} is a file, not a folder`,
    );
    expect(outFolderProblem(join(root, 'a-file', 'results', 'deeper'))).toBe(
      `--out ${join(root, 'a-file', 'results', 'deeper')}: ${join(root, 'a-file')} is a file, not a folder`,
    );
  });

  // root may write anywhere, whatever the mode says
  it.skipIf(process.getuid?.() === 0)('names a folder without write permission', () => {
    const locked = join(root, 'locked');
    mkdirSync(locked, { mode: 0o555 });
    try {
      expect(outFolderProblem(join(locked, 'results'))).toMatch(/cannot write there \(EACCES/);
    } finally {
      chmodSync(locked, 0o755);
    }
  });
});
