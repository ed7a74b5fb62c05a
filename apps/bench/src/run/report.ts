// The main job's outputs: results.json (schema in apps/bench/README.md), a Markdown summary and a
// self-contained report.html (inline SVG charts and PNG data URLs: it opens offline).
import type { ClassProbeResult } from './class-probe.js';
import type { MlmProbeResult } from './mlm-probe.js';
import type { ProbeResult } from './probe.js';
import type { VqaTypeResult } from './vqa-types.js';

export interface TaskResult {
  /** vqa | caption | retrieval | nlvr2 | rec | grounding | detection */
  task: string;
  metric: string;
  /** Mean over seeds. */
  value: number;
  /** Chance or majority value on the same test split. */
  baseline: number;
  higherIsBetter: boolean;
  /** Per-seed values, in seed order. */
  seeds: number[];
  /** What the value is measured on (split, subset), when it needs saying. */
  note?: string;
  /** The margin over the baseline reaches REQUIRED_MARGIN (`clearsMargin`). */
  clearMargin?: boolean;
}

export interface AblationResult {
  name: string;
  task: string;
  metric: string;
  /** Means over seeds of the full model ("with") and of the ablated one ("without"). */
  with: number;
  without: number;
  seeds: { seed: number; with: number; without: number }[];
  /** Mean of with - without and the spread (max - min) of the per-seed differences. */
  difference: number;
  spread: number;
  /** |difference| is not larger than the seed spread of either side: no claim either way. */
  withinNoise: boolean;
  /** Parameters / FLOPs / seconds of both sides, where the ablation compares architectures. */
  cost?: { with: Cost; without: Cost };
}

/** A linear probe of the Swin (run/probe.ts) over seeds. */
export interface ProbeSummary extends ProbeResult {
  /** Mean test accuracy over seeds. */
  accuracy: number;
  /** Each seed's test accuracy (`chance` is the same for every seed). */
  seeds: number[];
}

export interface Cost {
  parameters: number;
  fusionParameters: number;
  gflops: number;
  ms: number;
}

export interface LossCurve {
  seed: number;
  stage: string;
  objective: string;
  points: [number, number][];
}

export interface GalleryItem {
  title: string;
  png: string;
  width: number;
  height: number;
  boxes: { box: number[]; label: string; score?: number; kind: 'prediction' | 'truth' }[];
  lines: string[];
}

/** The MLM probe of the coarse model's fusion (run/mlm-probe.ts) over seeds. */
export interface MlmProbeSummary extends MlmProbeResult {
  /** Mean accuracy over seeds with the caption's own image. */
  ownImage: number;
  /** Mean accuracy over seeds with another scene's image. */
  otherImage: number;
  /** Each seed's accuracies (`words` and `chance` are the same for every seed: the same words). */
  seeds: Pick<MlmProbeResult, 'ownImage' | 'otherImage'>[];
}

/** The class probe (run/class-probe.ts) over seeds. */
export interface ClassProbeSummary extends ClassProbeResult {
  /** Mean over seeds of the AP of the class's images ranked by ITC similarity to "a <class>". */
  coarseItc: number;
  /** Mean over seeds of the AP of the class's images ranked by the detector's best score. */
  fineDetector: number;
  /** Each seed's APs (`images`, `objectCount` and `chance` are the same for every seed). */
  seeds: Pick<ClassProbeResult, 'coarseItc' | 'fineDetector'>[];
  /** The images whose only object is of the class, and the mean over seeds of the share each model names. */
  singleObject: ClassProbeResult['singleObject'];
}

/** VQA accuracy per question type (run/vqa-types.ts) over seeds. */
export interface VqaTypeSummary extends VqaTypeResult {
  /** Mean accuracy over seeds with each question's own image. */
  ownImage: number;
  /** Mean accuracy over seeds with another test scene's image. */
  otherImage: number;
  /** Each seed's accuracies (`questions`, `majorityAnswer` and `majority` are the same for every seed). */
  seeds: Pick<VqaTypeResult, 'ownImage' | 'otherImage'>[];
}

export interface MainJobResults {
  tasks: TaskResult[];
  ablations: AblationResult[];
  probes: ProbeSummary[];
  mlmProbes: MlmProbeSummary[];
  classProbes: ClassProbeSummary[];
  vqaTypes: VqaTypeSummary[];
  backend: string;
  seconds: number;
  seeds: number[];
  preset: string;
  world: Record<string, unknown>;
  stages: { name: string; steps: number; seconds: number }[];
  losses: LossCurve[];
}

const fmt = (v: number, digits = 3) => (Number.isFinite(v) ? v.toFixed(digits) : String(v));
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The margin of a task over its baseline, in the direction that is better. */
export function margin(t: Pick<TaskResult, 'value' | 'baseline' | 'higherIsBetter'>): number {
  return t.higherIsBetter ? t.value - t.baseline : t.baseline - t.value;
}

/** The margin over its baseline that every task must reach, on the mean over seeds (issue 11's "clear margin"). */
export const REQUIRED_MARGIN = 0.05;

/** The margin reaches REQUIRED_MARGIN (`clearMargin` in results.json). */
export function clearsMargin(t: Pick<TaskResult, 'value' | 'baseline' | 'higherIsBetter'>): boolean {
  return margin(t) >= REQUIRED_MARGIN;
}

/**
 * What the run says about the margins: the rows whose mean is under REQUIRED_MARGIN, and the rows
 * that clear it on the mean while a seed of theirs does not (read those with care).
 */
/** A task row's name in the verdict lines: task and metric. */
const rowName = (t: Pick<TaskResult, 'task' | 'metric'>) => `${t.task} ${t.metric}`;

/** The rows whose mean over seeds is under REQUIRED_MARGIN, by name. */
const rowsUnderMargin = (tasks: readonly TaskResult[]) => tasks.filter((t) => !clearsMargin(t)).map(rowName);

export function marginVerdict(tasks: readonly TaskResult[], seeds: readonly number[]): string[] {
  const weak = rowsUnderMargin(tasks);
  const shaky = tasks.flatMap((t) => {
    if (!clearsMargin(t)) return [];
    const under = t.seeds.flatMap((v, i) =>
      clearsMargin({ ...t, value: v }) ? [] : [`seed ${seeds[i] ?? `#${i + 1}`}: ${fmt(margin({ ...t, value: v }))}`],
    );
    return under.length ? [`${rowName(t)} (${under.join(', ')})`] : [];
  });
  return [
    weak.length
      ? `NOT clearly above baseline (mean margin < ${REQUIRED_MARGIN}): ${weak.join('; ')}`
      : `every task beats its baseline by >= ${REQUIRED_MARGIN} on the mean over seeds`,
    ...(shaky.length
      ? [`above on the mean, but a seed's margin is under ${REQUIRED_MARGIN}: ${shaky.join('; ')}`]
      : []),
  ];
}

/** `--strict`'s line for the task rows under the margin (mean over seeds), or undefined when every row clears it. */
export function strictFailure(tasks: readonly TaskResult[]): string | undefined {
  const weak = rowsUnderMargin(tasks);
  if (!weak.length) return undefined;
  const rows = weak.length === 1 ? '1 task row is' : `${weak.length} task rows are`;
  return `--strict: ${rows} under the ${REQUIRED_MARGIN} margin: ${weak.join('; ')}`;
}

/** The probes as rows (weights probed x stride) of "accuracy (chance)" cells, one per attribute. */
function probeTable(probes: ProbeSummary[]): {
  attributes: string[];
  rows: { model: string; stride: number; cells: string[] }[];
} {
  const attributes = [...new Set(probes.map((p) => p.attribute))];
  const rows: { model: string; stride: number; cells: string[] }[] = [];
  for (const p of probes)
    if (!rows.some((row) => row.model === p.model && row.stride === p.stride))
      rows.push({ model: p.model, stride: p.stride, cells: [] });
  for (const row of rows)
    row.cells = attributes.map((a) => {
      const p = probes.find((q) => q.model === row.model && q.stride === row.stride && q.attribute === a);
      return p ? `${fmt(p.accuracy, 2)} (${fmt(p.chance, 2)})` : '';
    });
  return { attributes, rows };
}

export function resultsMarkdown(r: MainJobResults): string {
  const lines = [
    `## fiber-bench run (${r.preset}, seeds ${r.seeds.join(', ')}, ${r.backend}, ${(r.seconds / 60).toFixed(1)} min)`,
    '',
    '| task | metric | value | per seed | baseline | margin |',
    '|---|---|---|---|---|---|',
    ...r.tasks.map(
      (t) =>
        `| ${t.task} | ${t.metric} | ${fmt(t.value)} | ${t.seeds.map((v) => fmt(v)).join(' / ')} | ${fmt(t.baseline)} | ${fmt(margin(t))}${t.note ? ` (${t.note})` : ''} |`,
    ),
    '',
    ...marginVerdict(r.tasks, r.seeds),
    '',
    '| ablation | task | metric | with | without | difference (spread) | verdict |',
    '|---|---|---|---|---|---|---|',
    ...r.ablations.map(
      (a) =>
        `| ${a.name} | ${a.task} | ${a.metric} | ${fmt(a.with)} | ${fmt(a.without)} | ${fmt(a.difference)} (${fmt(a.spread)}) | ${a.withinNoise ? 'within seed noise' : a.difference > 0 ? 'helps' : 'hurts'} |`,
    ),
  ];
  // one cost table per architecture comparison (its metrics share the cost)
  const costs = r.ablations.filter((a, i) => a.cost && r.ablations.findIndex((b) => b.name === a.name) === i);
  if (costs.length) {
    lines.push(
      '',
      '| ablation | side | parameters | fusion parameters | GFLOPs / forward | ms / forward |',
      '|---|---|---|---|---|---|',
    );
    for (const a of costs) {
      for (const side of ['with', 'without'] as const) {
        const c = a.cost![side];
        lines.push(
          `| ${a.name} | ${side} | ${c.parameters.toLocaleString('en')} | ${c.fusionParameters.toLocaleString('en')} | ${fmt(c.gflops, 3)} | ${fmt(c.ms, 1)} |`,
        );
      }
    }
  }
  const probes = probeTable(r.probes);
  if (probes.rows.length)
    lines.push(
      '',
      `| backbone probe: test accuracy at object centres (chance) | stride | ${probes.attributes.join(' | ')} |`,
      `|---|---|${probes.attributes.map(() => '---|').join('')}`,
      ...probes.rows.map((row) => `| after ${row.model} | ${row.stride} | ${row.cells.join(' | ')} |`),
    );
  if (r.mlmProbes.length)
    lines.push(
      '',
      '| MLM probe: masked caption words predicted | words | own image | another image | chance |',
      '|---|---|---|---|---|',
      ...r.mlmProbes.map(
        (p) =>
          `| after ${p.model}: ${p.attribute} | ${p.words} | ${fmt(p.ownImage, 2)} | ${fmt(p.otherImage, 2)} | ${fmt(p.chance, 2)} |`,
      ),
    );
  if (r.classProbes.length)
    lines.push(
      '',
      `| class probe: AP of the test images showing the class | held out | images | ranked by coarse ITC ("a <class>") | by fine detector | by object count | random | single-object images | named by coarse ITC | by fine detector (chance ${fmt(1 / (Array.isArray(r.world.classes) ? r.world.classes.length : r.classProbes.length), 2)}) |`,
      '|---|---|---|---|---|---|---|---|---|---|',
      ...r.classProbes.map(
        (c) =>
          `| ${c.class} | ${c.heldOut ? 'yes' : 'no'} | ${c.images} | ${fmt(c.coarseItc, 2)} | ${fmt(c.fineDetector, 2)} | ${fmt(c.objectCount, 2)} | ${fmt(c.chance, 2)} | ${c.singleObject ? `${c.singleObject.images} | ${fmt(c.singleObject.coarseItc, 2)} | ${fmt(c.singleObject.fineDetector, 2)}` : '0 | - | -'} |`,
      ),
    );
  if (r.vqaTypes.length)
    lines.push(
      '',
      '| VQA by question type | questions | own image | another image | train majority |',
      '|---|---|---|---|---|',
      ...r.vqaTypes.map(
        (t) =>
          `| ${t.type} | ${t.questions} | ${fmt(t.ownImage, 2)} | ${fmt(t.otherImage, 2)} | ${fmt(t.majority, 2)} ("${t.majorityAnswer}") |`,
      ),
    );
  lines.push('', `stages: ${r.stages.map((s) => `${s.name} ${s.steps} steps ${s.seconds.toFixed(0)} s`).join('; ')}`);
  return lines.join('\n');
}

/** An SVG line chart of loss curves (one line per curve), x = step. */
function lineChart(curves: LossCurve[], title: string): string {
  const W = 420;
  const H = 180;
  const pad = 32;
  const pts = curves.flatMap((c) => c.points);
  if (!pts.length) return '';
  const [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  const [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  const sx = (x: number) => pad + ((x - x0) / Math.max(1e-9, x1 - x0)) * (W - 2 * pad);
  const sy = (y: number) => H - pad + ((y0 - y) / Math.max(1e-9, y1 - y0)) * (H - 2 * pad);
  const colours = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
  const paths = curves
    .map(
      (c, i) =>
        `<polyline fill="none" stroke="${colours[i % colours.length]}" stroke-width="1.5" points="${c.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"><title>${esc(`${c.objective} (seed ${c.seed})`)}</title></polyline>`,
    )
    .join('');
  const legend = curves
    .map((c, i) => `<tspan fill="${colours[i % colours.length]}">■ ${esc(c.objective)} s${c.seed}</tspan>`)
    .join(' ');
  return `<figure><svg viewBox="0 0 ${W} ${H + 14}" width="${W}" height="${H + 14}" role="img" aria-label="${esc(title)}">
<rect x="${pad}" y="${pad}" width="${W - 2 * pad}" height="${H - 2 * pad}" fill="#fafafa" stroke="#ccc"/>${paths}
<text x="${pad}" y="${pad - 8}" font-size="11">${esc(title)}</text>
<text x="${pad}" y="${H - pad + 14}" font-size="9">step ${x0}</text><text x="${W - pad}" y="${H - pad + 14}" font-size="9" text-anchor="end">${x1}</text>
<text x="4" y="${pad + 4}" font-size="9">${fmt(y1, 2)}</text><text x="4" y="${H - pad}" font-size="9">${fmt(y0, 2)}</text>
<text x="${pad}" y="${H + 12}" font-size="9">${legend}</text></svg></figure>`;
}

/** A horizontal bar pair per ablation (with / without) with per-seed dots. */
function ablationBars(a: AblationResult): string {
  const W = 420;
  const max = Math.max(1e-9, ...a.seeds.flatMap((s) => [s.with, s.without]), a.with, a.without);
  const bar = (v: number, y: number, colour: string, label: string) =>
    `<rect x="120" y="${y}" width="${((v / max) * (W - 180)).toFixed(1)}" height="14" fill="${colour}"/><text x="116" y="${y + 11}" font-size="10" text-anchor="end">${esc(label)}</text><text x="${(124 + (v / max) * (W - 180)).toFixed(1)}" y="${y + 11}" font-size="10">${fmt(v)}</text>`;
  const dots = a.seeds
    .flatMap((s) => [
      `<circle cx="${(120 + (s.with / max) * (W - 180)).toFixed(1)}" cy="7" r="2.5" fill="#000"/>`,
      `<circle cx="${(120 + (s.without / max) * (W - 180)).toFixed(1)}" cy="27" r="2.5" fill="#000"/>`,
    ])
    .join('');
  return `<figure><figcaption>${esc(`${a.name}: ${a.task} ${a.metric}`)} — ${a.withinNoise ? 'within seed noise' : `difference ${fmt(a.difference)}`}</figcaption><svg viewBox="0 0 ${W} 40" width="${W}" height="40">${bar(a.with, 0, '#1f77b4', 'with')}${bar(a.without, 20, '#aaa', 'without')}${dots}</svg></figure>`;
}

function galleryItem(g: GalleryItem): string {
  const scale = 192 / Math.max(g.width, g.height);
  const [w, h] = [g.width * scale, g.height * scale];
  const boxes = g.boxes
    .map((b) => {
      const [x1, y1, x2, y2] = b.box.map((v) => v * scale);
      const colour = b.kind === 'truth' ? '#2ca02c' : '#d62728';
      const label = `${b.label}${b.score === undefined ? '' : ` ${b.score.toFixed(2)}`}`;
      return `<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${(x2 - x1).toFixed(1)}" height="${(y2 - y1).toFixed(1)}" fill="none" stroke="${colour}" stroke-width="1.5" ${b.kind === 'truth' ? 'stroke-dasharray="3 2"' : ''}/><text x="${x1.toFixed(1)}" y="${Math.max(8, y1 - 2).toFixed(1)}" font-size="8" fill="${colour}">${esc(label)}</text>`;
    })
    .join('');
  return `<div class="item"><svg width="${w.toFixed(0)}" height="${h.toFixed(0)}" viewBox="0 0 ${w.toFixed(1)} ${h.toFixed(1)}"><image href="${g.png}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" style="image-rendering:pixelated"/>${boxes}</svg><h4>${esc(g.title)}</h4>${g.lines.map((l) => `<p>${esc(l)}</p>`).join('')}</div>`;
}

function probeHtml(probes: ProbeSummary[]): string {
  const t = probeTable(probes);
  if (!t.rows.length) return '';
  const head = `<tr><th>after</th><th>stride</th>${t.attributes.map((a) => `<th>${esc(a)}</th>`).join('')}</tr>`;
  const rows = t.rows
    .map(
      (row) =>
        `<tr><td>${esc(row.model)}</td><td>${row.stride}</td>${row.cells.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`,
    )
    .join('');
  return `<h2>Backbone probes</h2><p>Test accuracy (chance) of a linear probe reading each object's attribute from the Swin's features at the object's centre.</p><table>${head}${rows}</table>\n`;
}

function mlmProbeHtml(probes: MlmProbeSummary[]): string {
  if (!probes.length) return '';
  const rows = probes
    .map(
      (p) =>
        `<tr><td>${esc(p.model)}</td><td>${esc(p.attribute)}</td><td>${p.words}</td><td>${fmt(p.ownImage, 2)}</td><td>${fmt(p.otherImage, 2)}</td><td>${fmt(p.chance, 2)}</td></tr>`,
    )
    .join('');
  return `<h2>MLM probe</h2><p>The MLM head asked for each colour and shape word of the test captions, masked, with the caption's own image and with another scene's image: a fused text encoder that reads the image does better with its own.</p><table><tr><th>after</th><th>attribute</th><th>words</th><th>own image</th><th>another image</th><th>chance</th></tr>${rows}</table>\n`;
}

function classProbeHtml(probes: ClassProbeSummary[]): string {
  if (!probes.length) return '';
  const rows = probes
    .map(
      (c) =>
        `<tr><td>${esc(c.class)}</td><td>${c.heldOut ? 'yes' : 'no'}</td><td>${c.images}</td><td>${fmt(c.coarseItc, 2)}</td><td>${fmt(c.fineDetector, 2)}</td><td>${fmt(c.objectCount, 2)}</td><td>${fmt(c.chance, 2)}</td>${c.singleObject ? `<td>${c.singleObject.images}</td><td>${fmt(c.singleObject.coarseItc, 2)}</td><td>${fmt(c.singleObject.fineDetector, 2)}</td>` : '<td>0</td><td>-</td><td>-</td>'}</tr>`,
    )
    .join('');
  return `<h2>Class probe</h2><p>Average precision of the test images that show each detection class, ranked by the coarse model's ITC similarity to "a &lt;class&gt;", by the fine detector's best score for a box under the class name, and, blind to the name, by the image's number of objects; and, on the images with a single object, how often each model names it (the class it scores highest): which model links the name to the shape (the held-out classes are never boxed in the fine stage).</p><table><tr><th>class</th><th>held out</th><th>images</th><th>coarse ITC</th><th>fine detector</th><th>object count</th><th>random</th><th>single-object images</th><th>named by coarse ITC</th><th>named by fine detector</th></tr>${rows}</table>\n`;
}

function vqaTypesHtml(types: VqaTypeSummary[]): string {
  if (!types.length) return '';
  const rows = types
    .map(
      (t) =>
        `<tr><td>${esc(t.type)}</td><td>${t.questions}</td><td>${fmt(t.ownImage, 2)}</td><td>${fmt(t.otherImage, 2)}</td><td>${fmt(t.majority, 2)} (${esc(t.majorityAnswer)})</td></tr>`,
    )
    .join('');
  return `<h2>VQA by question type</h2><p>Accuracy of the VQA fine-tune per question type, with each question's own image and with another test scene's, against the type's train majority answer: a type answered from the question alone scores the same with either image.</p><table><tr><th>type</th><th>questions</th><th>own image</th><th>another image</th><th>train majority</th></tr>${rows}</table>\n`;
}

export function resultsHtml(r: MainJobResults, gallery: GalleryItem[]): string {
  const byStage = new Map<string, LossCurve[]>();
  for (const c of r.losses) byStage.set(c.stage, [...(byStage.get(c.stage) ?? []), c]);
  const taskRows = r.tasks
    .map(
      (t) =>
        `<tr><td>${esc(t.task)}</td><td>${esc(t.metric)}</td><td>${fmt(t.value)}</td><td>${t.seeds.map((v) => fmt(v)).join(' / ')}</td><td>${fmt(t.baseline)}</td><td class="${clearsMargin(t) ? 'good' : 'bad'}">${fmt(margin(t))}</td><td>${esc(t.note ?? '')}</td></tr>`,
    )
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fiber-vl main job report</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
.good{color:#1a7f37}.bad{color:#cf222e}.charts,.gallery{display:flex;flex-wrap:wrap;gap:12px}.item{width:200px;font-size:11px}.item p{margin:2px 0}h4{margin:4px 0}figure{margin:0}</style></head><body>
<h1>fiber-vl main job</h1><p>FIBER coarse-to-fine on the built-in procedural world: preset <b>${esc(r.preset)}</b>, seeds ${r.seeds.join(', ')}, backend ${esc(r.backend)}, ${(r.seconds / 60).toFixed(1)} minutes.</p>
<h2>Tasks (test split)</h2><p>Margin: the mean over seeds minus the baseline (the baseline minus the mean where lower is better). Every task must clear its baseline by <b>${REQUIRED_MARGIN}</b>: green where the mean does, red where it does not.</p><ul>${marginVerdict(
    r.tasks,
    r.seeds,
  )
    .map((l) => `<li>${esc(l)}</li>`)
    .join(
      '',
    )}</ul><table><tr><th>task</th><th>metric</th><th>mean</th><th>per seed</th><th>baseline</th><th>margin</th><th></th></tr>${taskRows}</table>
${probeHtml(r.probes)}${mlmProbeHtml(r.mlmProbes)}${classProbeHtml(r.classProbes)}${vqaTypesHtml(r.vqaTypes)}<h2>Ablations</h2><div class="charts">${r.ablations.map(ablationBars).join('')}</div>
<pre>${esc(resultsMarkdown(r))}</pre>
<h2>Training losses</h2><div class="charts">${[...byStage].map(([stage, curves]) => lineChart(curves, stage)).join('')}</div>
<h2>Test gallery</h2><p>Red: predictions (label and score); green dashed: ground truth.</p><div class="gallery">${gallery.map(galleryItem).join('')}</div>
<h2>World</h2><pre>${esc(JSON.stringify(r.world, null, 1))}</pre></body></html>`;
}
