// The demo page: a backend (WebGPU when it has a hardware adapter, else wasm with threads), models
// from checkpoint files or from the folder `npm run bench` wrote, an image, and the four tasks
// through the packages' pipelines (FiberPipeline for VQA / captions / ITC / ITM, FiberFinePipeline
// for detection and grounding). Each inference disposes what it allocated: the status line shows
// the tensor count before and after.
import { FiberPipeline } from '@fiber-vl/heads-coarse';
import { FiberFinePipeline, type Detection } from '@fiber-vl/heads-fine';
import { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import { browserImageDecoder, type RawImage } from '@fiber-vl/swin';
import { type BackendInfo, BACKEND_NAMES, type BackendName, initBackend, tf } from '@fiber-vl/tensor-core';
import {
  CheckpointError,
  type CoarseTask,
  type LoadedCoarse,
  type LoadedFine,
  type LoadedModel,
  loadCheckpoint,
} from './checkpoint.js';

/** The element with `id`, checked to be of `type`. */
function el<T extends HTMLElement>(id: string, type: new () => T): T {
  const e = document.getElementById(id);
  if (!(e instanceof type)) throw new Error(`demo page: #${id} is not a ${type.name}`);
  return e;
}

const state: {
  coarse: LoadedCoarse[];
  fine?: LoadedFine;
  tokenizer?: ByteLevelBpeTokenizer;
  image?: RawImage;
  busy: boolean;
} = { coarse: [], busy: false };

function setStatus(id: string, text: string, error = false) {
  const p = el(id, HTMLParagraphElement);
  p.textContent = text;
  p.classList.toggle('error', error);
}

const ms = (t: number) => (t >= 10_000 ? `${(t / 1000).toFixed(1)} s` : `${Math.round(t)} ms`);
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

// ---- backend ------------------------------------------------------------------------------------

function describeBackend(info: BackendInfo): string {
  if (info.name === 'webgpu') {
    const a = info.adapter;
    const adapter = a ? [a.vendor, a.architecture, a.description].filter(Boolean).join(' / ') : 'unknown adapter';
    return `WebGPU on ${adapter}${a?.software ? ' (software)' : ''}`;
  }
  if (info.name === 'wasm') {
    const isolated = crossOriginIsolated ? '' : ' — not cross-origin isolated, so no threads (see the README)';
    return `WebAssembly (${info.simd ? 'SIMD, ' : ''}${info.threads ?? 1} thread${info.threads === 1 ? '' : 's'})${isolated}`;
  }
  return 'plain JavaScript (cpu backend: slow)';
}

/** Why this browser cannot run the demo, or undefined. */
function unsupportedReason(): string | undefined {
  if (typeof WebAssembly !== 'object') return 'This browser has no WebAssembly.';
  if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function')
    return 'This browser lacks createImageBitmap / OffscreenCanvas, which decode images.';
  return undefined;
}

async function startBackend(): Promise<BackendInfo> {
  const asked = new URLSearchParams(location.search).get('backend') ?? 'auto';
  const backend = BACKEND_NAMES.find((b) => b === asked);
  if (asked !== 'auto' && !backend)
    throw new Error(`?backend=${asked}: expected auto or one of ${BACKEND_NAMES.join(', ')}`);
  // auto: WebGPU with a hardware adapter, else wasm (a software WebGPU adapter is slower than wasm);
  // ?backend=webgpu takes a software adapter too
  return initBackend({
    backend: backend ?? 'auto',
    wasmPath: new URL('wasm/', document.baseURI).href,
    allowSoftwareWebGpu: backend === 'webgpu',
  });
}

// ---- models -------------------------------------------------------------------------------------

const progress = el('load-progress', HTMLProgressElement);

function showLoaded() {
  const list = el('loaded', HTMLUListElement);
  list.replaceChildren(
    ...[...state.coarse, ...(state.fine ? [state.fine] : [])].map((m) => {
      const li = document.createElement('li');
      const tasks = m.kind === 'fine' ? 'detection, grounding' : m.tasks.join(', ');
      li.textContent = `${m.name}: ${m.about} — ${tasks} (loaded in ${ms(m.ms)})`;
      return li;
    }),
  );
  if (state.tokenizer) {
    const li = document.createElement('li');
    li.textContent = `tokenizer: ${state.tokenizer.vocabSize} tokens`;
    list.append(li);
  }
  updateTasks();
}

function coarseFor(task: CoarseTask): LoadedCoarse | undefined {
  return state.coarse.find((m) => m.tasks.includes(task));
}

/** Each task's section says what it still needs. */
function updateTasks() {
  const needs = (what: string | undefined, id: string, section: string) => {
    el(section, HTMLDivElement).setAttribute('aria-disabled', String(what !== undefined));
    if (!state.busy) setStatus(id, what ? `Needs ${what}.` : '');
  };
  const common = !state.tokenizer ? 'a tokenizer' : !state.image ? 'an image' : undefined;
  needs(coarseFor('vqa') ? common : 'a coarse model with a VQA head', 'vqa-status', 'vqa');
  needs(coarseFor('caption') ? common : 'a coarse model with a caption head', 'caption-status', 'caption');
  needs(state.fine ? common : 'a fine-grained model', 'detect-status', 'detect');
  needs(coarseFor('itc') || coarseFor('itm') ? common : 'a coarse model with ITC or ITM heads', 'rank-status', 'rank');
}

function disposeModels(kind: 'coarse' | 'fine' | 'all') {
  if (kind !== 'fine') {
    for (const m of state.coarse) m.model.dispose();
    state.coarse = [];
  }
  if (kind !== 'coarse') {
    state.fine?.model.dispose();
    state.fine = undefined;
  }
}

/** Loads checkpoint blobs into the `want` slot, replacing what it held; reports each file's problem. */
async function loadModels(files: { blob: Blob; name: string; want: 'coarse' | 'fine' }[]): Promise<boolean> {
  progress.hidden = false;
  const loaded: LoadedModel[] = [];
  try {
    for (const [i, f] of files.entries()) {
      setStatus('load-status', `Reading ${f.name} (${(f.blob.size / 2 ** 20).toFixed(1)} MiB)…`);
      const model = await loadCheckpoint(f.blob, f.name, {
        want: f.want,
        onProgress: (p) => {
          progress.value = (i + p) / files.length;
        },
      });
      loaded.push(model);
    }
  } catch (e) {
    for (const m of loaded) m.model.dispose();
    const kind =
      e instanceof CheckpointError
        ? {
            'not-a-checkpoint': 'Not a checkpoint',
            'wrong-kind': 'Wrong kind of checkpoint',
            unsupported: 'Cannot use',
          }[e.reason]
        : 'Loading failed';
    setStatus('load-status', `${kind}: ${errorText(e)}`, true);
    return false;
  } finally {
    progress.hidden = true;
  }
  const wants = new Set(files.map((f) => f.want));
  disposeModels(wants.size === 2 ? 'all' : wants.has('fine') ? 'fine' : 'coarse');
  for (const m of loaded) {
    if (m.kind === 'fine') state.fine = m;
    else state.coarse.push(m);
  }
  const total = loaded.reduce((a, m) => a + m.ms, 0);
  setStatus('load-status', `Loaded ${loaded.length} model${loaded.length === 1 ? '' : 's'} in ${ms(total)}.`);
  showLoaded();
  return true;
}

/** vocab.json + merges.txt, or a HF tokenizer.json. */
async function loadTokenizer(files: File[]) {
  const byName = (test: (n: string) => boolean) => files.find((f) => test(f.name.toLowerCase()));
  const json = byName((n) => n === 'tokenizer.json');
  const vocab = byName((n) => n.endsWith('.json') && n !== 'tokenizer.json');
  const merges = byName((n) => n.endsWith('.txt'));
  try {
    if (json) state.tokenizer = ByteLevelBpeTokenizer.fromTokenizerJson(JSON.parse(await json.text()));
    else if (vocab && merges)
      state.tokenizer = ByteLevelBpeTokenizer.fromVocabAndMerges(await vocab.text(), await merges.text());
    else throw new Error('pick both vocab.json and merges.txt (or one tokenizer.json)');
    setStatus('load-status', `Tokenizer loaded: ${state.tokenizer.vocabSize} tokens.`);
  } catch (e) {
    setStatus('load-status', `Tokenizer: ${errorText(e)}`, true);
  }
  showLoaded();
}

// ---- bench-trained models ---------------------------------------------------------------------

interface BenchModels {
  preset: string;
  seed: number;
  tokenizer: { vocab: string; merges: string };
  models: { file: string; kind: 'coarse' | 'fine'; stage: string; bytes: number }[];
  classes: { name: string; heldOut: boolean }[];
  images: { file: string; question: string; answer: string; caption: string }[];
}

/** A file of the bench-trained models folder, which the server maps to models/ beside the page. */
const modelsUrl = (file: string) => new URL(`models/${file}`, document.baseURI).href;

function isBenchModels(v: unknown): v is BenchModels {
  if (typeof v !== 'object' || v === null) return false;
  const o: { models?: unknown; images?: unknown; classes?: unknown; tokenizer?: unknown } = v;
  return (
    Array.isArray(o.models) && Array.isArray(o.images) && Array.isArray(o.classes) && typeof o.tokenizer === 'object'
  );
}

async function fetchOk(url: string): Promise<Response> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r;
}

async function offerBenchModels() {
  let index: unknown;
  try {
    const r = await fetch(modelsUrl('models.json'));
    index = r.ok ? await r.json() : undefined;
  } catch {
    index = undefined;
  }
  if (!isBenchModels(index) || !index.models.length) {
    el('no-bench', HTMLParagraphElement).hidden = false;
    return;
  }
  const bench = index;
  el('bench', HTMLDivElement).hidden = false;
  const mib = bench.models.reduce((a, m) => a + m.bytes, 0) / 2 ** 20;
  el('bench-about', HTMLSpanElement).textContent =
    `preset ${bench.preset}, seed ${bench.seed}: ${bench.models.map((m) => m.stage).join(', ')} (${mib.toFixed(1)} MiB)`;
  el('use-bench', HTMLButtonElement).addEventListener('click', async () => {
    const [vocab, merges] = await Promise.all(
      [bench.tokenizer.vocab, bench.tokenizer.merges].map(async (f) => (await fetchOk(modelsUrl(f))).text()),
    );
    state.tokenizer = ByteLevelBpeTokenizer.fromVocabAndMerges(vocab, merges);
    const files = await Promise.all(
      bench.models.map(async (m) => ({
        blob: await (await fetchOk(modelsUrl(m.file))).blob(),
        name: m.file,
        want: m.kind,
      })),
    );
    if (!(await loadModels(files))) return;
    el('prompt', HTMLInputElement).value = bench.classes.map((c) => c.name).join(', ');
    el('texts', HTMLTextAreaElement).value = bench.images.map((i) => i.caption).join('\n');
    showSamples(bench);
  });
}

/** The bench's test images as thumbnails; a click makes one the image and fills in its question. */
function showSamples(bench: BenchModels) {
  const box = el('samples', HTMLDivElement);
  box.replaceChildren(
    ...bench.images.map((s) => {
      const img = document.createElement('img');
      img.src = modelsUrl(s.file);
      img.alt = s.caption;
      img.title = `${s.caption} — Q: ${s.question} A: ${s.answer}`;
      img.addEventListener('click', async () => {
        await useImage(await (await fetchOk(img.src)).blob(), s.file);
        el('question', HTMLInputElement).value = s.question;
      });
      return img;
    }),
  );
}

// ---- image ---------------------------------------------------------------------------------------

async function useImage(blob: Blob, name: string) {
  let image: RawImage;
  try {
    image = await browserImageDecoder.decode(new Uint8Array(await blob.arrayBuffer()));
  } catch (e) {
    setStatus('image-status', `Cannot decode ${name} as an image (${errorText(e)}).`, true);
    return;
  }
  state.image = image;
  const preview = el('preview', HTMLImageElement);
  URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(blob);
  el('stage', HTMLDivElement).hidden = false;
  el('boxes', HTMLDivElement).replaceChildren();
  setStatus('image-status', `${name}: ${image.width} x ${image.height}`);
  updateTasks();
}

// ---- tasks -------------------------------------------------------------------------------------

/** Runs one inference with the buttons disabled; the status gets the time and the tensor counts. */
async function runTask(statusId: string, what: string, fn: () => Promise<string>) {
  if (state.busy) return;
  state.busy = true;
  document.body.dataset.busy = 'true';
  for (const b of document.querySelectorAll('button')) b.disabled = true;
  const before = tf.memory().numTensors;
  setStatus(statusId, `${what}…`);
  const t0 = performance.now();
  try {
    const summary = await fn();
    setStatus(
      statusId,
      `${summary} — ${ms(performance.now() - t0)} (tf tensors: ${before} before, ${tf.memory().numTensors} after)`,
    );
  } catch (e) {
    setStatus(statusId, `${what} failed: ${errorText(e)}`, true);
  } finally {
    state.busy = false;
    delete document.body.dataset.busy;
    for (const b of document.querySelectorAll('button')) b.disabled = false;
  }
}

/** The inputs every task needs, or an error saying which is missing. */
function ready(): { tokenizer: ByteLevelBpeTokenizer; image: RawImage } {
  if (!state.tokenizer) throw new Error('load a tokenizer first');
  if (!state.image) throw new Error('pick an image first');
  return { tokenizer: state.tokenizer, image: state.image };
}

function coarsePipeline(task: CoarseTask): { pipe: FiberPipeline; m: LoadedCoarse } {
  const m = coarseFor(task);
  if (!m) throw new Error(`no loaded coarse model has the ${task} head`);
  const { tokenizer } = ready();
  const vocab = m.model.config.roberta.vocabSize;
  if (tokenizer.vocabSize !== vocab)
    throw new Error(`the tokenizer has ${tokenizer.vocabSize} tokens, ${m.name} was trained with ${vocab}`);
  return { pipe: new FiberPipeline(m.model, tokenizer, { answers: m.answers }), m };
}

el('ask', HTMLButtonElement).addEventListener('click', () =>
  runTask('vqa-status', 'Answering', async () => {
    const question = el('question', HTMLInputElement).value.trim();
    if (!question) throw new Error('type a question');
    const { pipe, m } = coarsePipeline('vqa');
    const r = await pipe.vqa(ready().image, question, { topK: 5 });
    el('vqa-answers', HTMLOListElement).replaceChildren(
      ...r.scores.map((s) => {
        const li = document.createElement('li');
        li.className = 'answer';
        li.textContent = `${s.answer} — ${s.score.toFixed(3)}`;
        return li;
      }),
    );
    return `"${r.answer}"${m.answers ? '' : ' (this checkpoint carries no answer list: label numbers shown)'}`;
  }),
);

el('describe', HTMLButtonElement).addEventListener('click', () =>
  runTask('caption-status', 'Captioning (beam search)', async () => {
    const { pipe, m } = coarsePipeline('caption');
    const text = el('caption-text', HTMLParagraphElement);
    let steps = 0;
    const r = await pipe.caption(ready().image, {
      beamSize: m.beamSize,
      // the best beam so far after each step (beams are re-ranked, so earlier words may change);
      // a task boundary lets the browser paint it
      onPartial: async (partial) => {
        steps++;
        text.textContent = `${partial} …`;
        await new Promise((resolve) => setTimeout(resolve, 0));
      },
    });
    text.textContent = r.caption || '(empty caption)';
    return `beam ${m.beamSize}, ${r.tokens.filter((t) => t > 2).length} tokens, streamed over ${steps} steps`;
  }),
);

/** One absolutely positioned div per box, in percent of the image so that it follows the display size. */
function drawBoxes(detections: Detection[], image: RawImage) {
  el('boxes', HTMLDivElement).replaceChildren(
    ...detections.map((d) => {
      const [x1, y1, x2, y2] = d.box;
      const div = document.createElement('div');
      div.className = 'box';
      div.dataset.label = d.label.name;
      div.dataset.score = d.score.toFixed(4);
      Object.assign(div.style, {
        left: `${(100 * x1) / image.width}%`,
        top: `${(100 * y1) / image.height}%`,
        width: `${(100 * Math.max(0, x2 - x1)) / image.width}%`,
        height: `${(100 * Math.max(0, y2 - y1)) / image.height}%`,
      });
      const label = document.createElement('span');
      label.textContent = `${d.label.name} ${d.score.toFixed(2)}`;
      div.append(label);
      return div;
    }),
  );
}

el('find', HTMLButtonElement).addEventListener('click', () =>
  runTask('detect-status', 'Finding boxes', async () => {
    const { tokenizer, image } = ready();
    const fine = state.fine;
    if (!fine) throw new Error('load a fine-grained model first');
    const text = el('prompt', HTMLInputElement).value.trim();
    if (!text) throw new Error('type a class list or a caption');
    const minScore = Number(el('min-score', HTMLInputElement).value) || 0;
    const maxBoxes = Math.max(1, Math.floor(Number(el('max-boxes', HTMLInputElement).value) || 10));
    const pipe = new FiberFinePipeline(fine.model, tokenizer, fine.pipeline);
    const mode = document.querySelector<HTMLInputElement>('input[name=detect-mode]:checked')?.value;
    let found: Detection[];
    let truncation: string;
    if (mode === 'phrase') {
      const r = await pipe.refer(image, text);
      found = r.candidates;
      truncation = r.truncation.message;
    } else {
      const names = text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const r = await pipe.detect(image, names, { preNmsThresh: Math.min(minScore, 0.05) });
      found = r.detections;
      truncation = r.truncation.message;
    }
    const shown = found
      .filter((d) => d.score >= minScore)
      .sort((a, b) => b.score - a.score)
      .slice(0, maxBoxes);
    drawBoxes(shown, image);
    const best = shown[0] ? `, best: ${shown[0].label.name} ${shown[0].score.toFixed(3)}` : '';
    return `${shown.length} box${shown.length === 1 ? '' : 'es'} with score >= ${minScore}${best}${truncation ? ` (${truncation})` : ''}`;
  }),
);

el('rank-texts', HTMLButtonElement).addEventListener('click', () =>
  runTask('rank-status', 'Ranking', async () => {
    const texts = el('texts', HTMLTextAreaElement)
      .value.split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
    if (!texts.length) throw new Error('type one text per line');
    const { image } = ready();
    let itc: number[] | undefined;
    let itm: number[] | undefined;
    if (coarseFor('itc')) {
      const r = await coarsePipeline('itc').pipe.retrieve([image], texts, { mode: 'itc', k: texts.length });
      itc = Array.from(r.scores);
    }
    if (coarseFor('itm')) {
      const { pipe } = coarsePipeline('itm');
      itm = [];
      for (const t of texts) itm.push((await pipe.itm(image, t)).matchProbability);
    }
    const key = itm ?? itc ?? [];
    const order = texts.map((_, i) => i).sort((a, b) => key[b] - key[a]);
    const table = el('rank-table', HTMLTableElement);
    table.hidden = false;
    table.tBodies[0].replaceChildren(
      ...order.map((i) => {
        const tr = document.createElement('tr');
        for (const v of [texts[i], itc?.[i].toFixed(4) ?? '—', itm?.[i].toFixed(4) ?? '—']) {
          const td = document.createElement('td');
          td.textContent = v;
          tr.append(td);
        }
        return tr;
      }),
    );
    return `${texts.length} texts, sorted by ${itm ? 'ITM' : 'ITC'}`;
  }),
);

// ---- files: pickers and drag and drop -----------------------------------------------------------

const onFiles: Record<string, (files: File[]) => void> = {
  coarse: (files) => void loadModels(files.map((f) => ({ blob: f, name: f.name, want: 'coarse' as const }))),
  fine: (files) => void (files[0] && loadModels([{ blob: files[0], name: files[0].name, want: 'fine' }])),
  tokenizer: (files) => void loadTokenizer(files),
  image: (files) => void (files[0] && useImage(files[0], files[0].name)),
};
for (const [slot, input] of [
  ['coarse', 'coarse-files'],
  ['fine', 'fine-file'],
  ['tokenizer', 'tokenizer-files'],
  ['image', 'image-file'],
] as const) {
  const field = el(input, HTMLInputElement);
  field.addEventListener('change', () => onFiles[slot]([...(field.files ?? [])]));
}
for (const zone of document.querySelectorAll<HTMLElement>('.drop')) {
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const slot = zone.dataset.slot;
    if (slot && onFiles[slot]) onFiles[slot]([...(e.dataTransfer?.files ?? [])]);
  });
}

// ---- start -------------------------------------------------------------------------------------

async function main() {
  const reason = unsupportedReason();
  let info: BackendInfo | undefined;
  let failure = reason;
  if (!failure) {
    try {
      info = await startBackend();
    } catch (e) {
      failure = `No backend could start: ${errorText(e)}`;
    }
  }
  if (failure || !info) {
    el('backend', HTMLParagraphElement).textContent = 'Unsupported browser.';
    const box = el('unsupported', HTMLParagraphElement);
    box.textContent = `${failure} The demo needs a browser with WebGPU or WebAssembly (a current Chrome, Edge, Firefox or Safari).`;
    box.hidden = false;
    document.body.dataset.ready = 'unsupported';
    return;
  }
  el('backend', HTMLParagraphElement).textContent = `Backend: ${describeBackend(info)}`;
  document.body.dataset.backend = info.name satisfies BackendName;
  el('app', HTMLElement).hidden = false;
  updateTasks();
  await offerBenchModels();
  document.body.dataset.ready = 'true';
}

void main();
