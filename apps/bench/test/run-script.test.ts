// scripts/run.mjs (npm run bench / test / fiber-bench ...) runs each command through
// scripts/child.mjs: a signal sent to it reaches the command, and it exits with the command's status.
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const childModule = pathToFileURL(resolve(__dirname, '../../../scripts/child.mjs')).href;

/** A node process that runs `node -e CODE` through runChild and exits with what runChild resolves. */
function wrapper(code: string) {
  const main = `import { runChild } from ${JSON.stringify(childModule)};
process.exit(await runChild(process.execPath, ['-e', ${JSON.stringify(code)}], { stdio: ['ignore', 'inherit', 'inherit'] }));`;
  return spawn(process.execPath, ['--input-type=module', '-e', main], { stdio: ['ignore', 'pipe', 'inherit'] });
}

const alive = (pid: number) => {
  const state = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
  return state !== '' && !state.startsWith('Z');
};

describe('scripts/child.mjs runChild', () => {
  it('resolves with the command exit status', async () => {
    const w = wrapper('process.exit(3)');
    expect(await new Promise((done) => w.on('exit', done))).toBe(3);
  });

  it.skipIf(process.platform === 'win32').each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
    ['SIGHUP', 129],
  ] as const)('passes %s on to the command and exits %i when it dies of it', async (signal, code) => {
    const w = wrapper('console.log(process.pid); setInterval(() => {}, 1000);');
    try {
      const pid = await new Promise<number>((done, fail) => {
        let out = '';
        w.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) done(Number(out.trim()));
        });
        w.on('exit', () => fail(new Error('the wrapper exited before its command started')));
      });
      expect(alive(pid)).toBe(true);
      const exited = new Promise<number | null>((done) => w.on('exit', (c) => done(c)));
      w.kill(signal);
      expect(await exited).toBe(code);
      for (let k = 0; k < 50 && alive(pid); k++) await new Promise((r) => setTimeout(r, 100));
      expect(alive(pid)).toBe(false);
    } finally {
      w.kill('SIGKILL');
    }
  });

  it.skipIf(process.platform === 'win32')(
    'remembers the stop signal when the command catches it and exits 0 (run.mjs then starts no further step)',
    async () => {
      const code = "process.on('SIGTERM', () => process.exit(0)); console.log('ready'); setInterval(() => {}, 1000);";
      const main = `import { runChild, signalStatus, stopSignal } from ${JSON.stringify(childModule)};
console.log('before', stopSignal());
const status = await runChild(process.execPath, ['-e', ${JSON.stringify(code)}], { stdio: ['ignore', 'inherit', 'inherit'] });
console.log('after', status, stopSignal(), signalStatus(stopSignal()));`;
      const w = spawn(process.execPath, ['--input-type=module', '-e', main], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        let out = '';
        const exited = new Promise<number | null>((done) => w.on('exit', (c) => done(c)));
        await new Promise<void>((done, fail) => {
          w.stdout.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('ready')) done();
          });
          w.on('exit', () => fail(new Error(`the wrapper exited before its command started: ${out}`)));
        });
        w.kill('SIGTERM');
        expect(await exited).toBe(0);
        expect(out.trim().split('\n')).toEqual(['before undefined', 'ready', 'after 0 SIGTERM 143']);
      } finally {
        w.kill('SIGKILL');
      }
    },
  );

  it('rejects when the command cannot be started', async () => {
    const main = `import { runChild } from ${JSON.stringify(childModule)};
await runChild('/nonexistent/fiber-vl-command', [], {}).then(() => process.exit(0), (e) => { console.log(e.code); process.exit(5); });`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', main], { encoding: 'utf8' });
    expect(r.status).toBe(5);
    expect(r.stdout.trim()).toBe('ENOENT');
  });
});
