// Which heads a coarse FIBER model has and their settings (fiber-spec §2.1). Sizes are not here:
// they follow from the backbone's FiberCoarseConfig (hidden size, vocabulary, Swin widths).

/** The number of VQAv2 answers of the official VQA head (ViLT's answer list, count >= 9). */
export const VQAV2_LABEL_SIZE = 3129;

export interface CoarseHeadsConfig {
  /** `temp` (ITC temperature). */
  itc: boolean;
  /** `itm_score` and `rank_output`. */
  itm: boolean;
  /** `mlm_score` (also the captioning LM head). */
  mlm: boolean;
  /** `vqa_classifier` with this many answers (0 = none). */
  vqaLabels: number;
  nlvr2: boolean;
  /** `cross_modal_att_layers` (captioning adapters). */
  caption: boolean;
  /** ITC temperature: initial value and the clamp applied before every use (official: 0.07, [0.001, 1]). */
  itcTemperature: { init: number; min: number; max: number };
  /** MLM head LayerNorm eps (BertConfig's default 1e-12, not RoBERTa's 1e-5). */
  mlmLayerNormEps: number;
  /** LayerNorm eps of the VQA / NLVR2 classifiers (torch default 1e-5). */
  classifierLayerNormEps: number;
}

export type CoarseHeadsSelection = Pick<CoarseHeadsConfig, 'itc' | 'itm' | 'mlm' | 'vqaLabels' | 'nlvr2' | 'caption'>;

/** The settings every official head shares. */
export const FIBER_HEAD_SETTINGS: Readonly<
  Pick<CoarseHeadsConfig, 'itcTemperature' | 'mlmLayerNormEps' | 'classifierLayerNormEps'>
> = Object.freeze({
  itcTemperature: Object.freeze({ init: 0.07, min: 0.001, max: 1.0 }),
  mlmLayerNormEps: 1e-12,
  classifierLayerNormEps: 1e-5,
});

/** The heads of each official task checkpoint (state_dict_keys_coarse.tsv, column in_task_models). */
export const FIBER_TASK_HEADS = {
  pretrain: { itc: true, itm: true, mlm: true, vqaLabels: 0, nlvr2: false, caption: false },
  vqa: { itc: false, itm: false, mlm: false, vqaLabels: VQAV2_LABEL_SIZE, nlvr2: false, caption: false },
  nlvr2: { itc: false, itm: false, mlm: false, vqaLabels: 0, nlvr2: true, caption: false },
  caption: { itc: false, itm: false, mlm: true, vqaLabels: 0, nlvr2: false, caption: true },
  irtr_itc: { itc: true, itm: false, mlm: false, vqaLabels: 0, nlvr2: false, caption: false },
  irtr_itm: { itc: false, itm: true, mlm: false, vqaLabels: 0, nlvr2: false, caption: false },
} satisfies Record<string, CoarseHeadsSelection>;
export type FiberTask = keyof typeof FIBER_TASK_HEADS;

/**
 * A full heads config from a task name (the official checkpoint's heads) or a selection, with the
 * official settings unless overridden.
 */
export function coarseHeadsConfig(
  heads: FiberTask | (CoarseHeadsSelection & Partial<CoarseHeadsConfig>),
): CoarseHeadsConfig {
  if (typeof heads === 'string') {
    // own keys only: 'toString' is not a task
    if (!Object.hasOwn(FIBER_TASK_HEADS, heads))
      throw new RangeError(
        `coarseHeadsConfig: unknown task "${heads}" (expected ${Object.keys(FIBER_TASK_HEADS).join(', ')})`,
      );
    return { ...FIBER_HEAD_SETTINGS, ...FIBER_TASK_HEADS[heads] };
  }
  if (typeof heads !== 'object' || heads === null || Array.isArray(heads))
    throw new RangeError(
      `coarseHeadsConfig: expected a task name (${Object.keys(FIBER_TASK_HEADS).join(', ')}) or a heads selection, got ${
        heads === null ? 'null' : Array.isArray(heads) ? 'a list' : typeof heads
      }`,
    );
  const cfg: CoarseHeadsConfig = { ...FIBER_HEAD_SETTINGS, ...heads };
  const bad = (field: string, why: string): never => {
    throw new RangeError(`CoarseHeadsConfig.${field}: ${why}`);
  };
  for (const field of ['itc', 'itm', 'mlm', 'nlvr2', 'caption'] as const)
    if (typeof cfg[field] !== 'boolean') bad(field, `must be true or false, got ${String(cfg[field])}`);
  if (typeof cfg.vqaLabels !== 'number' || !Number.isInteger(cfg.vqaLabels) || cfg.vqaLabels < 0)
    bad('vqaLabels', `must be a non-negative integer (0: no VQA head), got ${String(cfg.vqaLabels)}`);
  const t = cfg.itcTemperature;
  if (typeof t !== 'object' || t === null) bad('itcTemperature', `must be { init, min, max }, got ${String(t)}`);
  const { init, min, max } = t;
  if (
    ![init, min, max].every((v) => typeof v === 'number' && Number.isFinite(v)) ||
    !(min > 0 && min <= init && init <= max)
  )
    bad('itcTemperature', `need finite 0 < min <= init <= max, got ${JSON.stringify(t)}`);
  for (const field of ['mlmLayerNormEps', 'classifierLayerNormEps'] as const) {
    const v = cfg[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
      bad(field, `must be a positive finite number, got ${String(v)}`);
  }
  return cfg;
}

/** The official clamp of the learnable ITC temperature. */
export function clampTemperature(
  t: number,
  cfg: Pick<CoarseHeadsConfig, 'itcTemperature'> = FIBER_HEAD_SETTINGS,
): number {
  return Math.min(cfg.itcTemperature.max, Math.max(cfg.itcTemperature.min, t));
}
