// Imported by the root vitest.config.ts and by every package's: every temporary file of a vitest
// run (the tests' folders, the CLIs they spawn, the README examples) goes under one folder,
// removed when vitest exits. os.tmpdir() reads TMPDIR (TEMP / TMP on Windows), which the workers
// and their child processes inherit. Without it each `npm test` left ~20 folders (~130 MB) behind.
// FIBER_KEEP_TEST_TMPDIR=1 keeps the folder (its path is printed). The marker variable makes every
// later load in the same process tree (the package configs of a root run) reuse the folder; the
// process that made it removes it. A vitest killed by SIGKILL (or SIGHUP) leaves its folder: a
// later run removes such folders (kept ones too) once they are a day old.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PREFIX = 'fiber-vl-tests-';
const DAY_MS = 24 * 60 * 60 * 1000;

function removeQuietly(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch (e) {
    process.stderr.write(`[fiber-vl] could not remove the test temporary folder ${dir}: ${(e as Error).message}\n`);
  }
}

let dir = process.env.FIBER_VL_TEST_TMPDIR;
if (dir) {
  // set by a parent run (or by hand): use it, and make sure it exists
  mkdirSync(dir, { recursive: true });
} else {
  const base = tmpdir();
  let names: string[] = [];
  try {
    names = readdirSync(base);
  } catch {
    // an unreadable temp dir: nothing to sweep; mkdtempSync below says what is wrong
  }
  for (const name of names) {
    if (!name.startsWith(PREFIX)) continue;
    try {
      if (Date.now() - statSync(join(base, name)).mtimeMs > DAY_MS) removeQuietly(join(base, name));
    } catch {
      // removed meanwhile by another run
    }
  }
  const made = mkdtempSync(join(base, PREFIX));
  dir = made;
  process.env.FIBER_VL_TEST_TMPDIR = made;
  if (process.env.FIBER_KEEP_TEST_TMPDIR === '1')
    process.stderr.write(`[fiber-vl] test temporary files kept in ${made}\n`);
  else process.on('exit', () => removeQuietly(made));
}
process.env.TMPDIR = process.env.TEMP = process.env.TMP = dir;
