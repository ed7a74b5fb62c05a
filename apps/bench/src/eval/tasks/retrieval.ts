// Image-text retrieval on the Karpathy test split of COCO (5k images) or Flickr30k (1k images),
// every caption of each image a query. Three protocols:
//   itc            dual encoder: cosine similarity of the ITC embeddings (the *_irtr_itc checkpoints, 576 px)
//   itm            the official ITM protocol: every (image, text) pair through the fused model,
//                  scored by rank_output (the *_irtr_itm checkpoints, 384 px); O(images x texts) passes
//   itc + rerank K the ITC top K of every query (both directions) re-scored by ITM alone (ALBEF's
//                  top-K re-scoring; ALBEF also adds the ITC similarity)
// Recall@1/5/10 both ways with @fiber-vl/eval-metrics (VSE++ protocol); the similarity matrices are
// written as safetensors next to the image / text ids, so the numbers can be recomputed.
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { retrievalRecall, type RetrievalScores } from '@fiber-vl/eval-metrics';
import type { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import type { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import { fiberPixelValues, type RawImage } from '@fiber-vl/swin';
import { serializeSafetensors, tf } from '@fiber-vl/tensor-core';
import { karpathyCaptions } from '@fiber-vl/trainer';
import { imageFolder } from '@fiber-vl/trainer/node';
import {
  checkpointShapes,
  checkTokenizer,
  coarseHeadsOf,
  headsText,
  loadCoarse,
  requireKind,
  type CoarseSetup,
} from '../checkpoint.js';
import type { EvalContext, TaskReport } from '../context.js';
import { fileStamp, parseFile, readJsonObject, readSource, requireDir, requireFile } from '../data.js';
import { fail } from '../errors.js';
import { runStage, type Item } from '../runner.js';
import { base64ToF32, baseFingerprint, concatF32, f32ToBase64, record, refOf, stringField } from './common.js';

interface Text {
  key: string;
  text: string;
  /** Index of its image in the image list. */
  image: number;
}

interface Image {
  key: string;
  imageId: number | string;
  ref: string;
}

/** One [H] embedding (ITC) or a row of ITM scores, stored as float32. */
const vectorStage = {
  encode: (v: Float32Array) => ({ f32: f32ToBase64(v) }),
  decode(v: unknown, key: string): Float32Array {
    return base64ToF32(stringField(record(v, key), 'f32', key), key);
  },
};

/** The first 16 hex digits of a text's SHA-256: an id of the ids it lists. */
const digestOf = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);

/** The gallery a run ranks over: its size and a digest of its image and text ids, in order. */
function galleryStamp(images: readonly Image[], texts: readonly Text[]): string {
  const ids = JSON.stringify([images.map((i) => i.key), texts.map((t) => [t.key, t.image])]);
  return `${images.length} images, ${texts.length} texts, sha256 ${digestOf(ids)}`;
}

/** ITM rank scores (rank_output) of one image with the given texts, `chunk` pairs per fused pass. */
async function itmScores(
  model: FiberCoarseModel,
  image: RawImage,
  size: number,
  texts: { ids: number[]; mask: number[] }[],
  chunk: number,
): Promise<Float32Array> {
  const out = new Float32Array(texts.length);
  const px = fiberPixelValues([image], size);
  try {
    for (let s = 0; s < texts.length; s += chunk) {
      const part = texts.slice(s, s + chunk);
      const score = tf.tidy(() => {
        const ids = tf.tensor2d(
          part.map((t) => t.ids),
          undefined,
          'int32',
        );
        const mask = tf.tensor2d(
          part.map((t) => t.mask),
          undefined,
          'int32',
        );
        return model.itm(tf.tile(px, [part.length, 1, 1, 1]), ids, mask).rankScore;
      });
      out.set((await score.data()) as Float32Array, s);
      score.dispose();
    }
  } finally {
    px.dispose();
  }
  return out;
}

const encode = (tokenizer: ByteLevelBpeTokenizer, texts: Text[], maxLength: number) =>
  tokenizer
    .encodeBatch(
      texts.map((t) => t.text),
      { maxLength, padding: 'max_length' },
    )
    .map((e) => ({ ids: e.ids, mask: e.attentionMask }));

/** Indices of the k largest values of `get(0..n-1)`, best first (lower index first on ties). */
function topK(n: number, k: number, get: (j: number) => number): number[] {
  return Array.from({ length: n }, (_, j) => j)
    .sort((a, b) => get(b) - get(a) || a - b)
    .slice(0, k);
}

export async function evalRetrieval(ctx: EvalContext): Promise<TaskReport> {
  const { opts } = ctx;
  const split = opts.split ?? 'test';
  const files = {
    coco: join(opts.data, 'karpathy', 'dataset_coco.json'),
    f30k: join(opts.data, 'karpathy', 'dataset_flickr30k.json'),
  };
  let dataset = opts.dataset;
  if (dataset !== undefined && dataset !== 'coco' && dataset !== 'f30k')
    fail(`--dataset: "${dataset}" is not coco or f30k`);
  if (!dataset && !opts.ann) {
    const found = (['coco', 'f30k'] as const).filter((d) => existsSync(files[d]));
    if (found.length !== 1) {
      fail(
        found.length
          ? `retrieval: ${opts.data} has both Karpathy files; say which with --dataset coco|f30k`
          : `retrieval: neither ${files.coco} nor ${files.f30k} exists (set --data, --dataset or --ann)`,
      );
    }
    dataset = found[0];
  }
  dataset ??= 'coco';
  const annFile = requireFile(
    opts.ann ?? files[dataset as 'coco' | 'f30k'],
    'Karpathy captions',
    'set --data or --ann',
  );
  const imagesDir = requireDir(
    opts.images ?? (dataset === 'f30k' ? join(opts.data, 'flickr30k-images') : opts.data),
    'retrieval images',
    'set --images',
  );

  const shapes = await checkpointShapes(opts.checkpoint);
  requireKind(
    opts.checkpoint,
    shapes,
    'coarse',
    'retrieval',
    `a retrieval checkpoint (fiber_${dataset}_irtr_itc.ckpt or _itm.ckpt)`,
  );
  const heads = coarseHeadsOf(shapes);
  const mode = opts.mode ?? (heads.itc ? 'itc' : heads.itm ? 'itm' : undefined);
  if (!mode || (mode === 'itc' && !heads.itc) || (mode === 'itm' && !heads.itm)) {
    fail(
      `${opts.checkpoint}: no ${mode ?? 'ITC or ITM'} head in this coarse checkpoint (heads: ${headsText(heads)}); ` +
        `retrieval needs fiber_${dataset}_irtr_itc.ckpt (ITC) or fiber_${dataset}_irtr_itm.ckpt (ITM)`,
    );
  }
  const rerank = opts.itmRerank;
  if (rerank && mode === 'itm')
    fail('--itm-rerank re-ranks the ITC ranking; --mode itm already scores every pair with ITM');
  const itmPath = opts.itmCheckpoint ?? opts.checkpoint;
  const itmShapes = rerank && itmPath !== opts.checkpoint ? await checkpointShapes(itmPath) : shapes;
  if (rerank) {
    requireKind(
      itmPath,
      itmShapes,
      'coarse',
      'retrieval',
      `an ITM checkpoint for --itm-rerank (fiber_${dataset}_irtr_itm.ckpt)`,
    );
    if (!coarseHeadsOf(itmShapes).itm) {
      fail(
        `${itmPath}: no ITM head (heads: ${headsText(coarseHeadsOf(itmShapes))}); --itm-rerank needs an ITM ` +
          `checkpoint: pass --itm-checkpoint fiber_${dataset}_irtr_itm.ckpt`,
      );
    }
  }

  // images of the split with their captions (every caption is a query)
  const json = readJsonObject(annFile, 'Karpathy captions');
  const source = parseFile('Karpathy captions', annFile, () =>
    karpathyCaptions(json, { splits: [split], dedupe: false, name: basename(annFile) }),
  );
  const records = await readSource(source, (r) => r, ctx.skips);
  const unreadable = ctx.skips.items.length;
  const imageIndex = new Map<string, number>();
  const allImages: Image[] = [];
  const allTexts: Text[] = [];
  for (const r of records) {
    const ref = refOf(r.image);
    let i = imageIndex.get(ref);
    if (i === undefined) {
      if (allImages.length >= (opts.limit ?? Infinity)) continue;
      const head = r.id.slice(0, r.id.lastIndexOf('/'));
      i = allImages.push({ key: `i${head}`, imageId: /^\d+$/.test(head) ? Number(head) : head, ref }) - 1;
      imageIndex.set(ref, i);
    }
    allTexts.push({ key: `t${r.id}`, text: r.text, image: i });
  }
  if (!allImages.length)
    fail(`retrieval: ${annFile} has no usable images in split "${split}" (skipped: ${ctx.skips.summary()})`);

  const tokenizer = ctx.tokenizer();
  const setups: CoarseSetup[] = [];
  try {
    const main = await loadCoarse(opts.checkpoint, shapes, {
      officialImageSize: mode === 'itc' ? 576 : 384,
      imageSize: opts.imageSize,
      maxTextLen: opts.maxTextLen,
    });
    setups.push(main);
    checkTokenizer(tokenizer, opts.tokenizer!, main.model.config.roberta.vocabSize);
    let itm: CoarseSetup | undefined = mode === 'itm' ? main : undefined;
    if (rerank) {
      itm = await loadCoarse(itmPath, itmShapes, { officialImageSize: 384, maxTextLen: opts.maxTextLen });
      setups.push(itm);
      checkTokenizer(tokenizer, opts.tokenizer!, itm.model.config.roberta.vocabSize);
    }
    const protocol = mode === 'itm' ? 'itm' : rerank ? `itc+itm${rerank}` : 'itc';
    const name = `retrieval_${dataset}_${split}_${protocol}`;
    const fingerprint = baseFingerprint(ctx, {
      captions: fileStamp(annFile),
      split,
      mode,
      imageSize: main.imageSize,
      maxTextLen: main.maxTextLen,
      ...(rerank ? { rerank, itmCheckpoint: fileStamp(itmPath), itmImageSize: itm!.imageSize } : {}),
      // ITM rows and re-ranked candidates are over this gallery (the ITC embeddings are per sample)
      ...(mode === 'itm' || rerank ? { gallery: galleryStamp(allImages, allTexts) } : {}),
    });
    const run = ctx.run(name, fingerprint, imageFolder(imagesDir));
    const imageItems: Item<number>[] = allImages.map((img, i) => ({ key: img.key, images: [img.ref], data: i }));
    /** The images that could be read, and their texts (image indices renumbered). */
    const keep = (valid: Set<string>): { images: Image[]; texts: Text[] } => {
      const images = allImages.filter((img) => valid.has(img.key));
      const renumber = new Map(images.map((img, i) => [img.key, i]));
      const texts = allTexts.flatMap((t) => {
        const i = renumber.get(allImages[t.image].key);
        return i === undefined ? [] : [{ ...t, image: i }];
      });
      return { images, texts };
    };

    let scores: Float32Array; // [images x texts] of the readable images and their texts
    let images: Image[];
    let texts: Text[];
    if (mode === 'itm') {
      // every image against every text: one row of ITM scores per image
      const encoded = encode(tokenizer, allTexts, main.maxTextLen);
      const rows = await runStage<number, Float32Array>(run, {
        label: `retrieval ${dataset} ${split}: ITM rows (${allTexts.length} texts each)`,
        items: imageItems,
        batch: 1,
        async infer(batch) {
          return [await itmScores(main.model, batch[0].images[0], main.imageSize, encoded, opts.batch)];
        },
        encode: vectorStage.encode,
        decode(v, key) {
          const row = vectorStage.decode(v, key);
          if (row.length !== allTexts.length)
            throw new TypeError(
              `partial result ${key}: ${row.length} ITM scores where the gallery has ${allTexts.length} texts`,
            );
          return row;
        },
      });
      ({ images, texts } = keep(new Set(rows.keys())));
      const column = new Map(allTexts.map((t, j) => [t.key, j]));
      const columns = texts.map((t) => column.get(t.key)!);
      scores = new Float32Array(images.length * columns.length);
      images.forEach((img, i) => {
        const row = rows.get(img.key)!;
        columns.forEach((j, c) => (scores[i * columns.length + c] = row[j]));
      });
    } else {
      const embed = (label: string, items: Item<number>[], fn: (images: RawImage[], idx: number[]) => tf.Tensor) =>
        runStage<number, Float32Array>(run, {
          label,
          items,
          batch: opts.batch,
          async infer(batch) {
            const out = fn(
              batch.map((b) => b.images[0]),
              batch.map((b) => b.item.data),
            );
            const data = (await out.data()) as Float32Array;
            out.dispose();
            const H = data.length / batch.length;
            return batch.map((_, r) => data.slice(r * H, (r + 1) * H));
          },
          ...vectorStage,
        });
      const imageEmb = await embed(`retrieval ${dataset} ${split}: ITC images`, imageItems, (imgs) => {
        const px = fiberPixelValues(imgs, main.imageSize);
        const cls = tf.tidy(() => main.model.encodeImage(px).imageCls);
        px.dispose();
        return cls;
      });
      const textItems: Item<number>[] = allTexts.map((t, j) => ({ key: t.key, images: [], data: j }));
      const textEmb = await embed(`retrieval ${dataset} ${split}: ITC texts`, textItems, (_, idx) => {
        const enc = encode(
          tokenizer,
          idx.map((j) => allTexts[j]),
          main.maxTextLen,
        );
        return tf.tidy(() => {
          const ids = tf.tensor2d(
            enc.map((e) => e.ids),
            undefined,
            'int32',
          );
          const mask = tf.tensor2d(
            enc.map((e) => e.mask),
            undefined,
            'int32',
          );
          return main.model.encodeText(ids, mask).textCls;
        });
      });
      ({ images, texts } = keep(new Set(imageEmb.keys())));
      scores = await similarity(
        images.map((img) => imageEmb.get(img.key)!),
        texts.map((t) => textEmb.get(t.key)!),
      );
    }
    if (!images.length) fail(`retrieval: no image could be read (skipped: ${ctx.skips.summary()})`);
    const I = images.length;
    const T = texts.length;
    const textToImage = Int32Array.from(texts.map((t) => t.image));
    const matrices: Record<string, Float32Array> = {};
    let recall: { i2t: RetrievalScores; t2i: RetrievalScores };
    if (rerank) {
      // candidates of each image: its ITC top-K texts and the texts that have it in their top K
      const K = Math.min(rerank, T);
      const KI = Math.min(rerank, I);
      const i2t = images.map((_, i) => topK(T, K, (t) => scores[i * T + t]));
      const t2i = texts.map((_, t) => topK(I, KI, (i) => scores[i * T + t]));
      const pairs = images.map((_, i) => new Set(i2t[i]));
      t2i.forEach((list, t) => list.forEach((i) => pairs[i].add(t)));
      const candidates = pairs.map((s) => [...s].sort((a, b) => a - b));
      const encoded = encode(tokenizer, texts, itm!.maxTextLen);
      // keyed by the candidates too: a resume whose ITC top K differ (an image read this time that
      // could not be read before) re-scores those images instead of reusing rows over other texts
      const rerankKey = (img: Image, i: number) =>
        `k${img.key}:${digestOf(candidates[i].map((t) => texts[t].key).join('\n'))}`;
      const rerankItems: Item<number[]>[] = images.map((img, i) => ({
        key: rerankKey(img, i),
        images: [img.ref],
        data: candidates[i],
      }));
      const itmRows = await runStage<number[], { texts: string[]; scores: Float32Array }>(run, {
        label: `retrieval ${dataset} ${split}: ITM re-rank of the ITC top ${rerank}`,
        items: rerankItems,
        batch: 1,
        async infer(batch) {
          const cand = batch[0].item.data;
          const s = await itmScores(
            itm!.model,
            batch[0].images[0],
            itm!.imageSize,
            cand.map((t) => encoded[t]),
            opts.batch,
          );
          return [{ texts: cand.map((t) => texts[t].key), scores: s }];
        },
        encode: (r) => ({ texts: r.texts, scores: f32ToBase64(r.scores) }),
        decode(v, key) {
          const o = record(v, key);
          const list = o.texts;
          if (!Array.isArray(list) || !list.every((x) => typeof x === 'string'))
            throw new TypeError(`partial result ${key}: "texts" is not a list of keys`);
          const scores = base64ToF32(stringField(o, 'scores', key), key);
          if (scores.length !== list.length)
            throw new TypeError(`partial result ${key}: ${scores.length} ITM scores for ${list.length} texts`);
          return { texts: list, scores };
        },
      });
      const itmScore = new Map<string, number>(); // `${i},${t}` -> ITM score
      const textPos = new Map(texts.map((t, j) => [t.key, j]));
      images.forEach((img, i) => {
        const row = itmRows.get(rerankKey(img, i));
        if (!row) fail(`retrieval: image ${img.imageId} read for ITC could not be read for the re-ranking`);
        const want = candidates[i].map((t) => texts[t].key);
        if (row!.texts.join('\n') !== want.join('\n'))
          fail(
            `${run.partial.path}: the stored re-ranking of image ${img.imageId} is over other texts than this run's ` +
              `ITC top ${rerank}; rerun without --resume`,
          );
        row!.texts.forEach((k, c) => itmScore.set(`${i},${textPos.get(k)}`, row!.scores[c]));
      });
      matrices.similarity_i2t = reranked(scores, I, T, i2t, (i, t) => itmScore.get(`${i},${t}`)!, 'rows');
      matrices.similarity_t2i = reranked(scores, I, T, t2i, (i, t) => itmScore.get(`${i},${t}`)!, 'columns');
      recall = {
        i2t: retrievalRecall({ rows: I, cols: T, data: matrices.similarity_i2t }, textToImage),
        t2i: retrievalRecall({ rows: I, cols: T, data: matrices.similarity_t2i }, textToImage),
      };
    } else {
      matrices.similarity = scores;
      const r = retrievalRecall({ rows: I, cols: T, data: scores }, textToImage);
      recall = { i2t: r, t2i: r };
    }
    const scoresFile = ctx.outFile(`${name}_scores.safetensors`);
    writeFileSync(
      scoresFile,
      serializeSafetensors({
        ...Object.fromEntries(
          Object.entries(matrices).map(([k, v]) => [k, { dtype: 'F32' as const, shape: [I, T], data: v }]),
        ),
        text_to_image: { dtype: 'I32', shape: [T], data: textToImage },
      }),
    );
    const idsFile = ctx.writeJson(`${name}_ids.json`, {
      image_ids: images.map((i) => i.imageId),
      text_ids: texts.map((t) => t.key.slice(1)),
      text_to_image: [...textToImage],
    });
    const tr = recall.i2t.i2t;
    const ir = recall.t2i.t2i;
    const rsum = tr['R@1'] + tr['R@5'] + tr['R@10'] + ir['R@1'] + ir['R@5'] + ir['R@10'];
    const what =
      mode === 'itm'
        ? `ITM, exhaustive: every (image, text) pair through the fused model, rank_output scores (the official ITM ` +
          `protocol; ${I * T} fused passes); ${main.imageSize} px`
        : rerank
          ? `ITC (dual encoder, ${main.imageSize} px) top ${rerank} of each query re-ranked by ITM ` +
            `(${itm!.imageSize} px, ${basename(itmPath)}); not the released code's exhaustive ITM protocol`
          : `ITC: dual-encoder cosine similarity (the official ITC protocol); ${main.imageSize} px`;
    return {
      name,
      split,
      dataset,
      model: main.description + (rerank ? `; re-ranking: ${itm!.description}` : ''),
      protocol: `${what}; ${main.maxTextLen} tokens; ${I} images, ${T} texts`,
      data: { captions: annFile, images: imagesDir },
      counts: { samples: allImages.length + unreadable, evaluated: I },
      metrics: { mode: protocol, images: I, texts: T, ir: { ...ir }, tr: { ...tr }, rsum },
      rows: [
        ['IR@1 (text -> image)', ir['R@1'].toFixed(2)],
        ['IR@5', ir['R@5'].toFixed(2)],
        ['IR@10', ir['R@10'].toFixed(2)],
        ['TR@1 (image -> text)', tr['R@1'].toFixed(2)],
        ['TR@5', tr['R@5'].toFixed(2)],
        ['TR@10', tr['R@10'].toFixed(2)],
        ['RSUM', rsum.toFixed(2)],
      ],
      files: { scores: scoresFile, ids: idsFile },
      notes:
        allImages.length > I
          ? [`the ${allImages.length - I} unreadable image(s) and their captions are left out of the gallery`]
          : [],
    };
  } finally {
    for (const s of new Set(setups)) s.model.dispose();
  }
}

/** [I, T] cosine similarities of the embeddings, computed in row blocks. */
async function similarity(img: Float32Array[], txt: Float32Array[]): Promise<Float32Array> {
  const I = img.length;
  const T = txt.length;
  const out = new Float32Array(I * T);
  if (!I || !T) return out;
  const H = img[0].length;
  const textMatrix = tf.tensor2d(concatF32(txt), [T, H]);
  try {
    for (let s = 0; s < I; s += 256) {
      const rows = img.slice(s, s + 256);
      const block = tf.tidy(() => tf.matMul(tf.tensor2d(concatF32(rows), [rows.length, H]), textMatrix, false, true));
      out.set((await block.data()) as Float32Array, s * T);
      block.dispose();
    }
  } finally {
    textMatrix.dispose();
  }
  return out;
}

/**
 * A matrix whose ranking in one direction is the re-ranked one: each query's candidates carry
 * their ITM score, and its other items stay below every candidate in their ITC order.
 */
function reranked(
  itc: Float32Array,
  I: number,
  T: number,
  candidates: number[][],
  itmOf: (i: number, t: number) => number,
  dir: 'rows' | 'columns',
): Float32Array {
  const out = new Float32Array(I * T);
  const n = dir === 'rows' ? T : I;
  const at = (q: number, j: number) => (dir === 'rows' ? q * T + j : j * T + q);
  candidates.forEach((cand, q) => {
    const pair = (j: number): [number, number] => (dir === 'rows' ? [q, j] : [j, q]);
    const chosen = new Set(cand);
    let floor = Infinity;
    for (const j of cand) {
      const s = itmOf(...pair(j));
      out[at(q, j)] = s;
      floor = Math.min(floor, s);
    }
    let top = -Infinity;
    for (let j = 0; j < n; j++) if (!chosen.has(j)) top = Math.max(top, itc[at(q, j)]);
    for (let j = 0; j < n; j++) if (!chosen.has(j)) out[at(q, j)] = floor - 1 - (top - itc[at(q, j)]);
  });
  return out;
}
