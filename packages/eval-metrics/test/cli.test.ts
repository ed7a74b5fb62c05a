// The built CLI on files in the standard formats users already have, and the browser bundle.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';

const pkg = join(__dirname, '..');
const cli = join(pkg, 'dist/cli.js');
const fx = (f: string) => JSON.parse(readFileSync(join(pkg, 'test/fixtures', f), 'utf8'));
let dir: string;
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8' });
const json = (...args: string[]) => {
  const r = run(...args);
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fiber-metrics-'));
  const cap = fx('captioning.json');
  writeFileSync(join(dir, 'captions_val.json'), JSON.stringify({ images: cap.images.map((im: any) => ({ id: im.image_id })), annotations: cap.images.flatMap((im: any) => im.references.map((c: string, k: number) => ({ id: im.image_id * 10 + k, image_id: im.image_id, caption: c }))) }));
  writeFileSync(join(dir, 'results.json'), JSON.stringify(cap.images.map((im: any) => ({ image_id: im.image_id, caption: im.candidate }))));
  const vqa = fx('vqa.json');
  writeFileSync(join(dir, 'Q.json'), JSON.stringify({ questions: vqa.questions }));
  writeFileSync(join(dir, 'A.json'), JSON.stringify({ annotations: vqa.annotations }));
  writeFileSync(join(dir, 'R.json'), JSON.stringify(vqa.predictions));
  const det = fx('detection_cocoeval.json').cases[0];
  writeFileSync(join(dir, 'instances.json'), JSON.stringify(det.ground_truth));
  writeFileSync(join(dir, 'dets.json'), JSON.stringify(det.detections));
  const ret = fx('retrieval.json').cases[0];
  writeFileSync(join(dir, 'sims.json'), JSON.stringify(ret.similarity));
  writeFileSync(join(dir, 'samples.json'), JSON.stringify(fx('rec.json').cases.map((c: any) => ({ gt_box: c.gt_box_xywh, pred_boxes: c.pred_boxes_xywh_ranked }))));
  const g = fx('grounding_flickr30k.json');
  for (const [rel, text] of Object.entries(g.flickr30k_entities_files as Record<string, string>)) {
    mkdirSync(join(dir, 'flickr', rel.split('/').slice(0, -1).join('/')), { recursive: true });
    writeFileSync(join(dir, 'flickr', rel), text);
  }
  writeFileSync(join(dir, 'flickr_preds.json'), JSON.stringify(g.predictions));
});

describe('fiber-metrics CLI', () => {
  it('caption: COCO captions + results files, raw scale, with METEOR', () => {
    const r = json('caption', '--refs', 'captions_val.json', '--preds', 'results.json');
    const e = fx('captioning.json').corpus_scores;
    for (const k of ['BLEU_4', 'ROUGE_L', 'CIDEr_D', 'METEOR_no_paraphrase']) expect(Math.abs(r[k] - e[k])).toBeLessThan(1e-6);
    const s = json('caption', '--refs', 'captions_val.json', '--preds', 'results.json', '--scale100', '--no-meteor');
    expect(s.CIDEr_D).toBeCloseTo(e.CIDEr_D * 100, 6);
  });
  it('caption: a gzipped Meteor paraphrase table switches the label to METEOR', () => {
    writeFileSync(join(dir, 'paraphrase-en.gz'), gzipSync('0.3\nmiddle of\ncenter of\n0.2\non top of\natop\n'));
    const r = json('caption', '--refs', 'captions_val.json', '--preds', 'results.json', '--meteor-paraphrase', 'paraphrase-en.gz');
    expect(r.METEOR).toBeGreaterThanOrEqual(fx('captioning.json').corpus_scores.METEOR_no_paraphrase - 1e-12);
    expect(r.METEOR_no_paraphrase).toBeUndefined();
  });
  it('caption: --table prints a readable table and --spice is labelled approximate', () => {
    const r = run('caption', '--refs', 'captions_val.json', '--preds', 'results.json', '--table', '--spice');
    expect(r.stdout).toMatch(/^BLEU_1 +0\.\d{4}$/m);
    expect(r.stdout).toMatch(/^SPICE_approx +0\.\d{4}$/m);
    expect(r.stdout).toContain('approximate');
  });
  it('vqa, detection, retrieval, rec, grounding on standard files', () => {
    expect(json('vqa', '--questions', 'Q.json', '--annotations', 'A.json', '--preds', 'R.json').overall).toBeCloseTo(fx('vqa.json').expected.overall_accuracy_percent_unrounded, 9);
    expect(json('detection', '--gt', 'instances.json', '--dets', 'dets.json').AP).toBeCloseTo(fx('detection_cocoeval.json').cases[0].expected.stats.AP, 12);
    expect(json('retrieval', '--sims', 'sims.json').rsum).toBeCloseTo(fx('retrieval.json').cases[0].expected.rsum, 9);
    expect(json('rec', '--samples', 'samples.json').accuracy).toBeCloseTo(fx('rec.json').expected.accuracy, 12);
    const g = json('grounding', '--flickr-dir', 'flickr', '--preds', 'flickr_preds.json');
    expect(g.any_box['R@1'].all).toBeCloseTo(fx('grounding_flickr30k.json').expected.any_box['R@1'].all, 12);
  });
  it('bad input gets a clear error naming the file, entry and field, and exit code 2', () => {
    writeFileSync(join(dir, 'bad_results.json'), JSON.stringify([{ image_id: 101, caption: 7 }]));
    const r = run('caption', '--refs', 'captions_val.json', '--preds', 'bad_results.json');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('fiber-metrics: bad_results.json: [0] (image 101): "caption" is not a string (7)\n');
    writeFileSync(join(dir, 'neg.json'), JSON.stringify([{ image_id: fx('detection_cocoeval.json').cases[0].ground_truth.images[0].id, category_id: 1, bbox: [1, 1, -3, 4], score: 0.5 }]));
    const d = run('detection', '--gt', 'instances.json', '--dets', 'neg.json');
    expect(d.stderr).toContain('neg.json: [0]: "bbox" has a negative width or height');
    expect(run('vqa', '--questions', 'Q.json').stderr).toContain('missing option(s): --annotations, --preds');
    expect(run('caption', '--refs', 'nope.json', '--preds', 'results.json').stderr).toContain('nope.json: cannot read the file (ENOENT)');
  });
  it('fixtures DIR passes on the public fixtures and fails on a corrupted one', () => {
    const ok = run('fixtures', join(pkg, 'test/fixtures'));
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/\n40 checks passed, 0 failed\n$/);
    const bad = fx('rec.json');
    bad.expected.accuracy = 0.9;
    mkdirSync(join(dir, 'badfx'), { recursive: true });
    writeFileSync(join(dir, 'badfx', 'rec.json'), JSON.stringify(bad));
    const r = run('fixtures', 'badfx');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/FAIL rec.json +accuracy/);
  });
});

describe('browser bundle', () => {
  it('the main entry bundles for the browser without Node built-ins', async () => {
    const out = await build({ entryPoints: [join(pkg, 'src/index.ts')], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent' });
    const code = out.outputFiles[0].text;
    expect(code).not.toMatch(/from ["']node:|require\(["'](fs|path|os|node:)/);
    expect(code.length).toBeGreaterThan(10000);
    expect(code).not.toMatch(/wink-nlp|wink-eng-lite-web-model/); // the NLP model of SPICE_approx stays in its own entry
    const spice = await build({ entryPoints: [join(pkg, 'src/spice-entry.ts')], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent' });
    expect(spice.outputFiles[0].text).not.toMatch(/from ["']node:/);
    expect(spice.outputFiles[0].text).toMatch(/wink-nlp/); // and the check above would see it
  });
});
