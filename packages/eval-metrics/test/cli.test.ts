// The built CLI on files in the standard formats users already have, and the browser bundle.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';

const pkg = join(__dirname, '..');
const cli = join(pkg, 'dist/cli.js');
const fx = (f: string) => JSON.parse(readFileSync(join(pkg, 'test/fixtures', f), 'utf8'));
let dir: string;
// the timeout turns a hang (a FIFO waited on) into a failure
const run = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
const json = (...args: string[]) => {
  const r = run(...args);
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fiber-metrics-'));
  const cap = fx('captioning.json');
  writeFileSync(
    join(dir, 'captions_val.json'),
    JSON.stringify({
      images: cap.images.map((im: any) => ({ id: im.image_id })),
      annotations: cap.images.flatMap((im: any) =>
        im.references.map((c: string, k: number) => ({ id: im.image_id * 10 + k, image_id: im.image_id, caption: c })),
      ),
    }),
  );
  writeFileSync(
    join(dir, 'results.json'),
    JSON.stringify(cap.images.map((im: any) => ({ image_id: im.image_id, caption: im.candidate }))),
  );
  const vqa = fx('vqa.json');
  writeFileSync(join(dir, 'Q.json'), JSON.stringify({ questions: vqa.questions }));
  writeFileSync(join(dir, 'A.json'), JSON.stringify({ annotations: vqa.annotations }));
  writeFileSync(join(dir, 'R.json'), JSON.stringify(vqa.predictions));
  const det = fx('detection_cocoeval.json').cases[0];
  writeFileSync(join(dir, 'instances.json'), JSON.stringify(det.ground_truth));
  writeFileSync(join(dir, 'dets.json'), JSON.stringify(det.detections));
  const ret = fx('retrieval.json').cases[0];
  writeFileSync(join(dir, 'sims.json'), JSON.stringify(ret.similarity));
  writeFileSync(
    join(dir, 'samples.json'),
    JSON.stringify(
      fx('rec.json').cases.map((c: any) => ({ gt_box: c.gt_box_xywh, pred_boxes: c.pred_boxes_xywh_ranked })),
    ),
  );
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
    for (const k of ['BLEU_4', 'ROUGE_L', 'CIDEr_D', 'METEOR_no_paraphrase'])
      expect(Math.abs(r[k] - e[k])).toBeLessThan(1e-6);
    const s = json('caption', '--refs', 'captions_val.json', '--preds', 'results.json', '--scale100', '--no-meteor');
    expect(s.CIDEr_D).toBeCloseTo(e.CIDEr_D * 100, 6);
  });
  it('caption: a gzipped Meteor paraphrase table switches the label to METEOR', () => {
    writeFileSync(join(dir, 'paraphrase-en.gz'), gzipSync('0.3\nmiddle of\ncenter of\n0.2\non top of\natop\n'));
    const r = json(
      'caption',
      '--refs',
      'captions_val.json',
      '--preds',
      'results.json',
      '--meteor-paraphrase',
      'paraphrase-en.gz',
    );
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
    expect(json('vqa', '--questions', 'Q.json', '--annotations', 'A.json', '--preds', 'R.json').overall).toBeCloseTo(
      fx('vqa.json').expected.overall_accuracy_percent_unrounded,
      9,
    );
    expect(json('detection', '--gt', 'instances.json', '--dets', 'dets.json').AP).toBeCloseTo(
      fx('detection_cocoeval.json').cases[0].expected.stats.AP,
      12,
    );
    expect(json('retrieval', '--sims', 'sims.json').rsum).toBeCloseTo(fx('retrieval.json').cases[0].expected.rsum, 9);
    expect(json('rec', '--samples', 'samples.json').accuracy).toBeCloseTo(fx('rec.json').expected.accuracy, 12);
    writeFileSync(
      join(dir, 'giou.json'),
      JSON.stringify(
        fx('rec-giou.json').cases.map((c: any) => ({ gt_box: c.gt_box_xywh, pred_boxes: c.pred_boxes_xywh_ranked })),
      ),
    );
    const giou = json('rec', '--samples', 'giou.json', '--giou');
    const want = fx('rec-giou.json').expected;
    expect(giou.overlap).toBe('giou');
    for (const k of [1, 5, 10]) expect(giou[`precision_at_${k}`]).toBeCloseTo(want[`precision_at_${k}`], 12);
    expect(giou.n).toBe(want.n);
    // the boxes in the evaluator's input order with their scores: ranked by them, the same values
    writeFileSync(
      join(dir, 'giou-scored.json'),
      JSON.stringify(
        fx('rec-giou.json').cases.map((c: any) => ({
          gt_box: c.gt_box_xywh,
          pred_boxes: c.pred_boxes_xywh,
          scores: c.scores,
        })),
      ),
    );
    const scored = json('rec', '--samples', 'giou-scored.json', '--giou');
    for (const k of [1, 5, 10]) expect(scored[`precision_at_${k}`]).toBeCloseTo(want[`precision_at_${k}`], 12);
    // equal scores: Python's sorted() of (score, box), highest first, puts the box with the larger
    // [x0, y0, x1, y1] first (here the miss at x0 50 before the hit at x0 0)
    writeFileSync(
      join(dir, 'rec-tie.json'),
      JSON.stringify([
        {
          gt_box: [0, 0, 10, 10],
          pred_boxes: [
            [0, 0, 10, 10],
            [50, 0, 10, 10],
          ],
          scores: [0.5, 0.5],
        },
      ]),
    );
    expect(json('rec', '--samples', 'rec-tie.json').accuracy).toBe(0);
    // plain accuracy reads (and checks) the first box only, as recAccuracy does; --giou the first 10
    writeFileSync(
      join(dir, 'rec-deep-ok.json'),
      JSON.stringify([
        {
          gt_box: [0, 0, 1, 1],
          pred_boxes: [
            [0, 0, 1, 1],
            [0, 0, 1, 1],
            [0, 0, 1, 'x'],
          ],
        },
      ]),
    );
    expect(json('rec', '--samples', 'rec-deep-ok.json').accuracy).toBe(1);
    // a null short name reads the longer one, as before (errors name the one read)
    writeFileSync(
      join(dir, 'rec-null-short.json'),
      JSON.stringify([
        { gt_box: null, gt_box_xywh: [0, 0, 10, 10], pred_boxes: null, pred_boxes_xywh_ranked: [[0, 0, 10, 10]] },
      ]),
    );
    expect(json('rec', '--samples', 'rec-null-short.json').accuracy).toBe(1);
    const g = json('grounding', '--flickr-dir', 'flickr', '--preds', 'flickr_preds.json');
    expect(g.any_box['R@1'].all).toBeCloseTo(fx('grounding_flickr30k.json').expected.any_box['R@1'].all, 12);
  });
  it('bad input gets a clear error naming the file, entry and field, and exit code 2', () => {
    writeFileSync(join(dir, 'bad_results.json'), JSON.stringify([{ image_id: 101, caption: 7 }]));
    const r = run('caption', '--refs', 'captions_val.json', '--preds', 'bad_results.json');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('fiber-metrics: bad_results.json: [0] (image 101): "caption" is not a string (7)\n');
    writeFileSync(
      join(dir, 'neg.json'),
      JSON.stringify([
        {
          image_id: fx('detection_cocoeval.json').cases[0].ground_truth.images[0].id,
          category_id: 1,
          bbox: [1, 1, -3, 4],
          score: 0.5,
        },
      ]),
    );
    const d = run('detection', '--gt', 'instances.json', '--dets', 'neg.json');
    expect(d.stderr).toContain('neg.json: [0]: "bbox" has a negative width or height');
    expect(run('vqa', '--questions', 'Q.json').stderr).toContain('missing option(s): --annotations, --preds');
    expect(run('caption', '--refs', 'nope.json', '--preds', 'results.json').stderr).toContain(
      'nope.json: cannot read the file (ENOENT)',
    );
  });
  it('every hostile input exits 2 with one line naming the file (or option) and the field', () => {
    const det = fx('detection_cocoeval.json').cases[0];
    const gt = det.ground_truth;
    const ann0 = gt.annotations[0];
    const files: Record<string, unknown> = {
      'sim_nan.json': '{"similarity": [[1, NaN]], "text_to_image": [0, 0]}', // not JSON: NaN is no JSON literal
      'sim_null.json': {
        similarity: [
          [1, null],
          [0, 1],
        ],
        text_to_image: [0, 1],
      },
      'sim_str.json': {
        similarity: [
          [1, '2'],
          [0, 1],
        ],
        text_to_image: [0, 1],
      },
      'sim_inf.json': '{"similarity": [[1, 1e999], [0, 1]], "text_to_image": [0, 1]}',
      'sim_empty.json': { similarity: [], text_to_image: [] },
      'sim_emptyrow.json': [[]],
      'sim_ragged.json': { similarity: [[1, 2], [3]], text_to_image: [0, 1] },
      'sim_none.json': { text_to_image: [0, 1] },
      'sim_map.json': {
        similarity: [
          [1, 2],
          [3, 4],
        ],
        text_to_image: [0, 9],
      },
      'Q_none.json': { info: {} },
      'Q_noid.json': { questions: [{ question: 'what?' }] },
      'A_empty.json': { annotations: [] },
      'R_empty.json': [],
      'gt_noid.json': { ...gt, images: [{ file_name: 'x.jpg' }, ...gt.images] },
      'gt_dup.json': { ...gt, images: [...gt.images, gt.images[0]] },
      'gt_orphan.json': { ...gt, annotations: [{ ...ann0, image_id: 424242 }] },
      'gt_nan.json': { ...gt, annotations: [{ ...ann0, bbox: [0, 0, null, 1] }] },
      'gt_negw.json': { ...gt, annotations: [{ ...ann0, bbox: [0, 0, -1, 1] }] },
      'dets_score.json': [{ ...det.detections[0], score: 'high' }],
      'dets_obj.json': { annotations: det.detections },
      'res_id.json': [{ image_id: { id: 1 }, caption: 'a dog' }],
      'caps_none.json': { images: [] },
      'rec_null.json': [null],
      'rec_nan.json': [{ gt_box: [0, 0, 'x', 1], pred_boxes: [[0, 0, 1, 1]] }],
      'rec_scores.json': [{ gt_box: [0, 0, 1, 1], pred_boxes: [[0, 0, 1, 1]], scores: [0.5, 0.4] }],
      'rec_scored_box.json': [{ gt_box: [0, 0, 1, 1], pred_boxes: [[0, 0, 1, 1], null], scores: [0.9, 0.1] }],
      // the official fixtures' longer names: errors name them as the file writes them
      'rec_alias_gt.json': [{ gt_box_xywh: [0, 0, -1, 1], pred_boxes_xywh_ranked: [[0, 0, 1, 1]] }],
      'rec_alias_pred.json': [{ gt_box_xywh: [0, 0, 1, 1], pred_boxes_xywh_ranked: [] }],
      'rec_alias_scores.json': [{ gt_box: [0, 0, 1, 1], pred_boxes_xywh_ranked: [[0, 0, 1, 1], 'x'], scores: [1, 2] }],
      'rec_alias_count.json': [{ gt_box: [0, 0, 1, 1], pred_boxes_xywh_ranked: [[0, 0, 1, 1]], scores: [] }],
      'rec_deep.json': [
        {
          gt_box: [0, 0, 1, 1],
          pred_boxes: [
            [0, 0, 1, 1],
            [0, 0, 1, 1],
            [0, 0, 1, 'x'],
          ],
        },
      ],
      'flickr_null.json': [null],
      'flickr_obj.json': { predictions: [] },
      'broken.json': '{"a": ',
    };
    for (const [name, content] of Object.entries(files)) {
      writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
    }
    const cases: [string[], string][] = [
      [['retrieval', '--sims', 'sim_nan.json'], 'sim_nan.json: not valid JSON'],
      [['retrieval', '--sims', 'sim_null.json'], 'sim_null.json: similarity[0][1] is not a finite number: null'],
      [['retrieval', '--sims', 'sim_str.json'], 'sim_str.json: similarity[0][1] is not a finite number: "2"'],
      [['retrieval', '--sims', 'sim_inf.json'], 'sim_inf.json: similarity[0][1] is not a finite number: Infinity'],
      [['retrieval', '--sims', 'sim_empty.json'], 'sim_empty.json: "similarity" has no rows'],
      [['retrieval', '--sims', 'sim_emptyrow.json'], 'sim_emptyrow.json: similarity[0] is empty'],
      [['retrieval', '--sims', 'sim_ragged.json'], 'sim_ragged.json: similarity[1] has 1 values'],
      [['retrieval', '--sims', 'sim_none.json'], 'sim_none.json: "similarity" is missing'],
      [['retrieval', '--sims', 'sim_map.json'], 'sim_map.json: text_to_image[1] = 9 is not an image index'],
      [
        ['retrieval', '--sims', 'sims.json', '--captions-per-image', 'x'],
        '--captions-per-image must be a positive integer',
      ],
      [
        ['vqa', '--questions', 'Q_none.json', '--annotations', 'A.json', '--preds', 'R.json'],
        'Q_none.json: expected a VQA questions file with a "questions" list',
      ],
      [
        ['vqa', '--questions', 'Q_noid.json', '--annotations', 'A.json', '--preds', 'R.json'],
        'Q_noid.json: questions[0]: "question_id"',
      ],
      [
        ['vqa', '--questions', 'Q.json', '--annotations', 'A_empty.json', '--preds', 'R_empty.json'],
        'A_empty.json: "annotations" is empty',
      ],
      [['detection', '--gt', 'gt_noid.json', '--dets', 'dets.json'], 'gt_noid.json: images[0]: "id" is missing'],
      [['detection', '--gt', 'gt_dup.json', '--dets', 'dets.json'], 'gt_dup.json: images[10]: duplicate image id'],
      [
        ['detection', '--gt', 'gt_orphan.json', '--dets', 'dets.json'],
        'gt_orphan.json: annotations[0] (id 1): image_id 424242 is not in "images"',
      ],
      [
        ['detection', '--gt', 'gt_nan.json', '--dets', 'dets.json'],
        'gt_nan.json: annotations[0] (id 1): "bbox" must be [x, y, w, h] numbers',
      ],
      [
        ['detection', '--gt', 'gt_negw.json', '--dets', 'dets.json'],
        'gt_negw.json: annotations[0] (id 1): "bbox" has a negative width',
      ],
      [
        ['detection', '--gt', 'instances.json', '--dets', 'dets_score.json'],
        'dets_score.json: [0]: "score" is missing or not a number',
      ],
      [['detection', '--gt', 'instances.json', '--dets', 'dets_obj.json'], 'dets_obj.json: detections must be a list'],
      [
        ['caption', '--refs', 'captions_val.json', '--preds', 'res_id.json', '--no-meteor'],
        'res_id.json: [0]: "image_id" must be a number or a string',
      ],
      [
        ['caption', '--refs', 'caps_none.json', '--preds', 'results.json', '--no-meteor'],
        'caps_none.json: expected a COCO captions file',
      ],
      [
        ['caption', '--refs', 'captions_val.json', '--preds', 'results.json', '--meteor-data', 'nowhere'],
        'nowhere/english.words does not exist',
      ],
      [['rec', '--samples', 'rec_null.json'], 'rec_null.json: [0]: not an object (null)'],
      [['rec', '--samples', 'rec_nan.json'], 'rec_nan.json: [0]: "gt_box" must be [x, y, w, h] numbers'],
      [
        // every box is checked, named by its place in the file (the last one ranks last here)
        ['rec', '--samples', 'rec_scored_box.json'],
        'rec_scored_box.json: [0]: "pred_boxes[1]" must be [x, y, w, h] numbers, got null',
      ],
      [
        ['rec', '--samples', 'rec_scores.json'],
        'rec_scores.json: [0]: "scores" must be a list of finite numbers, one per box of "pred_boxes" (1)',
      ],
      [
        ['rec', '--samples', 'rec_alias_gt.json'],
        'rec_alias_gt.json: [0]: "gt_box_xywh" has a negative width or height: [0,0,-1,1]',
      ],
      [
        ['rec', '--samples', 'rec_alias_pred.json'],
        'rec_alias_pred.json: [0]: "pred_boxes_xywh_ranked[0]" must be [x, y, w, h] numbers',
      ],
      [
        ['rec', '--samples', 'rec_alias_scores.json'],
        'rec_alias_scores.json: [0]: "pred_boxes_xywh_ranked[1]" must be [x, y, w, h] numbers, got "x"',
      ],
      [
        ['rec', '--samples', 'rec_alias_count.json'],
        'rec_alias_count.json: [0]: "scores" must be a list of finite numbers, one per box of "pred_boxes_xywh_ranked" (1)',
      ],
      // --giou reads (and checks) the first 10 boxes; plain accuracy only the first
      [
        ['rec', '--samples', 'rec_deep.json', '--giou'],
        'rec_deep.json: [0]: "pred_boxes[2]" must be [x, y, w, h] numbers',
      ],
      [
        ['grounding', '--flickr-dir', 'flickr', '--preds', 'flickr_null.json'],
        'flickr_null.json: predictions[0]: not an object (null)',
      ],
      [
        ['grounding', '--flickr-dir', 'flickr', '--preds', 'flickr_obj.json'],
        'flickr_obj.json: expected a list of {image_id, sentence_id, boxes}',
      ],
      [['caption', '--refs', 'broken.json', '--preds', 'results.json'], 'broken.json: not valid JSON'],
      [['fixtures', 'no_such_dir'], 'no_such_dir: cannot read the folder (ENOENT)'],
      [['caption', '--refs'], "Option '--refs <value>' argument missing"],
      [['caption', '--no-such-option'], "Unknown option '--no-such-option'"],
      [['frobnicate'], 'unknown command "frobnicate"'],
    ];
    // files that are not files: /dev/zero never ends and a FIFO without a writer blocks for ever
    writeFileSync(join(dir, 'p_badgz.gz'), Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x67, 0x61, 0x72, 0x62]));
    writeFileSync(join(dir, 'p_empty.txt'), '');
    writeFileSync(join(dir, 'p_lines.txt'), 'hello world\n');
    mkdirSync(join(dir, 'a_folder.json'));
    const meteor = ['caption', '--refs', 'captions_val.json', '--preds', 'results.json', '--meteor-paraphrase'];
    cases.push(
      [
        ['grounding', '--flickr-dir', 'flickr', '--preds', 'flickr_obj.json', '--subset', '../../etc/passwd'],
        'outside the dataset folder',
      ],
      [[...meteor, 'p_badgz.gz'], 'p_badgz.gz: not a valid gzip file'],
      [[...meteor, 'p_empty.txt'], 'p_empty.txt: no paraphrases (the table is empty)'],
      [[...meteor, 'p_lines.txt'], 'p_lines.txt: 1 lines is not a multiple of 3'],
      [
        ['caption', '--refs', 'a_folder.json', '--preds', 'results.json'],
        'a_folder.json: cannot read the file: it is a folder, not a regular file',
      ],
    );
    if (process.platform !== 'win32') {
      symlinkSync('/dev/zero', join(dir, 'zero.json'));
      expect(spawnSync('mkfifo', [join(dir, 'fifo.json')]).status).toBe(0);
      cases.push(
        [
          ['caption', '--refs', 'zero.json', '--preds', 'results.json'],
          'zero.json: cannot read the file: it is a character device, not a regular file',
        ],
        [[...meteor, 'zero.json'], 'zero.json: cannot read the paraphrase table: it is a character device'],
        [
          ['vqa', '--questions', 'fifo.json', '--annotations', 'A.json', '--preds', 'R.json'],
          'fifo.json: cannot read the file: it is a FIFO or pipe',
        ],
      );
    }
    for (const [args, message] of cases) {
      const r = run(...args);
      expect({ args, status: r.status }).toEqual({ args, status: 2 });
      expect(r.stderr, args.join(' ')).toMatch(/^fiber-metrics: [^\n]*\n$/);
      expect(r.stderr, args.join(' ')).toContain(message);
      expect(r.stdout).toBe('');
    }
  });

  it('a slow reader on a pipe still gets the whole report before the process exits', () => {
    // node writes to a pipe asynchronously; exiting without waiting for the flush lost the tail
    const n = 1500;
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    writeFileSync(
      join(dir, 'big_refs.json'),
      JSON.stringify({
        images: ids.map((id) => ({ id })),
        annotations: ids.map((id) => ({ id, image_id: id, caption: `a dog number ${id} on a red mat` })),
      }),
    );
    writeFileSync(
      join(dir, 'big_preds.json'),
      JSON.stringify(ids.map((id) => ({ image_id: id, caption: `a dog on a mat ${id}` }))),
    );
    const r = spawnSync(
      'bash',
      [
        '-c',
        'set -o pipefail; "$@" | { sleep 1; cat; }',
        'bash',
        process.execPath,
        cli,
        'caption',
        '--refs',
        'big_refs.json',
        '--preds',
        'big_preds.json',
        '--no-meteor',
        '--per-image',
      ],
      { cwd: dir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(200_000);
    expect(() => JSON.parse(r.stdout)).not.toThrow();
  });

  it('fixtures DIR fails (exit 1) on a fixture file of unknown name and on an unreadable one', () => {
    mkdirSync(join(dir, 'unknownfx'), { recursive: true });
    writeFileSync(join(dir, 'unknownfx', 'retrieval_v2.json'), JSON.stringify(fx('retrieval.json')));
    writeFileSync(join(dir, 'unknownfx', 'rec.json'), '{"cases": ');
    const r = run('fixtures', 'unknownfx', '--no-meteor');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/FAIL retrieval_v2.json +not a known fixture file/);
    expect(r.stdout).toMatch(/FAIL rec.json +read .*not valid JSON/);
    expect(r.stdout).toMatch(/\n0 checks passed, 2 failed\n$/);
  });

  it('fixtures DIR passes on the public fixtures and fails on a corrupted one', () => {
    const ok = run('fixtures', join(pkg, 'test/fixtures'));
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/\n42 checks passed, 0 failed\n$/);
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
    const out = await build({
      entryPoints: [join(pkg, 'src/index.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
    });
    const code = out.outputFiles[0].text;
    expect(code).not.toMatch(/from ["']node:|require\(["'](fs|path|os|node:)/);
    expect(code.length).toBeGreaterThan(10000);
    expect(code).not.toMatch(/wink-nlp|wink-eng-lite-web-model/); // the NLP model of SPICE_approx stays in its own entry
    const spice = await build({
      entryPoints: [join(pkg, 'src/spice-entry.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
    });
    expect(spice.outputFiles[0].text).not.toMatch(/from ["']node:/);
    expect(spice.outputFiles[0].text).toMatch(/wink-nlp/); // and the check above would see it
  });
});
