// Imported by the root vitest.config.ts and by every package's: every temporary file of a vitest
// run (the tests' folders, the CLIs they spawn, the README examples) goes under one folder,
// removed when vitest exits. os.tmpdir() reads TMPDIR (TEMP / TMP on Windows), which the workers
// and their child processes inherit. Without it each `npm test` left ~20 folders (~130 MB) behind.
// FIBER_KEEP_TEST_TMPDIR=1 keeps the folder (its path is printed). The marker variable makes every
// later load in the same process tree (the package configs of a root run) a no-op.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

if (!process.env.FIBER_VL_TEST_TMPDIR) {
  const dir = mkdtempSync(join(tmpdir(), 'fiber-vl-tests-'));
  process.env.FIBER_VL_TEST_TMPDIR = dir;
  process.env.TMPDIR = process.env.TEMP = process.env.TMP = dir;
  if (process.env.FIBER_KEEP_TEST_TMPDIR === '1') console.log(`[fiber-vl] test temporary files kept in ${dir}`);
  else process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
}
