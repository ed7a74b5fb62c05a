// Task-level API over the fine-grained FIBER model: images and strings in, detections in original
// image pixels out, with the official pre-processing (shorter side 800 / longer <= 1333, Pillow
// bilinear, BGR 0-255 Caffe normalisation, batch padding to a multiple of 32), prompts through the
// BPE tokenizer's offsets, and the official ATSS post-processing.
import type { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import { detectionImageTransform, type RawImage } from '@fiber-vl/swin';
import { disposeOutput, tf } from '@fiber-vl/tensor-core';
import type { FiberFineModel } from './model.js';
import {
  groundPhrases,
  readHeadLevels,
  postprocessImage,
  toDetections,
  validatePostprocessConfig,
  type Detection,
  type DetectionResult,
  type GroundingResult,
  type ImageSize,
  type PostprocessConfig,
} from './postprocess.js';
import {
  PromptError,
  encodeDetectionPrompt,
  encodeGroundingPrompt,
  findPhraseSpans,
  type CharSpan,
  type GroundingPrompt,
  type TruncationReport,
} from './prompts.js';

export interface FinePreprocessOptions {
  /** Shorter side after resizing (the official test size is 800). */
  minSize?: number;
  /** Longest side allowed after resizing. */
  maxSize?: number;
  /** Batches are zero-padded (right / bottom) to a multiple of this (32). */
  sizeDivisibility?: number;
}

export interface FinePixelBatch {
  /** [B, 3, H, W], padded. */
  pixels: tf.Tensor4D;
  /** The resized, unpadded size of each image (what the network saw; boxes are clipped to it). */
  sizes: ImageSize[];
}

/** The official fine-grained test transform of a batch of images, padded to a common size. */
export function finePixelBatch(
  images: readonly RawImage[],
  { minSize = 800, maxSize = 1333, sizeDivisibility = 32 }: FinePreprocessOptions = {},
): FinePixelBatch {
  if (!images.length) throw new RangeError('finePixelBatch: no images');
  // 0 pads to the batch's largest image, as the official to_image_list does
  if (!(Number.isInteger(sizeDivisibility) && sizeDivisibility >= 0))
    throw new RangeError(`finePixelBatch: sizeDivisibility must be an integer >= 0, got ${String(sizeDivisibility)}`);
  const resized = images.map((img) => detectionImageTransform(img, { minSize, maxSize }));
  const up = (v: number) => (sizeDivisibility > 0 ? Math.ceil(v / sizeDivisibility) * sizeDivisibility : v);
  const H = up(resized.reduce((m, r) => Math.max(m, r.height), 0));
  const W = up(resized.reduce((m, r) => Math.max(m, r.width), 0));
  const data = new Float32Array(images.length * 3 * H * W);
  resized.forEach((r, b) => {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < r.height; y++) {
        const src = (c * r.height + y) * r.width;
        data.set(r.data.subarray(src, src + r.width), ((b * 3 + c) * H + y) * W);
      }
    }
  });
  return {
    pixels: tf.tensor4d(data, [images.length, 3, H, W]),
    sizes: resized.map((r) => ({ width: r.width, height: r.height })),
  };
}

export interface FinePipelineOptions extends FinePreprocessOptions {
  /** Post-processing settings (official: threshold 0.05, NMS 0.6, 100 detections). */
  postprocess?: Partial<PostprocessConfig>;
  /**
   * Prompts per forward in `groundMany` / `referMany` (the image repeated); default 4. Memory
   * grows with it: at the official 800 x 1333 input a FIBER-B forward of 4 prompts holds GBs.
   */
  batchSize?: number;
}

export interface ReferResult {
  /** The best box for the expression in original pixels, or null when the model gives no box. */
  best: Detection | null;
  /** Every candidate box for the expression, best first. */
  candidates: Detection[];
  truncation: TruncationReport;
}

const checkImage = (image: RawImage | undefined, what: string) => {
  if (!image || !(image.width > 0 && image.height > 0))
    throw new RangeError(`FiberFinePipeline.${what}: an image with a positive width and height is needed`);
};

/**
 * Runs `build`; a PromptError it throws is rethrown with `prefix` in front of its field
 * (`captions[2]` + `phrases` -> `captions[2].phrases`; an empty field becomes `prefix`).
 */
function indexed<T>(prefix: string, build: () => T): T {
  try {
    return build();
  } catch (e) {
    if (!(e instanceof PromptError)) throw e;
    throw new PromptError(e.field ? `${prefix}.${e.field}` : prefix, e.detail);
  }
}

export class FiberFinePipeline {
  constructor(
    readonly model: FiberFineModel,
    readonly tokenizer: ByteLevelBpeTokenizer,
    readonly options: FinePipelineOptions = {},
  ) {
    const { batchSize } = options;
    if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize > 0))
      throw new RangeError(`FiberFinePipeline: options.batchSize must be a positive integer, got ${batchSize}`);
    model.eval();
  }

  private get maxQueryLen(): number {
    return this.model.config.backbone.maxQueryLen;
  }

  /**
   * One image and its prompts through the model and the post-processor, `batchSize` prompts per
   * forward (the image repeated); boxes in network-input pixels.
   */
  private async run(image: RawImage, prompts: readonly GroundingPrompt[], postprocess: Partial<PostprocessConfig>) {
    // both checked before the forward, which at FIBER's 800 x 1333 takes seconds
    if (this.model.namedModules().some(([, m]) => m.training))
      throw new Error(
        'FiberFinePipeline: the model is in training mode (drop-path and dropout would run): call model.eval() first',
      );
    const config = { ...this.model.config.postprocess, ...this.options.postprocess, ...postprocess };
    validatePostprocessConfig(config, (field, why) => {
      throw new RangeError(`FiberFinePipeline: postprocess.${field} ${why}`);
    });
    const batchSize = this.options.batchSize ?? 4;
    const batch = finePixelBatch([image], this.options);
    const raw: ReturnType<typeof postprocessImage>[] = [];
    try {
      for (let start = 0; start < prompts.length; start += batchSize) {
        const part = prompts.slice(start, start + batchSize);
        let pixels: tf.Tensor4D | undefined;
        let ids: tf.Tensor2D | undefined;
        let mask: tf.Tensor2D | undefined;
        let out: ReturnType<FiberFineModel['forward']> | undefined;
        try {
          pixels = part.length === 1 ? batch.pixels : tf.tile(batch.pixels, [part.length, 1, 1, 1]);
          ids = tf.tensor2d(
            part.map((p) => p.inputIds),
            undefined,
            'int32',
          );
          mask = tf.tensor2d(
            part.map((p) => p.attentionMask),
            undefined,
            'int32',
          );
          out = this.model.forward(pixels, ids, mask);
          const perImage = await readHeadLevels(out.head, this.model.config.anchors);
          perImage.forEach((p, b) => raw.push(postprocessImage(p, part[b].labelToTokens, batch.sizes[0], config)));
        } finally {
          disposeOutput([out, ids, mask, pixels === batch.pixels ? undefined : pixels]);
        }
      }
    } finally {
      batch.pixels.dispose();
    }
    return { raw, inputSize: batch.sizes[0] };
  }

  private groundingPrompt(caption: string, phrases: readonly string[] | readonly (readonly CharSpan[])[]) {
    if (!Array.isArray(phrases) || phrases.length === 0) throw new PromptError('phrases', 'no phrases to ground');
    const spans = phrases.every((p) => typeof p === 'string')
      ? findPhraseSpans(caption, phrases as readonly string[])
      : (phrases as readonly (readonly CharSpan[])[]);
    const names = phrases.map((p, i) =>
      typeof p === 'string' ? p : spans[i].map(([a, b]) => caption.slice(a, b)).join(' '),
    );
    return encodeGroundingPrompt(this.tokenizer, caption, spans, { maxQueryLen: this.maxQueryLen, names });
  }

  private referPrompt(expression: string, what = 'expression') {
    if (typeof expression !== 'string' || expression.trim() === '')
      throw new PromptError(what, 'the referring expression is empty');
    const start = expression.length - expression.trimStart().length;
    const end = expression.trimEnd().length;
    return encodeGroundingPrompt(this.tokenizer, expression, [[[start, end]]], {
      maxQueryLen: this.maxQueryLen,
      names: [expression.trim()],
    });
  }

  /**
   * Open-vocabulary detection: the class names become the prompt "a. b. c" (cleaned, joined with
   * ". "); detections in original pixels with their class, best first. Classes that do not fit in
   * MAX_QUERY_LEN are reported in `truncation`.
   */
  async detect(
    image: RawImage,
    classNames: readonly string[],
    postprocess: Partial<PostprocessConfig> = {},
  ): Promise<DetectionResult> {
    checkImage(image, 'detect');
    const prompt = encodeDetectionPrompt(this.tokenizer, classNames, { maxQueryLen: this.maxQueryLen });
    const { raw, inputSize } = await this.run(image, [prompt], postprocess);
    return {
      detections: toDetections(raw[0], prompt.names, { inputSize, originalSize: image }),
      truncation: prompt.truncation,
    };
  }

  /**
   * Phrase grounding: boxes for each phrase of the caption, ranked, the best `topK` (default 5) per
   * phrase. Phrases are strings found in the caption (every occurrence, inside longer words too:
   * see `findPhraseSpans`) or explicit character spans.
   */
  async ground(
    image: RawImage,
    caption: string,
    phrases: readonly string[] | readonly (readonly CharSpan[])[],
    options: Partial<PostprocessConfig> & { topK?: number } = {},
  ): Promise<GroundingResult> {
    checkImage(image, 'ground');
    return (await this.groundPrompts(image, [this.groundingPrompt(caption, phrases)], options))[0];
  }

  /**
   * `ground` for several captions of one image, batched (`batchSize` captions per forward): one
   * result per caption, in order.
   */
  async groundMany(
    image: RawImage,
    captions: readonly { caption: string; phrases: readonly string[] | readonly (readonly CharSpan[])[] }[],
    options: Partial<PostprocessConfig> & { topK?: number } = {},
  ): Promise<GroundingResult[]> {
    checkImage(image, 'groundMany');
    if (!captions.length) return [];
    const prompts = captions.map((c, i) => indexed(`captions[${i}]`, () => this.groundingPrompt(c.caption, c.phrases)));
    return this.groundPrompts(image, prompts, options);
  }

  private async groundPrompts(
    image: RawImage,
    prompts: readonly GroundingPrompt[],
    { topK = 5, ...postprocess }: Partial<PostprocessConfig> & { topK?: number },
  ): Promise<GroundingResult[]> {
    if (!(Number.isInteger(topK) && topK >= 1))
      throw new RangeError(`FiberFinePipeline: topK must be an integer >= 1, got ${String(topK)}`);
    const { raw, inputSize } = await this.run(image, prompts, { preNmsThresh: 0, ...postprocess });
    return prompts.map((prompt, i) => ({
      phrases: groundPhrases(
        raw[i],
        prompt.phrases.map((p) => p.text),
        prompt.labelToTokens,
        { inputSize, originalSize: image, topK },
      ),
      truncation: prompt.truncation,
    }));
  }

  /** Referring expression comprehension: the single box the whole expression refers to. */
  async refer(image: RawImage, expression: string, postprocess: Partial<PostprocessConfig> = {}): Promise<ReferResult> {
    checkImage(image, 'refer');
    const prompt = this.referPrompt(expression);
    return (await this.referPrompts(image, [prompt], postprocess))[0];
  }

  /** `refer` for several expressions about one image, batched (`batchSize` per forward), in order. */
  async referMany(
    image: RawImage,
    expressions: readonly string[],
    postprocess: Partial<PostprocessConfig> = {},
  ): Promise<ReferResult[]> {
    checkImage(image, 'referMany');
    if (!expressions.length) return [];
    const prompts = expressions.map((e, i) => indexed(`expressions[${i}]`, () => this.referPrompt(e, '')));
    return this.referPrompts(image, prompts, postprocess);
  }

  private async referPrompts(
    image: RawImage,
    prompts: readonly GroundingPrompt[],
    postprocess: Partial<PostprocessConfig>,
  ): Promise<ReferResult[]> {
    // every box competes: no pre-NMS threshold, the best one is the answer
    const { raw, inputSize } = await this.run(image, prompts, { preNmsThresh: 0, ...postprocess });
    return prompts.map((prompt, i) => {
      const candidates = toDetections(raw[i], [prompt.phrases[0].text], { inputSize, originalSize: image }).sort(
        (a, b) => b.score - a.score,
      );
      return { best: candidates[0] ?? null, candidates, truncation: prompt.truncation };
    });
  }
}
