import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { undecodableArgument } from './arg-bytes.js';

describe('undecodableArgument', () => {
  const root = mkdtempSync(join(tmpdir(), 'fiber-args-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('names an argument with U+FFFD that is not on disk, also after --opt=', () => {
    const missing = join(root, 'caf\uFFFD');
    expect(undecodableArgument(['eval', '--data', missing])).toMatch(/^".*caf\uFFFD" holds U\+FFFD, which Node puts/);
    expect(undecodableArgument([`--out=${missing}`])).toContain(`"--out=${missing}" holds U+FFFD`);
    expect(undecodableArgument(['eval', '--data', root, '--split', 'val'])).toBeUndefined();
  });

  it('passes a name that holds U+FFFD itself and exists', () => {
    const real = join(root, 'real\uFFFDname');
    mkdirSync(real);
    expect(undecodableArgument(['--data', real, `--images=${real}`])).toBeUndefined();
  });

  // the bytes as a shell passes them: Node's spawn can only send UTF-8
  const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli.js');
  it.skipIf(!existsSync(cli) || process.platform === 'win32')('fiber-bench exits 2 naming it', () => {
    const r = spawnSync('bash', ['-c', `node "$0" eval --task vqa --checkpoint x --data $'${root}/caf\\xe9'`, cli], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('caf\uFFFD" holds U+FFFD');
    expect(r.stderr).not.toContain('does not exist');
  });
});
