// Imported by the root vitest.config.ts and by every package's: every temporary file of a vitest
// run (the tests' folders, the CLIs they spawn, the README examples) goes under one folder,
// removed when vitest exits. os.tmpdir() reads TMPDIR (TEMP / TMP on Windows), which the workers
// and their child processes inherit. Without it each `npm test` left ~20 folders (~130 MB) behind.
// FIBER_KEEP_TEST_TMPDIR=1 keeps the folder (its path is printed). The marker variable makes every
// later load in the same process tree (the package configs of a root run) reuse the folder; the
// process that made it removes it. A vitest killed by SIGKILL (or SIGHUP) leaves its folder: a
// later run removes it once it is a day old and the process that made it (its pid is in the
// folder's name) is gone; folders kept on purpose and other users' folders are left alone.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PREFIX = 'fiber-vl-tests-';
const OWNED = new RegExp(`^${PREFIX}(\\d+)-`); // PREFIX<pid>-XXXXXX
const KEPT = 'KEPT'; // a file in a folder kept with FIBER_KEEP_TEST_TMPDIR=1
const DAY_MS = 24 * 60 * 60 * 1000;

function removeQuietly(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch (e) {
    process.stderr.write(`[fiber-vl] could not remove the test temporary folder ${dir}: ${(e as Error).message}\n`);
  }
}

/** Whether the process is gone (a live one owned by another user answers EPERM). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Removes the folders left by killed runs of this user: a day old, their process gone, not kept. */
function sweep(base: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(base);
  } catch {
    return; // an unreadable temp dir: mkdtempSync below says what is wrong
  }
  const uid = process.getuid?.();
  for (const name of names) {
    const pid = Number(OWNED.exec(name)?.[1]);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const dir = join(base, name);
    try {
      const st = statSync(dir);
      if ((uid !== undefined && st.uid !== uid) || Date.now() - st.mtimeMs < DAY_MS) continue;
      if (existsSync(join(dir, KEPT)) || !gone(pid)) continue;
    } catch {
      continue; // removed meanwhile by another run
    }
    removeQuietly(dir);
  }
}

let dir = process.env.FIBER_VL_TEST_TMPDIR;
if (dir) {
  // set by a parent run (or by hand): use it, and make sure it exists
  mkdirSync(dir, { recursive: true });
} else {
  const base = tmpdir();
  sweep(base);
  const made = mkdtempSync(join(base, `${PREFIX}${process.pid}-`));
  dir = made;
  process.env.FIBER_VL_TEST_TMPDIR = made;
  if (process.env.FIBER_KEEP_TEST_TMPDIR === '1') {
    writeFileSync(join(made, KEPT), 'kept by FIBER_KEEP_TEST_TMPDIR=1; remove the folder when done\n');
    process.stderr.write(`[fiber-vl] test temporary files kept in ${made}\n`);
  } else process.on('exit', () => removeQuietly(made));
}
process.env.TMPDIR = process.env.TEMP = process.env.TMP = dir;
