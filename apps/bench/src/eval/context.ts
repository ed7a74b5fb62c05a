// What every task gets (options, logging, the tokenizer, partial results, image reading) and what
// it returns (the report the summary, the metrics JSON and the tests read).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import { loadTokenizer } from '@fiber-vl/roberta/node';
import type { ImageDecoder } from '@fiber-vl/swin';
import { type ImageStore, jsImageDecoder } from '@fiber-vl/trainer';
import { fail } from './errors.js';
import type { EvalOptions } from './options.js';
import { PartialStore } from './partial.js';
import type { ProgressSink } from './progress.js';
import type { RunContext } from './runner.js';
import type { SkipLog } from './data.js';

export interface TaskReport {
  /** Names the run's files: `<name>_metrics.json`, `<name>.partial.jsonl`. */
  name: string;
  split: string;
  dataset?: string;
  /** The model as built from the checkpoint. */
  model: string;
  /** What was run (protocol, sizes), in words. */
  protocol: string;
  /** Files and folders read. */
  data: Record<string, string>;
  counts: { samples: number; evaluated: number };
  metrics: Record<string, unknown>;
  /** Markdown table rows: metric, value as printed. */
  rows: [string, string][];
  /** Result files written, by role. */
  files: Record<string, string>;
  notes: string[];
}

export class EvalContext {
  private tokenizerCache?: ByteLevelBpeTokenizer;
  private readonly stores: PartialStore[] = [];

  constructor(
    readonly opts: EvalOptions,
    readonly log: (line: string) => void,
    readonly progress: ProgressSink,
    readonly skips: SkipLog,
    readonly decoder: ImageDecoder,
  ) {}

  /** The tokenizer of --tokenizer (required: tokenizers are not in checkpoints and cannot be downloaded here). */
  tokenizer(): ByteLevelBpeTokenizer {
    if (this.tokenizerCache) return this.tokenizerCache;
    const dir = this.opts.tokenizer;
    if (!dir) {
      fail(
        '--tokenizer DIR is required: the roberta-base tokenizer (vocab.json + merges.txt, or tokenizer.json) is ' +
          'not in the checkpoints; fiber-bench cannot download it',
      );
    }
    try {
      this.tokenizerCache = loadTokenizer(dir!);
    } catch (e) {
      fail(`--tokenizer: ${(e as Error).message.replace(/^tokenizer: /, '')}`);
    }
    return this.tokenizerCache!;
  }

  /** The partial results of run `name` (opened or resumed) and the loop context over an image store. */
  run(name: string, fingerprint: Record<string, unknown>, images: ImageStore): RunContext {
    const { store, note } = PartialStore.open(
      this.outFile(`${name}.partial.jsonl`),
      // the decoder too: sharp and the JS one differ on some files (JPEG rounding, GIF/WebP/TIFF)
      { ...fingerprint, images: resolve(images.name), decoder: this.decoder === jsImageDecoder ? 'js' : 'sharp' },
      this.opts.resume,
    );
    if (note) this.log(note);
    this.stores.push(store);
    return { partial: store, skips: this.skips, images, decoder: this.decoder, progress: this.progress };
  }

  outFile(file: string): string {
    mkdirSync(this.opts.out, { recursive: true });
    return join(this.opts.out, file);
  }

  /** Writes JSON into --out (compact for result files, which can be large). */
  writeJson(file: string, value: unknown, pretty = false): string {
    return this.writeText(file, `${JSON.stringify(value, null, pretty ? 2 : undefined)}\n`);
  }

  writeText(file: string, text: string): string {
    const path = this.outFile(file);
    try {
      writeFileSync(path, text);
    } catch (e) {
      fail(`${path}: cannot write (${(e as Error).message})`);
    }
    return path;
  }

  close(): void {
    for (const s of this.stores) s.close();
  }
}
