// Task-level API over a FIBER coarse model: images and strings in, typed results out, with the
// official pre-processing (Pillow-exact resize, ImageNet normalisation) and tokenizer built in.
import type { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import { fiberPixelValues, type RawImage } from '@fiber-vl/swin';
import { disposeOutput, tf } from '@fiber-vl/tensor-core';
import { beamSearchCaptions } from './caption.js';
import type { FiberCoarseModel } from './model.js';

export interface PipelineOptions {
  /** Image side the model was trained at (384 or 576 for FIBER-B); default: the model's config. */
  imageSize?: number;
  /** Text length (40 pre-training, 50 fine-tunes); default: the model's maxTextLen. */
  maxTextLength?: number;
  /**
   * VQA answer vocabulary in label order (not stored in checkpoints; ViLT's answer list for VQAv2).
   * Without it `vqa` names an answer by its label index: `#2662`.
   */
  answers?: string[];
}

export interface RankedItem {
  index: number;
  score: number;
}

export interface RetrievalResult {
  /** For each image, texts best first. */
  imageToText: RankedItem[][];
  /** For each text, images best first. */
  textToImage: RankedItem[][];
  /** ITC (or ITM) scores [images x texts], row-major. */
  scores: Float32Array;
}

export class FiberPipeline {
  readonly imageSize: number;
  readonly maxTextLength: number;
  constructor(
    readonly model: FiberCoarseModel,
    readonly tokenizer: ByteLevelBpeTokenizer,
    readonly options: PipelineOptions = {},
  ) {
    this.imageSize = options.imageSize ?? model.config.swin.imageSize;
    this.maxTextLength = options.maxTextLength ?? model.config.maxTextLen;
    model.eval();
  }

  private pixels(images: RawImage[]): tf.Tensor4D {
    if (!images.length) throw new RangeError('FiberPipeline: no images');
    if (this.model.namedModules().some(([, m]) => m.training))
      throw new Error('FiberPipeline: the model is in training mode (dropout would run): call model.eval() first');
    return fiberPixelValues(images, this.imageSize);
  }

  /**
   * Pixels and token tensors for a call. Texts are tokenised (plain JS, may throw) before any
   * tensor exists, so a bad input leaks nothing.
   */
  private inputs(images: RawImage[], texts: string[]): { px: tf.Tensor4D; ids: tf.Tensor2D; mask: tf.Tensor2D } {
    if (!texts.length) throw new RangeError('FiberPipeline: no texts');
    const enc = this.tokenizer.encodeBatch(texts, { maxLength: this.maxTextLength, padding: 'max_length' });
    const px = this.pixels(images);
    return {
      px,
      ids: tf.tensor2d(
        enc.map((e) => e.ids),
        undefined,
        'int32',
      ),
      mask: tf.tensor2d(
        enc.map((e) => e.attentionMask),
        undefined,
        'int32',
      ),
    };
  }

  /** VQA: the best answer and the top-k answer scores (sigmoid of the logits, as trained with BCE). */
  async vqa(
    image: RawImage,
    question: string,
    { topK = 5 } = {},
  ): Promise<{ answer: string; scores: { answer: string; score: number }[] }> {
    positiveInteger('vqa', 'topK', topK);
    const { px, ids, mask } = this.inputs([image], [question]);
    let probs: Float32Array;
    try {
      const p = tf.tidy(() => tf.sigmoid(this.model.vqa(px, ids, mask)));
      probs = (await p.data()) as Float32Array;
      p.dispose();
    } finally {
      tf.dispose([px, ids, mask]);
    }
    const answers = this.options.answers;
    if (answers && answers.length !== probs.length) {
      throw new RangeError(`FiberPipeline: ${answers.length} answers given for a VQA head of ${probs.length} labels`);
    }
    const label = (i: number) => answers?.[i] ?? `#${i}`;
    const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
    const scores = order.slice(0, topK).map((i) => ({ answer: label(i), score: probs[i] }));
    return { answer: scores[0].answer, scores };
  }

  /**
   * A caption by the official beam search (beam 5). `onPartial` gets the best beam's text after each
   * step (it may still change: beams are re-ranked every step).
   */
  async caption(
    image: RawImage,
    { beamSize = 5, onPartial }: { beamSize?: number; onPartial?: (caption: string) => void | Promise<void> } = {},
  ): Promise<{ caption: string; tokens: number[] }> {
    const px = this.pixels([image]);
    const onStep = onPartial && ((best: number[][]) => onPartial(this.tokenizer.decode(best[0]).trim()));
    try {
      const [tokens] = await beamSearchCaptions(this.model, px, { beamSize, maxLength: this.maxTextLength, onStep });
      return { caption: this.tokenizer.decode(tokens).trim(), tokens };
    } finally {
      px.dispose();
    }
  }

  /** Image-text matching: probability of "match" and the retrieval rank score (rank_output). */
  async itm(image: RawImage, text: string): Promise<{ matchProbability: number; rankScore: number }> {
    const { px, ids, mask } = this.inputs([image], [text]);
    try {
      const r = this.model.itm(px, ids, mask);
      try {
        const p = tf.tidy(() => tf.softmax(r.logits));
        const probs = (await p.data()) as Float32Array;
        p.dispose();
        return { matchProbability: probs[1], rankScore: (await r.rankScore.data())[0] };
      } finally {
        disposeOutput(r);
      }
    } finally {
      tf.dispose([px, ids, mask]);
    }
  }

  /** rank_output scores of every (image, text) pair of the given index lists (fused, batched per image). */
  private async itmScores(
    px: tf.Tensor,
    ids: tf.Tensor,
    mask: tf.Tensor,
    pairs: [number, number][],
  ): Promise<number[]> {
    const out: number[] = [];
    for (let s = 0; s < pairs.length; s += 16) {
      const chunk = pairs.slice(s, s + 16);
      // by index: the layers below the fusion run once per image and text the chunk names
      const score = tf.tidy(
        () => this.model.itm(px, ids, mask, { image: chunk.map((p) => p[0]), text: chunk.map((p) => p[1]) }).rankScore,
      );
      try {
        out.push(...((await score.data()) as Float32Array));
      } finally {
        score.dispose();
      }
    }
    return out;
  }

  /**
   * Image-text retrieval. 'itc': dual-encoder cosine similarities (fast). 'itm': exhaustive fused
   * scoring of every pair with rank_output (the official ITM protocol). 'itc+itm': ITC top-`rerank`
   * candidates re-scored by ITM; each list then holds at most `rerank` items (fewer than `k` when
   * `k > rerank`), each with its ITM rank score, while `scores` stays the ITC similarity matrix.
   */
  async retrieve(
    images: RawImage[],
    texts: string[],
    { k = 5, mode = 'itc' as 'itc' | 'itm' | 'itc+itm', rerank = 16 } = {},
  ): Promise<RetrievalResult> {
    positiveInteger('retrieve', 'k', k);
    positiveInteger('retrieve', 'rerank', rerank);
    if (mode !== 'itc' && mode !== 'itm' && mode !== 'itc+itm')
      throw new RangeError(`FiberPipeline.retrieve: mode must be 'itc', 'itm' or 'itc+itm', got ${String(mode)}`);
    const { px, ids, mask } = this.inputs(images, texts);
    const [I, T] = [images.length, texts.length];
    try {
      let scores: Float32Array;
      if (mode === 'itm') {
        const pairs: [number, number][] = [];
        for (let i = 0; i < I; i++) for (let t = 0; t < T; t++) pairs.push([i, t]);
        scores = Float32Array.from(await this.itmScores(px, ids, mask, pairs));
      } else {
        const sim = tf.tidy(() =>
          tf.matMul(this.model.encodeImage(px).imageCls, this.model.encodeText(ids, mask).textCls, false, true),
        );
        scores = (await sim.data()) as Float32Array;
        sim.dispose();
      }
      const rank = (n: number, score: (j: number) => number) =>
        Array.from({ length: n }, (_, j) => ({ index: j, score: score(j) })).sort(
          (a, b) => b.score - a.score || a.index - b.index,
        );
      let imageToText = Array.from({ length: I }, (_, i) => rank(T, (t) => scores[i * T + t]));
      let textToImage = Array.from({ length: T }, (_, t) => rank(I, (i) => scores[i * T + t]));
      if (mode === 'itc+itm') {
        const rescore = async (lists: RankedItem[][], pair: (q: number, c: number) => [number, number]) =>
          Promise.all(
            lists.map(async (list, q) => {
              const top = list.slice(0, rerank);
              const s = await this.itmScores(
                px,
                ids,
                mask,
                top.map((c) => pair(q, c.index)),
              );
              return top
                .map((c, j) => ({ index: c.index, score: s[j] }))
                .sort((a, b) => b.score - a.score || a.index - b.index);
            }),
          );
        imageToText = await rescore(imageToText, (i, t) => [i, t]);
        textToImage = await rescore(textToImage, (t, i) => [i, t]);
      }
      return {
        imageToText: imageToText.map((l) => l.slice(0, k)),
        textToImage: textToImage.map((l) => l.slice(0, k)),
        scores,
      };
    } finally {
      tf.dispose([px, ids, mask]);
    }
  }
}

/** A count option: NaN, 0 or -1 gave empty lists, all but the last item, or a TypeError. */
function positiveInteger(method: string, name: string, v: unknown): void {
  if (!(Number.isInteger(v) && (v as number) >= 1))
    throw new RangeError(`FiberPipeline.${method}: ${name} must be an integer >= 1, got ${String(v)}`);
}
