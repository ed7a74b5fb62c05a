// fiber-bench inspect, through the built CLI: good checkpoints list and verify (exit 0), and every
// hostile file of fixtures/torch/hostile.json ends in one line naming it and the problem (exit 2).
// The FIBER matcher it reports with has its tests in @fiber-vl/fusion (match.test.ts).
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializeSafetensors } from '@fiber-vl/tensor-core';

const root = join(__dirname, '../../..');
const cli = join(root, 'apps/bench/dist/cli.js');
const torchDir = join(root, 'fixtures/torch');
const hostile: { file: string; message: string; inspect_message?: string }[] = JSON.parse(
  readFileSync(join(torchDir, 'hostile.json'), 'utf8'),
);

function inspect(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, 'inspect', ...args], { encoding: 'utf8', timeout: 120_000 });
  return {
    status: r.status,
    signal: r.signal,
    stdout: r.stdout,
    stderr: r.stderr,
    lines: r.stderr.split('\n').filter(Boolean),
  };
}

describe('fiber-bench inspect on good checkpoints', () => {
  it.each([
    'state_dict.pth',
    'lightning.ckpt',
    'expanded.pth',
    'deflate.pth',
    'tiny.safetensors',
    'int64_overflow.pth',
    'sharded/model.safetensors.index.json',
  ])('%s: lists and verifies (exit 0)', (file) => {
    const r = inspect(join(torchDir, file), '--verify');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(join(torchDir, file));
    expect(r.stdout).toMatch(/verify: read every value of \d+ tensors: all finite/);
  });

  it('reads the format from the first bytes: a torch.save zip named .bin, safetensors named .bin', () => {
    const dir = mkdtempSync(join(tmpdir(), 'inspect-bin-'));
    for (const [src, format] of [
      ['state_dict.pth', 'PyTorch (torch.save zip)'],
      ['tiny.safetensors', 'safetensors'],
    ]) {
      const file = join(dir, 'pytorch_model.bin');
      writeFileSync(file, readFileSync(join(torchDir, src)));
      const r = inspect(file, '--json');
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).format).toBe(format);
    }
    // safetensors whose header length's first byte reads as a pickle's 0x80 or a zip's "P"
    for (const first of [0x80, 0x50]) {
      const tensors = { w: { dtype: 'F32' as const, shape: [2], data: new Float32Array([1, 2]) } };
      let bytes = serializeSafetensors(tensors);
      for (let pad = 1; bytes[0] !== first; pad++) bytes = serializeSafetensors(tensors, { pad: 'x'.repeat(pad) });
      const file = join(dir, 'weights.bin');
      writeFileSync(file, bytes);
      const r = inspect(file, '--json');
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).format).toBe('safetensors');
    }
    rmSync(dir, { recursive: true });
  });

  it('--json prints only JSON: tensors, the FIBER match and the verify counts', () => {
    const r = inspect(join(root, 'fixtures/fiber/set-b/model.safetensors'), '--json', '--verify');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.count).toBe(747);
    expect(report.tensors[0]).toEqual({ name: 'temp', dtype: 'F32', shape: [], bytes: 4, nonFinite: 0 });
    expect(report.verify).toEqual({ tensors: 747, nonFinite: 0, tensorsWithNonFinite: 0 });
    // the tiny fixture has every FIBER key of a pretrain checkpoint plus the other heads, at another size
    expect(report.fiber).toMatchObject({
      verdict: 'closest',
      kind: 'coarse',
      task: 'pretrain',
      missing: [],
      heads: ['itc', 'itm', 'mlm', 'vqa', 'nlvr2', 'caption'],
      vqaAnswers: 10,
    });
    expect(report.fiber.extra.length).toBe(32); // caption adapters, VQA and NLVR2 heads
  });

  it('groups 747 tensors by module in text, and counts non-finite values (exit 1)', () => {
    const text = inspect(join(root, 'fixtures/fiber/set-b/model.safetensors')).stdout;
    expect(text).toMatch(/vit_model\.layers +410 tensors/);
    expect(text).toContain('(747 tensors: --all lists each one, --json prints them all)');
    const dir = mkdtempSync(join(tmpdir(), 'inspect-nan-'));
    const file = join(dir, 'nan.safetensors');
    writeFileSync(
      file,
      serializeSafetensors({
        ok: { dtype: 'F32', shape: [2], data: [1, 2] },
        bad: { dtype: 'F16', shape: [3], data: [NaN, 1, -Infinity] },
      }),
    );
    const r = inspect(file, '--verify');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('verify: 2 non-finite values in 1 of 2 tensors:');
    expect(r.stdout).toContain('bad: 2 of 3');
    rmSync(dir, { recursive: true });
  });
});

describe('fiber-bench inspect on hostile files', () => {
  it('every hostile file: exit 2, one line each naming the file and the problem, no stack trace', () => {
    const files = hostile.map((h) => join(torchDir, h.file));
    const r = inspect(...files, '--verify');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.lines.length).toBe(hostile.length);
    hostile.forEach((h, i) => {
      expect(r.lines[i].startsWith(`fiber-bench inspect: ${files[i]}: `), r.lines[i]).toBe(true);
      expect(r.lines[i]).toContain(h.inspect_message ?? h.message);
      expect(r.lines[i]).not.toContain('internal error');
    });
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it.each([
    ['a nonexistent path', join(torchDir, 'does-not-exist.pth'), 'no such file'],
    ['a directory', torchDir, 'is a directory'],
    [
      'a 7-byte pickle with a negative BINSTRING length',
      join(torchDir, 'negative_binstring.pth'),
      'BINSTRING has a negative length -5',
    ],
    [
      'a small .pth claiming a [32768, 32768] view',
      join(torchDir, 'huge_view.pth'),
      'reaches element 1073741823 of storage 0, which holds 12 elements',
    ],
  ])('%s: exactly one line on stderr and nothing on stdout', (_, file, message) => {
    for (const json of [[], ['--json']]) {
      const r = inspect(file, '--verify', ...json);
      expect(r.status).toBe(2);
      expect(r.lines).toEqual([expect.stringContaining(`fiber-bench inspect: ${file}: `)]);
      expect(r.lines[0]).toContain(message);
      if (json.length)
        expect(JSON.parse(r.stdout)).toEqual({ file, error: r.lines[0].slice('fiber-bench inspect: '.length) });
      else expect(r.stdout).toBe('');
    }
  });

  describe('a valid safetensors file with a 2 GiB tensor (sparse)', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'inspect-big-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    it('is listed and verified in chunks (no single read of 2 GiB), exit 0', () => {
      const header = new TextEncoder().encode(
        JSON.stringify({ big: { dtype: 'F32', shape: [2 ** 29 + 2], data_offsets: [0, 2 ** 31 + 8] } }).padEnd(64),
      );
      const file = join(dir, 'big.safetensors');
      const head = new Uint8Array(8 + header.length);
      new DataView(head.buffer).setBigUint64(0, BigInt(header.length), true);
      head.set(header, 8);
      writeFileSync(file, head);
      const fd = openSync(file, 'r+');
      ftruncateSync(fd, head.length + 2 ** 31 + 8);
      closeSync(fd);
      const r = inspect(file, '--verify', '--json');
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout).tensors).toEqual([
        { name: 'big', dtype: 'F32', shape: [536870914], bytes: 2147483656, nonFinite: 0 },
      ]);
    }, 300_000);
  });
});
