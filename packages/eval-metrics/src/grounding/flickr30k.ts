// Flickr30k Entities phrase grounding Recall@K as MDETR's flickr_eval.py
// (Flickr30kEntitiesRecallEvaluator), from the original data layout: `<subset>.txt`,
// `Sentences/<id>.txt` with `[/EN#<id>/<type...> words]` markup, `Annotations/<id>.xml`
// (metrics-spec §11). Any-box protocol by default, merged-box with `mergeBoxes`.
import { MetricInputError, show, where } from '../errors.js';

import { iouXyxy, type BoxXyxy } from './boxes.js';

export interface Flickr30kPhrase {
  firstWordIndex: number;
  phrase: string;
  phraseId: string;
  phraseTypes: string[];
}
export interface Flickr30kSentence {
  sentence: string;
  phrases: Flickr30kPhrase[];
}
export interface Flickr30kAnnotation {
  boxes: Map<string, BoxXyxy[]>;
  noBox: string[];
  scene: string[];
  width?: number;
  height?: number;
}

/** Parses `Sentences/<id>.txt` (flickr30k_entities_utils.get_sentence_data). */
export function parseFlickr30kSentences(text: string, file = 'sentences'): Flickr30kSentence[] {
  const out: Flickr30kSentence[] = [];
  for (const [n, line] of text.split('\n').entries()) {
    if (!line) continue;
    const words: string[] = [];
    const phrases: Flickr30kPhrase[] = [];
    let current: string[] | undefined;
    let pending: Omit<Flickr30kPhrase, 'phrase'> | undefined;
    for (let token of line.split(/\s+/).filter(Boolean)) {
      if (current && pending) {
        if (token.endsWith(']')) {
          token = token.slice(0, -1);
          current.push(token);
          phrases.push({ ...pending, phrase: current.join(' ') });
          current = undefined;
          pending = undefined;
        } else {
          current.push(token);
        }
        words.push(token);
      } else if (token.startsWith('[')) {
        const parts = token.split('/');
        if (parts.length < 2)
          throw new MetricInputError(
            `${file}: line ${n + 1}: a phrase opens with ${show(token)}, not [/EN#<id>/<type>`,
          );
        pending = { firstWordIndex: words.length, phraseId: parts[1].slice(3), phraseTypes: parts.slice(2) };
        current = [];
      } else {
        words.push(token);
      }
    }
    out.push({ sentence: words.join(' '), phrases });
  }
  return out;
}

const tagText = (xml: string, tag: string): string[] =>
  [...xml.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1].trim());

/** Parses `Annotations/<id>.xml` (boxes as integer corners, as written in the file). */
export function parseFlickr30kAnnotation(xml: string, file = 'annotation'): Flickr30kAnnotation {
  const boxes = new Map<string, BoxXyxy[]>();
  const noBox: string[] = [];
  const scene: string[] = [];
  const int = (s: string | undefined, what: string) => {
    // Python's int(): an integer and nothing else (parseInt read "2.9e5" as 2)
    if (!/^[+-]?\d+$/.test(s ?? '')) throw new MetricInputError(`${file}: <${what}> is missing or not an integer`);
    return Number(s);
  };
  for (const obj of tagText(xml, 'object')) {
    const bndbox = tagText(obj, 'bndbox')[0];
    for (const id of tagText(obj, 'name')) {
      if (bndbox !== undefined) {
        const box: BoxXyxy = [
          int(tagText(bndbox, 'xmin')[0], 'xmin'),
          int(tagText(bndbox, 'ymin')[0], 'ymin'),
          int(tagText(bndbox, 'xmax')[0], 'xmax'),
          int(tagText(bndbox, 'ymax')[0], 'ymax'),
        ];
        (boxes.get(id) ?? boxes.set(id, []).get(id)!).push(box);
      } else {
        if (Number(tagText(obj, 'nobndbox')[0] ?? 0) > 0) noBox.push(id);
        if (Number(tagText(obj, 'scene')[0] ?? 0) > 0) scene.push(id);
      }
    }
  }
  const size = tagText(xml, 'size')[0];
  return {
    boxes,
    noBox,
    scene,
    width: size ? Number(tagText(size, 'width')[0]) : undefined,
    height: size ? Number(tagText(size, 'height')[0]) : undefined,
  };
}

/** The smallest box enclosing all boxes (MDETR _merge_boxes). */
export function mergeBoxes(boxes: readonly BoxXyxy[]): BoxXyxy {
  // loops, not Math.min(...list): a spread of a long list overflows the stack
  const out: BoxXyxy = [Infinity, Infinity, -Infinity, -Infinity];
  for (const b of boxes) {
    out[0] = Math.min(out[0], b[0]);
    out[1] = Math.min(out[1], b[1]);
    out[2] = Math.max(out[2], b[2]);
    out[3] = Math.max(out[3], b[3]);
  }
  return out;
}

/** MDETR prediction format: one ranked list of [x1, y1, x2, y2] boxes per evaluable phrase, in sentence order. */
export interface Flickr30kPrediction {
  image_id: string | number;
  sentence_id: number;
  boxes: number[][][];
}

/** Reads files of the dataset by relative path ("test.txt", "Sentences/1.txt", ...). */
export type FileReader = (relativePath: string) => string;

export interface GroundingRecall {
  /** k -> category ("all", "people", ...) -> recall in [0, 1]; k = "R@1", "R@5", "R@10", "upper_bound". */
  [k: string]: Record<string, number>;
}

export interface Flickr30kEvalOptions {
  /** The predictions' file name, for error messages. */
  file?: string;
  subset?: string;
  topk?: number[];
  iouThreshold?: number;
  mergeBoxes?: boolean;
}

/**
 * Loads the subset once and evaluates predictions (both protocols share the loaded data).
 * Errors name the image, the sentence and what is wrong, as the reference's RuntimeErrors do.
 */
export class Flickr30kEntitiesEvaluator {
  private readonly images = new Map<string, { annotation: Flickr30kAnnotation; sentences: Flickr30kSentence[] }>();
  readonly imageIds: string[];

  constructor(
    read: FileReader,
    readonly subset = 'test',
  ) {
    this.imageIds = read(`${subset}.txt`)
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    for (const id of this.imageIds) {
      this.images.set(id, {
        annotation: parseFlickr30kAnnotation(read(`Annotations/${id}.xml`), `Annotations/${id}.xml`),
        sentences: parseFlickr30kSentences(read(`Sentences/${id}.txt`), `Sentences/${id}.txt`),
      });
    }
  }

  /** Evaluable phrases (those whose id has at least one box) of each sentence of an image. */
  phrasesOf(imageId: string): Flickr30kPhrase[][] {
    const img = this.images.get(imageId);
    if (!img) throw new MetricInputError(`unknown image id ${imageId} (not in ${this.subset}.txt)`);
    return img.sentences.map((s) => s.phrases.filter((p) => img.annotation.boxes.has(p.phraseId)));
  }

  evaluate(
    predictions: readonly Flickr30kPrediction[],
    { topk = [1, 5, 10, -1], iouThreshold = 0.5, mergeBoxes: merge = false, file }: Flickr30kEvalOptions = {},
  ): GroundingRecall {
    const at = where(file);
    if (!Array.isArray(predictions)) {
      throw new MetricInputError(
        `${at}expected a list of {image_id, sentence_id, boxes} predictions, got ${show(predictions)}`,
      );
    }
    const pos = new Map<number, Map<string, number>>();
    const tot = new Map<number, Map<string, number>>();
    const add = (k: number, cat: string, hit: boolean) => {
      const t = tot.get(k) ?? tot.set(k, new Map()).get(k)!;
      const p = pos.get(k) ?? pos.set(k, new Map()).get(k)!;
      t.set(cat, (t.get(cat) ?? 0) + 1);
      p.set(cat, (p.get(cat) ?? 0) + (hit ? 1 : 0));
    };
    const expected = new Set<string>();
    for (const id of this.imageIds) this.phrasesOf(id).forEach((ph, s) => ph.length && expected.add(`${id}_${s}`));
    const seen = new Set<string>();
    predictions.forEach((pred: unknown, i) => {
      const entry = `${at}predictions[${i}]`;
      if (typeof pred !== 'object' || pred === null)
        throw new MetricInputError(`${entry}: not an object (${show(pred)})`);
      const { image_id, sentence_id, boxes: predBoxes } = pred as Partial<Flickr30kPrediction>;
      if (!(typeof image_id === 'string' || Number.isInteger(image_id))) {
        throw new MetricInputError(`${entry}: "image_id" is missing or not an id: ${show(image_id)}`);
      }
      if (!Number.isInteger(sentence_id) || sentence_id! < 0) {
        throw new MetricInputError(`${entry}: "sentence_id" must be a sentence index, got ${show(sentence_id)}`);
      }
      const imageId = String(image_id);
      const sid = `${imageId}_${sentence_id}`;
      if (seen.has(sid))
        throw new MetricInputError(`${entry}: a second prediction for sentence ${sentence_id} of image ${imageId}`);
      seen.add(sid);
      if (!this.images.has(imageId))
        throw new MetricInputError(`${entry}: unknown image id ${imageId} (not in ${this.subset}.txt)`);
      const sentences = this.phrasesOf(imageId);
      const phrases = sentences[sentence_id!];
      if (!phrases) {
        throw new MetricInputError(
          `${entry}: image ${imageId} has no sentence ${sentence_id} (it has ${sentences.length})`,
        );
      }
      if (!Array.isArray(predBoxes) || predBoxes.length !== phrases.length) {
        throw new MetricInputError(
          `${entry}: got ${show(predBoxes?.length)} box lists, expected ${phrases.length} for sentence ${sentence_id} of image ${imageId}`,
        );
      }
      const gt = this.images.get(imageId)!.annotation.boxes;
      phrases.forEach((phrase, j) => {
        const boxes: unknown = predBoxes[j];
        if (!Array.isArray(boxes) || boxes.length === 0) {
          throw new MetricInputError(`${entry}.boxes[${j}]: no boxes for phrase "${phrase.phrase}"`);
        }
        boxes.forEach((b: unknown, k) => {
          if (!Array.isArray(b) || b.length !== 4 || !b.every(Number.isFinite) || b[2] < b[0] || b[3] < b[1]) {
            throw new MetricInputError(
              `${entry}.boxes[${j}][${k}]: must be [x1, y1, x2, y2] numbers with x1 <= x2, y1 <= y2, got ${show(b)}`,
            );
          }
        });
        let targets = gt.get(phrase.phraseId)!;
        if (merge && targets.length > 1) targets = [mergeBoxes(targets)];
        const best = (boxes as BoxXyxy[]).map((b) => targets.reduce((m, t) => Math.max(m, iouXyxy(b, t)), -Infinity));
        for (const k of topk) {
          const maxi = (k === -1 ? best : best.slice(0, k)).reduce((m, x) => Math.max(m, x), -Infinity);
          const hit = maxi >= iouThreshold;
          add(k, 'all', hit);
          for (const type of phrase.phraseTypes) add(k, type, hit);
        }
      });
    });
    const missing = [...expected].filter((x) => !seen.has(x));
    if (missing.length) {
      throw new MetricInputError(
        `${at}missing predictions for ${missing.length} sentence(s) (image_sentence): ${missing.slice(0, 10).join(', ')}`,
      );
    }
    const out: GroundingRecall = {};
    for (const k of topk) {
      const name = k === -1 ? 'upper_bound' : `R@${k}`;
      out[name] = Object.fromEntries([...tot.get(k)!].map(([cat, n]) => [cat, pos.get(k)!.get(cat)! / n]));
    }
    return out;
  }
}
