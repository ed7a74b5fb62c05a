// `fiber-bench train`: one FIBER task trained with @fiber-vl/trainer's parts (objective, AdamW
// groups, schedule, Trainer + fit, run folder with atomic checkpoints and bit-exact resume) on the
// built-in world or on a data folder in the public layout.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { ByteLevelBpeTokenizer, mergesToText, trainByteLevelBpe } from '@fiber-vl/roberta';
import { initBackend } from '@fiber-vl/tensor-core';
import { type DataSource, recordText } from '@fiber-vl/trainer';
import { RunFolder } from '@fiber-vl/trainer/node';
import { nonFiniteMessage, nonFiniteTensors } from '../finite.js';
import { oneLine } from '../one-line.js';
import { outFolderProblem } from '../out-folder.js';
import { type TrainArgs, UsageError } from './args.js';
import { builtinRecords, builtinSource, builtinWorld } from './builtin.js';
import { readRegularText } from './files.js';
import { type FolderData, type FolderSource, MAX_NEG_PER_BATCH, folderSource, openFolder } from './folder.js';
import { type TaskBatch, type TaskSetup, coarseSetup, fineSetup, isFineTask, loadInit } from './tasks.js';

/** Records read to train a tokenizer for a folder that brings none. */
const TOKENIZER_RECORDS = 20_000;

function readTokenizer(dir: string, what: string): ByteLevelBpeTokenizer | undefined {
  const json = join(dir, 'tokenizer.json');
  const vocab = join(dir, 'vocab.json');
  const merges = join(dir, 'merges.txt');
  try {
    if (existsSync(json)) {
      const text = readRegularText(json, what);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new Error(`tokenizer.json: not JSON (${(e as Error).message})`);
      }
      return ByteLevelBpeTokenizer.fromTokenizerJson(parsed);
    }
    if (existsSync(vocab) && existsSync(merges))
      return ByteLevelBpeTokenizer.fromVocabAndMerges(readRegularText(vocab, what), readRegularText(merges, what));
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${what}: the tokenizer in ${dir} cannot be read (${oneLine((e as Error).message)})`);
  }
  return undefined;
}

function tokenizerOption(dir: string): ByteLevelBpeTokenizer {
  const t = readTokenizer(resolve(dir), '--tokenizer');
  if (!t) throw new UsageError(`--tokenizer: ${dir} has neither tokenizer.json nor vocab.json + merges.txt`);
  return t;
}

/** --tokenizer, DATA/tokenizer/, OUT/tokenizer/ (a resumed run), or a BPE trained on the data's text (saved in OUT/tokenizer/). */
async function folderTokenizer(args: TrainArgs, data: FolderData, vocabSize: number): Promise<ByteLevelBpeTokenizer> {
  if (args.tokenizer) return tokenizerOption(args.tokenizer);
  // OUT/tokenizer/ is the resumed run's own; a new run trains its BPE again (a run that died before
  // its first checkpoint may have left one made from other data)
  const found =
    readTokenizer(join(args.data, 'tokenizer'), '--data') ??
    (args.resume ? readTokenizer(join(args.out, 'tokenizer'), '--out') : undefined);
  if (found) return found;
  const texts: string[] = [];
  const n = Math.min(data.source.length, TOKENIZER_RECORDS);
  for (let i = 0; i < n; i++) {
    const e = await data.source.get(i);
    if (e.ok) texts.push(recordText(e.record));
  }
  if (data.classNames) texts.push(data.classNames.join('. '));
  const bpe = trainByteLevelBpe(texts, { vocabSize, minFrequency: 2 });
  const dir = join(args.out, 'tokenizer');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(bpe.vocab));
  writeFileSync(join(dir, 'merges.txt'), mergesToText(bpe.merges));
  return ByteLevelBpeTokenizer.fromVocabAndMerges(bpe.vocab, mergesToText(bpe.merges));
}

/** The run folder; what keeps it from being used (a run there, a resume with other settings) is bad usage. */
function runFolder(...args: ConstructorParameters<typeof RunFolder>): RunFolder {
  try {
    return new RunFolder(...args);
  } catch (e) {
    throw new UsageError(`--out: ${oneLine((e as Error).message)}`);
  }
}

/** Trains one task as `args` say, writing the run folder; a UsageError for what the user must fix. */
export async function train(args: TrainArgs, log: (line: string) => void): Promise<void> {
  if (args.init !== undefined && !existsSync(args.init)) throw new UsageError(`--init: no file ${args.init}`);
  const outProblem = outFolderProblem(args.out);
  if (outProblem) throw new UsageError(outProblem);
  const checkpoints = join(args.out, 'checkpoints');
  if (!args.resume && existsSync(checkpoints) && readdirSync(checkpoints).some((n) => n.startsWith('step-')))
    throw new UsageError(`--out: ${args.out} already holds a run; pass --resume or choose another folder`);
  const fine = isFineTask(args.task);
  const builtin = args.data === 'builtin';
  const micro = args.model === 'micro';
  await initBackend({ backend: args.backend });

  let world: ReturnType<typeof builtinWorld>['world'] | undefined;
  let tokenizer: ByteLevelBpeTokenizer;
  let folder: FolderData | undefined;
  if (builtin) {
    // the world renders its images; its captions take --tokenizer when given (an official
    // checkpoint's roberta-base BPE), else the world's own BPE
    if (args.images) throw new UsageError('--images: --data builtin renders its images; --images is for a data folder');
    ({ world, tokenizer } = builtinWorld());
    if (args.tokenizer) tokenizer = tokenizerOption(args.tokenizer);
  } else {
    // a file of the folder that cannot be read, or is not in its layout, is bad input as a bad option is
    folder = await openFolder(args.task, resolve(args.data), resolve(args.images ?? args.data)).catch((e: Error) => {
      throw e instanceof UsageError ? e : new UsageError(`--data: ${oneLine(e.message)}`);
    });
    // what no record can fix is said now, not after an epoch of skips
    const files = folder.files.join(', ');
    if (folder.source.length === 0)
      throw new UsageError(`--data: ${files} hold no training records for --task ${args.task}`);
    if (folder.classNames?.length === 0)
      throw new UsageError(`--data: ${files} declare no categories (the detection prompt)`);
    if (args.batch > folder.source.length)
      throw new UsageError(`--batch ${args.batch}: ${files} hold ${folder.source.length} records, less than one batch`);
    tokenizer = await folderTokenizer(args, folder, micro ? 400 : 8000);
  }
  // RoBERTa's position ids count from its <pad> id 1, and the MLM and caption losses skip ids 0-2
  const specials = ['<s>', '<pad>', '</s>'].map((t) => tokenizer.id(t));
  if (specials.some((id, i) => id !== i))
    throw new UsageError(
      `the tokenizer has <s>, <pad>, </s> at ids ${specials.join(', ')}; the model needs them at 0, 1, 2 ` +
        '(as roberta-base and the BPE this command trains have them)',
    );
  const maskId = tokenizer.id('<mask>');
  const records = world ? builtinRecords(args.task, world) : folder!.source.length;
  if (world && args.batch > records)
    throw new UsageError(
      `--batch ${args.batch}: the built-in world holds ${records} training records for --task ${args.task}, less than one batch`,
    );
  const steps = args.steps ?? Math.max(1, Math.ceil(((args.epochs ?? 1) * records) / (args.batch * args.accumulate)));
  const options = {
    task: args.task,
    model: args.model,
    vocabSize: tokenizer.vocabSize,
    maskId,
    vqaLabels: world ? world.answerVocabulary.length : (folder!.answers?.length ?? 0),
    steps,
    lr: args.lr,
    seed: args.seed,
    queueSize: args.queue ?? (micro ? 16 : 4096),
    init: args.init !== undefined,
  };
  const setup: TaskSetup = fine ? fineSetup(options) : coarseSetup(options);
  let loader: FolderSource['loader'] | undefined;
  let fineData: Pick<FolderSource, 'cuts' | 'negativeBatches'> | undefined;
  try {
    if (args.init !== undefined) {
      // a checkpoint that cannot be read, or fits nothing, is bad input as a bad option is
      const path = args.init;
      const r = await loadInit(setup.model, path).catch((e: Error) => {
        if (e instanceof UsageError) throw e;
        throw new UsageError(
          oneLine(e.message.includes(path) ? `--init: ${e.message}` : `--init ${path}: ${e.message}`),
        );
      });
      const bad = await nonFiniteTensors(setup.model);
      if (bad.length) throw new UsageError(`--init ${args.init}: ${nonFiniteMessage(bad)}; the checkpoint is broken`);
      log(
        `--init ${args.init}: ${r.loaded} tensors loaded` +
          (r.resized ? ` (${r.resized} Swin position tables resized to this image size)` : '') +
          `, ${r.skipped} not in this model or of another shape`,
      );
    }
    const fineSize = args.imageSize ?? (micro ? 64 : undefined);
    const shape = {
      batch: args.batch,
      ...setup.shape,
      fineSize: fineSize ?? 800,
    };
    // fit reads a step's --accumulate micro-batches one at a time: one micro-batch's images must fit
    const side = fine ? shape.fineSize * Math.sqrt(1.67) : shape.imageSize; // fine: shorter side x up to 1.67
    const microBytes = args.batch * 3 * side * side * 4 * (args.task === 'nlvr2' ? 2 : 1);
    if (microBytes > totalmem() / 2)
      throw new UsageError(
        `--batch ${args.batch}: one micro-batch's images take about ${(microBytes / 2 ** 30).toFixed(1)} GiB, ` +
          "more than half this machine's memory (a smaller --batch with --accumulate K keeps the step size)",
      );
    if (['pretrain-coarse', 'retrieval-itc', 'retrieval-itm'].includes(args.task) && args.batch < 2)
      throw new UsageError(`--batch: ${args.task} needs at least 2 pairs per batch (negatives come from the batch)`);
    const source: DataSource<TaskBatch> = world
      ? builtinSource(args.task, world, tokenizer, shape, args.seed)
      : await folderSource(
          { ...shape, fineSize, task: args.task, tokenizer, seed: args.seed, data: folder!, workers: args.workers },
          fine,
        ).then((f) => {
          loader = f.loader;
          if (fine) fineData = f;
          log(
            `data: images decoded ${f.workers ? `by ${f.workers} worker thread${f.workers > 1 ? 's' : ''}` : 'in the training thread'}`,
          );
          return f;
        });
    const run = runFolder(args.out, {
      config: {
        task: args.task,
        model: setup.config,
        modelName: args.model,
        init: args.init ?? null,
        data: builtin ? 'builtin' : { dir: resolve(args.data), files: folder!.files, records },
        steps,
        batch: args.batch,
        accumulate: args.accumulate,
        lr: args.lr ?? null,
        seed: args.seed,
        backend: args.backend,
        tokenizer: { vocabSize: tokenizer.vocabSize },
        // what shapes the batches and the ITC queue: another value on --resume is refused up front
        // (present only where they apply, so that other tasks' runs from before still resume)
        ...(fine ? { fineSize: shape.fineSize } : {}),
        ...(['pretrain-coarse', 'retrieval-itc'].includes(args.task) ? { queue: options.queueSize } : {}),
      },
      resume: args.resume,
      keepLast: args.keep,
      // another backend may continue a run (its numbers then differ in the last bits)
      resumeMayChange: ['backend'],
    });
    const result = await setup.fit({
      data: source,
      steps,
      accumulate: args.accumulate,
      store: run.store,
      checkpointEvery: args.checkpointEvery,
      resume: args.resume,
      logger: run.logger(),
      user: { task: args.task },
    });
    // fewer steps than the guard's limit (trainer maxNonFinite) can all be skipped without an error;
    // the optimizer's update count is checkpointed, so a resumed run counts the steps before it too
    if (setup.optimizer.stepCount === 0)
      throw new Error(
        `no step of this run updated the model: all ${result.step} were skipped ` +
          (result.firstSkipped
            ? `(step ${result.firstSkipped.step}: ${result.firstSkipped.reason})`
            : `(before the resume from ${result.resumedFrom}; the run's log.jsonl says why)`) +
          `; ${join(args.out, 'final')} is not written`,
      );
    const final = await run.saveFinal(setup.model);
    if (loader) {
      const s = loader.stats.summary();
      if (Object.keys(s.records).length || Object.keys(s.boxes).length)
        log(
          `data: ${s.delivered} records delivered; skipped ${JSON.stringify(s.records)}; boxes dropped ${JSON.stringify(s.boxes)}`,
        );
    }
    if (fineData?.cuts.emptyRows)
      log(
        `data: ${fineData.cuts.emptyRows} boxes trained as positives that name no token: the prompt's truncation cut their phrase (${fineData.cuts.message})`,
      );
    if (fineData?.cuts.uncovered)
      log(
        `data: ${fineData.cuts.uncovered} boxes trained as positives that name no token: their phrase covers no token of the caption (${fineData.cuts.firstUncovered})`,
      );
    if (fineData?.negativeBatches.skipped)
      log(
        `data: ${fineData.negativeBatches.skipped} batches skipped: more than ${MAX_NEG_PER_BATCH * 100}% of their images had no box (the official SOLVER.MAX_NEG_PER_BATCH)`,
      );
    log(
      `${args.task}: ${result.step} steps${result.resumedFrom ? ` (resumed from ${result.resumedFrom})` : ''}, ` +
        (result.skipped
          ? `${result.skipped} of this run's ${result.skipped + result.applied} skipped (step ${result.firstSkipped?.step}: ${result.firstSkipped?.reason}), `
          : '') +
        `last loss ${result.last ? result.last.loss.toFixed(4) : 'n/a'}; model in ${final}`,
    );
  } finally {
    await loader?.close();
    setup.optimizer.dispose();
    setup.dispose();
    setup.model.dispose();
  }
}
