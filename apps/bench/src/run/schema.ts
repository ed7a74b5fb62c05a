// The results.json schema of `fiber-bench run` (documented in apps/bench/README.md), as a checker
// that names every field that is wrong. Used by the tests on a produced file.
import { REQUIRED_MARGIN, clearsMargin, margin } from './report.js';

export const TASK_IDS = ['vqa', 'caption', 'retrieval', 'nlvr2', 'rec', 'grounding', 'detection'] as const;
/** The object attributes the backbone probes read (run/probe.ts PROBE_ATTRIBUTES). */
export const PROBE_ATTRIBUTE_IDS = ['shape', 'colour', 'texture', 'size'] as const;
/** The caption words the MLM probe masks (run/mlm-probe.ts). */
export const MLM_PROBE_ATTRIBUTE_IDS = ['shape', 'colour'] as const;
/** The world's VQA question types (@fiber-vl/trainer QUESTION_TYPES). */
export const VQA_TYPE_IDS = ['colour', 'shape', 'count', 'relation', 'yesno', 'exists'] as const;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isFraction = (v: unknown): v is number => isFiniteNumber(v) && v >= 0 && v <= 1;

/** Every problem of a parsed results.json, as `path: what is wrong` (empty when it is valid). */
export function validateResults(r: unknown): string[] {
  const errors: string[] = [];
  const need = (ok: boolean, path: string, what: string) => {
    if (!ok) errors.push(`${path}: ${what}`);
  };
  const got = (v: unknown) => `got ${JSON.stringify(v)}`;
  const text = (at: string, o: Json, k: string) =>
    need(typeof o[k] === 'string' && o[k] !== '', `${at}.${k}`, 'must be a non-empty string');
  const count = (at: string, o: Json, k: string) =>
    need(Number.isInteger(o[k]) && (o[k] as number) > 0, `${at}.${k}`, 'must be a positive integer');
  const oneOf = (at: string, o: Json, k: string, ids: readonly string[]) =>
    need((ids as readonly unknown[]).includes(o[k]), `${at}.${k}`, `must be one of ${ids.join(', ')}`);
  const fractions = (at: string, o: Json, keys: string[]) => {
    for (const k of keys) need(isFraction(o[k]), `${at}.${k}`, `must be a number in [0, 1], ${got(o[k])}`);
  };
  const finite = (at: string, o: Json, keys: string[]) => {
    for (const k of keys) need(isFiniteNumber(o[k]), `${at}.${k}`, `must be a finite number, ${got(o[k])}`);
  };
  /** Each list entry checked by `check` with its path; a missing or empty (when `nonEmpty`) list named. */
  const eachOf = (name: string, nonEmpty: boolean, check: (at: string, o: Json) => void) => {
    const list = (r as Json)[name];
    if (!Array.isArray(list) || (nonEmpty && list.length === 0))
      return errors.push(`${name}: must be a ${nonEmpty ? 'non-empty ' : ''}list`);
    list.forEach((o: unknown, i) => {
      const at = `${name}[${i}]`;
      if (isObject(o)) check(at, o);
      else errors.push(`${at}: not an object`);
    });
  };
  if (!isObject(r)) return ['results: not an object'];
  need(typeof r.backend === 'string', 'backend', 'must be a string');
  need(typeof r.preset === 'string', 'preset', 'must be a string');
  need(isFiniteNumber(r.seconds) && (r.seconds as number) > 0, 'seconds', 'must be a positive number');
  need(
    Array.isArray(r.seeds) && r.seeds.length > 0 && r.seeds.every(Number.isInteger),
    'seeds',
    'must be a list of integers',
  );
  const nSeeds = Array.isArray(r.seeds) ? r.seeds.length : 0;
  /** `seeds`: one entry per seed of the run, each accepted by `ok`. */
  const perSeed = (at: string, o: Json, ok: (s: unknown) => boolean, what: string) =>
    need(
      Array.isArray(o.seeds) && o.seeds.length === nSeeds && o.seeds.every(ok),
      `${at}.seeds`,
      `must hold ${nSeeds} ${what}`,
    );
  /** `seeds`: one { a, b, ... } entry per seed, each value in [0, 1]. */
  const seedFractions = (at: string, o: Json, keys: string[]) =>
    perSeed(
      at,
      o,
      (s) => isObject(s) && keys.every((k) => isFraction(s[k])),
      `{ ${keys.join(', ')} } entries in [0, 1]`,
    );

  eachOf('tasks', false, (at, t) => {
    oneOf(at, t, 'task', TASK_IDS);
    text(at, t, 'metric');
    finite(at, t, ['value', 'baseline']);
    need(typeof t.higherIsBetter === 'boolean', `${at}.higherIsBetter`, 'must be a boolean');
    perSeed(at, t, isFiniteNumber, 'finite numbers');
    need(typeof t.clearMargin === 'boolean', `${at}.clearMargin`, 'must be a boolean');
    if (
      typeof t.clearMargin === 'boolean' &&
      isFiniteNumber(t.value) &&
      isFiniteNumber(t.baseline) &&
      typeof t.higherIsBetter === 'boolean'
    ) {
      const row = { value: t.value, baseline: t.baseline, higherIsBetter: t.higherIsBetter };
      need(
        t.clearMargin === clearsMargin(row),
        `${at}.clearMargin`,
        `must say whether the margin (${margin(row)}) reaches ${REQUIRED_MARGIN}`,
      );
    }
  });
  if (Array.isArray(r.tasks))
    for (const id of TASK_IDS)
      need(
        r.tasks.some((t: unknown) => isObject(t) && t.task === id),
        'tasks',
        `no entry for task "${id}"`,
      );
  eachOf('ablations', true, (at, a) => {
    for (const k of ['name', 'task', 'metric']) text(at, a, k);
    finite(at, a, ['with', 'without', 'difference', 'spread']);
    need(typeof a.withinNoise === 'boolean', `${at}.withinNoise`, 'must be a boolean');
    perSeed(
      at,
      a,
      (s) => isObject(s) && Number.isInteger(s.seed) && isFiniteNumber(s.with) && isFiniteNumber(s.without),
      '{ seed, with, without } entries',
    );
  });
  eachOf('probes', false, (at, p) => {
    text(at, p, 'model');
    count(at, p, 'stride');
    oneOf(at, p, 'attribute', PROBE_ATTRIBUTE_IDS);
    fractions(at, p, ['accuracy', 'chance']);
    perSeed(at, p, isFraction, 'numbers in [0, 1]');
  });
  eachOf('mlmProbes', false, (at, p) => {
    text(at, p, 'model');
    oneOf(at, p, 'attribute', MLM_PROBE_ATTRIBUTE_IDS);
    count(at, p, 'words');
    fractions(at, p, ['ownImage', 'otherImage', 'chance']);
    seedFractions(at, p, ['ownImage', 'otherImage']);
  });
  eachOf('classProbes', false, (at, c) => {
    text(at, c, 'class');
    need(typeof c.heldOut === 'boolean', `${at}.heldOut`, 'must be a boolean');
    count(at, c, 'images');
    fractions(at, c, ['coarseItc', 'fineDetector', 'objectCount', 'chance']);
    seedFractions(at, c, ['coarseItc', 'fineDetector']);
    const single = c.singleObject;
    need(
      single === null ||
        (isObject(single) &&
          Number.isInteger(single.images) &&
          (single.images as number) > 0 &&
          isFraction(single.coarseItc) &&
          isFraction(single.fineDetector)),
      `${at}.singleObject`,
      'must be null or { images: a positive integer, coarseItc and fineDetector in [0, 1] }',
    );
  });
  eachOf('vqaTypes', false, (at, t) => {
    oneOf(at, t, 'type', VQA_TYPE_IDS);
    count(at, t, 'questions');
    need(typeof t.majorityAnswer === 'string', `${at}.majorityAnswer`, 'must be a string');
    fractions(at, t, ['ownImage', 'otherImage', 'majority']);
    seedFractions(at, t, ['ownImage', 'otherImage']);
  });
  return errors;
}
