// What turns a user's image and text into model inputs, in the browser:
// - @fiber-vl/swin: a PNG (written by the page's canvas from the fixture's raw pixels) decoded by
//   browserImageDecoder (createImageBitmap + OffscreenCanvas), then FIBER's eval transform: the
//   pixel_values of the official code, bit for bit (fixtures/fiber/set-a, set-b).
// - @fiber-vl/roberta: the byte-level BPE trainer against HF tokenizers' merges and ids
//   (fixtures/bpe), and a tokenizer loaded from vocab.json + merges.txt text (what a page fetches)
//   encoding and decoding Unicode text.
import { ByteLevelBpeTokenizer, mergesToText, trainByteLevelBpe } from '@fiber-vl/roberta';
import { browserImageDecoder, fiberImageTransform } from '@fiber-vl/swin';
import { compareNumbers } from '../check.js';
import { fetchJson, openRemoteSafetensors } from '../fixtures.js';
import type { Check, SuiteParams } from '../protocol.js';

/** RGB bytes [H, W, 3] -> PNG bytes, through an OffscreenCanvas (lossless, no colour profile). */
async function encodePng(rgb: ArrayLike<number>, width: number, height: number): Promise<Uint8Array> {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set([rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], 255], 4 * i);
  }
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext('2d')!.putImageData(new ImageData(rgba, width, height), 0, 0);
  return new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
}

async function imageChecks(): Promise<Check[]> {
  const checks: Check[] = [];
  for (const [set, key] of [
    ['set-a', 'image'],
    ['set-b', 'pixel_values'],
  ]) {
    const inputs = await openRemoteSafetensors(`/fixtures/fiber/${set}/inputs.safetensors`);
    const expected = (await inputs.readRaw(key)).data as Float32Array;
    const size = inputs.info(key).shape[3];
    for (const k of [0, 1]) {
      const raw = await inputs.readRaw(`raw_image_${k}`);
      const [h, w] = raw.shape;
      const png = await encodePng(Array.from(raw.data as ArrayLike<number | bigint>, Number), w, h);
      const decoded = await browserImageDecoder.decode(png);
      const ours = fiberImageTransform(decoded, size);
      const ref = expected.subarray(k * ours.length, (k + 1) * ours.length);
      let mismatches = 0;
      for (let i = 0; i < ours.length; i++) if (ours[i] !== ref[i]) mismatches++;
      checks.push({
        name: `${set} raw_image_${k}: PNG -> browserImageDecoder -> fiberImageTransform(${size}) = official ${key}`,
        maxAbsError: mismatches,
        tolerance: 0,
        ok: mismatches === 0 && decoded.width === w && decoded.height === h,
        detail: `${w}x${h} -> ${size}x${size}, ${png.byteLength} PNG bytes, ${mismatches} values differ`,
      });
    }
  }
  return checks;
}

interface HfBpeFixture {
  corpus: string[];
  cases: { vocabSize: number; minFrequency: number; vocab: Record<string, number>; merges: [string, string][] }[];
}

async function textChecks(): Promise<Check[]> {
  const checks: Check[] = [];
  const hf = (await fetchJson('/fixtures/bpe/hf-bpe-trainer.json')) as HfBpeFixture;
  for (const c of hf.cases) {
    const model = trainByteLevelBpe(hf.corpus, { vocabSize: c.vocabSize, minFrequency: c.minFrequency });
    const same =
      JSON.stringify(model.merges) === JSON.stringify(c.merges) &&
      JSON.stringify(model.vocab) === JSON.stringify(c.vocab);
    checks.push({
      name: `trainByteLevelBpe = HF BpeTrainer (vocabSize ${c.vocabSize}, minFrequency ${c.minFrequency})`,
      maxAbsError: same ? 0 : Infinity,
      tolerance: 0,
      ok: same,
    });
  }
  const model = trainByteLevelBpe(hf.corpus, { vocabSize: 400 });
  const tok = ByteLevelBpeTokenizer.fromVocabAndMerges(JSON.stringify(model.vocab), mergesToText(model.merges));
  const texts = [...hf.corpus.slice(0, 10), 'Ünïcödé ✓ 𝔘𝔫𝔦 — \ud83d\ude00 \t\n', 'x<mask>y', ''];
  const bad = texts.filter((t) => tok.decode(tok.encode(t).ids, { skipSpecialTokens: false }) !== `<s>${t}</s>`);
  checks.push({
    name: 'tokenizer from vocab.json + merges.txt text: encode / decode round trip',
    maxAbsError: bad.length,
    tolerance: 0,
    ok: bad.length === 0,
    detail: bad.map((t) => JSON.stringify(t)).join(', '),
  });
  const ids = tok.encode('how many stars are there?', { maxLength: 12, padding: 'max_length' });
  checks.push(
    compareNumbers(
      'padded encoding: length and attention mask',
      [
        [ids.ids.length, 12],
        [ids.attentionMask.reduce((a, b) => a + b, 0), tok.encode('how many stars are there?').ids.length],
      ],
      0,
    ),
  );
  return checks;
}

export async function inputsSuite(_params: SuiteParams): Promise<{ checks: Check[]; info: Record<string, unknown> }> {
  return { checks: [...(await imageChecks()), ...(await textChecks())], info: {} };
}
