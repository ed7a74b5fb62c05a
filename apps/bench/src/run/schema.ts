// The results.json schema of `fiber-bench run` (documented in apps/bench/README.md), as a checker
// that names every field that is wrong. Used by the tests on a produced file.

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
  if (!Array.isArray(r.tasks)) errors.push('tasks: must be a list');
  else {
    r.tasks.forEach((t: unknown, i) => {
      const at = `tasks[${i}]`;
      if (!isObject(t)) return errors.push(`${at}: not an object`);
      need((TASK_IDS as readonly unknown[]).includes(t.task), `${at}.task`, `must be one of ${TASK_IDS.join(', ')}`);
      need(typeof t.metric === 'string' && t.metric !== '', `${at}.metric`, 'must be a non-empty string');
      need(isFiniteNumber(t.value), `${at}.value`, `must be a finite number, got ${JSON.stringify(t.value)}`);
      need(isFiniteNumber(t.baseline), `${at}.baseline`, `must be a finite number, got ${JSON.stringify(t.baseline)}`);
      need(typeof t.higherIsBetter === 'boolean', `${at}.higherIsBetter`, 'must be a boolean');
      need(
        Array.isArray(t.seeds) && t.seeds.length === nSeeds && t.seeds.every(isFiniteNumber),
        `${at}.seeds`,
        `must hold ${nSeeds} finite numbers`,
      );
    });
    for (const id of TASK_IDS)
      need(
        r.tasks.some((t: unknown) => isObject(t) && t.task === id),
        'tasks',
        `no entry for task "${id}"`,
      );
  }
  if (!Array.isArray(r.ablations) || r.ablations.length === 0) errors.push('ablations: must be a non-empty list');
  else {
    r.ablations.forEach((a: unknown, i) => {
      const at = `ablations[${i}]`;
      if (!isObject(a)) return errors.push(`${at}: not an object`);
      for (const k of ['name', 'task', 'metric'])
        need(typeof a[k] === 'string' && a[k] !== '', `${at}.${k}`, 'must be a non-empty string');
      for (const k of ['with', 'without', 'difference', 'spread'])
        need(isFiniteNumber(a[k]), `${at}.${k}`, `must be a finite number, got ${JSON.stringify(a[k])}`);
      need(typeof a.withinNoise === 'boolean', `${at}.withinNoise`, 'must be a boolean');
      need(
        Array.isArray(a.seeds) &&
          a.seeds.length === nSeeds &&
          a.seeds.every(
            (s: unknown) =>
              isObject(s) && Number.isInteger(s.seed) && isFiniteNumber(s.with) && isFiniteNumber(s.without),
          ),
        `${at}.seeds`,
        `must hold ${nSeeds} { seed, with, without } entries`,
      );
    });
  }
  if (!Array.isArray(r.probes)) errors.push('probes: must be a list');
  else {
    r.probes.forEach((p: unknown, i) => {
      const at = `probes[${i}]`;
      if (!isObject(p)) return errors.push(`${at}: not an object`);
      need(typeof p.model === 'string' && p.model !== '', `${at}.model`, 'must be a non-empty string');
      need(Number.isInteger(p.stride) && (p.stride as number) > 0, `${at}.stride`, 'must be a positive integer');
      need(
        (PROBE_ATTRIBUTE_IDS as readonly unknown[]).includes(p.attribute),
        `${at}.attribute`,
        `must be one of ${PROBE_ATTRIBUTE_IDS.join(', ')}`,
      );
      for (const k of ['accuracy', 'chance'])
        need(isFraction(p[k]), `${at}.${k}`, `must be a number in [0, 1], got ${JSON.stringify(p[k])}`);
      need(
        Array.isArray(p.seeds) && p.seeds.length === nSeeds && p.seeds.every(isFraction),
        `${at}.seeds`,
        `must hold ${nSeeds} numbers in [0, 1]`,
      );
    });
  }
  if (!Array.isArray(r.mlmProbes)) errors.push('mlmProbes: must be a list');
  else {
    r.mlmProbes.forEach((p: unknown, i) => {
      const at = `mlmProbes[${i}]`;
      if (!isObject(p)) return errors.push(`${at}: not an object`);
      need(typeof p.model === 'string' && p.model !== '', `${at}.model`, 'must be a non-empty string');
      need(
        (MLM_PROBE_ATTRIBUTE_IDS as readonly unknown[]).includes(p.attribute),
        `${at}.attribute`,
        `must be one of ${MLM_PROBE_ATTRIBUTE_IDS.join(', ')}`,
      );
      need(Number.isInteger(p.words) && (p.words as number) > 0, `${at}.words`, 'must be a positive integer');
      for (const k of ['ownImage', 'otherImage', 'chance'])
        need(isFraction(p[k]), `${at}.${k}`, `must be a number in [0, 1], got ${JSON.stringify(p[k])}`);
      need(
        Array.isArray(p.seeds) &&
          p.seeds.length === nSeeds &&
          p.seeds.every((s: unknown) => isObject(s) && isFraction(s.ownImage) && isFraction(s.otherImage)),
        `${at}.seeds`,
        `must hold ${nSeeds} { ownImage, otherImage } entries in [0, 1]`,
      );
    });
  }
  if (!Array.isArray(r.classProbes)) errors.push('classProbes: must be a list');
  else {
    r.classProbes.forEach((c: unknown, i) => {
      const at = `classProbes[${i}]`;
      if (!isObject(c)) return errors.push(`${at}: not an object`);
      need(typeof c.class === 'string' && c.class !== '', `${at}.class`, 'must be a non-empty string');
      need(typeof c.heldOut === 'boolean', `${at}.heldOut`, 'must be a boolean');
      need(Number.isInteger(c.images) && (c.images as number) > 0, `${at}.images`, 'must be a positive integer');
      for (const k of ['coarseItc', 'fineDetector', 'objectCount', 'chance'])
        need(isFraction(c[k]), `${at}.${k}`, `must be a number in [0, 1], got ${JSON.stringify(c[k])}`);
      need(
        Array.isArray(c.seeds) &&
          c.seeds.length === nSeeds &&
          c.seeds.every((s: unknown) => isObject(s) && isFraction(s.coarseItc) && isFraction(s.fineDetector)),
        `${at}.seeds`,
        `must hold ${nSeeds} { coarseItc, fineDetector } entries in [0, 1]`,
      );
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
  }
  if (!Array.isArray(r.vqaTypes)) errors.push('vqaTypes: must be a list');
  else {
    r.vqaTypes.forEach((t: unknown, i) => {
      const at = `vqaTypes[${i}]`;
      if (!isObject(t)) return errors.push(`${at}: not an object`);
      need(
        (VQA_TYPE_IDS as readonly unknown[]).includes(t.type),
        `${at}.type`,
        `must be one of ${VQA_TYPE_IDS.join(', ')}`,
      );
      need(
        Number.isInteger(t.questions) && (t.questions as number) > 0,
        `${at}.questions`,
        'must be a positive integer',
      );
      need(typeof t.majorityAnswer === 'string', `${at}.majorityAnswer`, 'must be a string');
      for (const k of ['ownImage', 'otherImage', 'majority'])
        need(isFraction(t[k]), `${at}.${k}`, `must be a number in [0, 1], got ${JSON.stringify(t[k])}`);
      need(
        Array.isArray(t.seeds) &&
          t.seeds.length === nSeeds &&
          t.seeds.every((s: unknown) => isObject(s) && isFraction(s.ownImage) && isFraction(s.otherImage)),
        `${at}.seeds`,
        `must hold ${nSeeds} { ownImage, otherImage } entries in [0, 1]`,
      );
    });
  }
  return errors;
}
