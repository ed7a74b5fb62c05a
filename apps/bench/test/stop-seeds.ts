// Stopping a command that runs its training seeds in child processes (`run`, `tune`): the signal
// given to the parent must stop every seed process and set the exit code.
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const cli = resolve(__dirname, '../dist/cli.js');

/** Whether `pid` runs (a zombie does not: its parent is gone, and not every container's init reaps it at once). */
const alive = (pid: number) => {
  const state = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
  return state !== '' && !state.startsWith('Z');
};

/**
 * Starts `fiber-bench ...args`, waits until every seed of `seeds` has logged a `[seed N]` line,
 * sends `signal`, and reports the exit code, stderr, the seed processes seen, and those still
 * alive 5 s later.
 */
export async function stopWhileSeedsRun(
  args: string[],
  seeds: number[],
  signal: NodeJS.Signals,
): Promise<{ code: number | null; stderr: string; children: number[]; alive: number[] }> {
  const parent = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  try {
    await new Promise<void>((done, fail) => {
      parent.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (seeds.every((s) => stderr.includes(`[seed ${s}]`))) done();
      });
      parent.on('exit', () => fail(new Error(`it ended before every seed started:\n${stderr}`)));
    });
    const children = spawnSync('ps', ['-o', 'pid=', '--ppid', String(parent.pid)], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((l) => l.trim())
      .map(Number);
    const exited = new Promise<number | null>((done) => parent.on('exit', (c) => done(c)));
    parent.kill(signal);
    const code = await exited;
    for (let k = 0; k < 50 && children.some(alive); k++) await new Promise((r) => setTimeout(r, 100));
    return { code, stderr, children, alive: children.filter(alive) };
  } finally {
    parent.kill('SIGKILL');
  }
}
