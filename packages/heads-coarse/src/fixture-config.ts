// Builds a FiberCoarseConfig from the config.json of a FIBER fixture folder (either set's format).
import { validateFiberConfig, type FiberCoarseConfig } from '@fiber-vl/fusion';
import { robertaConfigFromHf } from '@fiber-vl/roberta';
import { fiberCoarseWindowSize, swinConfig } from '@fiber-vl/swin';
import type { CoarseHeadsSelection } from './config.js';

interface FixtureConfigJson {
  swin: { img_size: number; embed_dim: number; depths: number[]; num_heads: number[]; patch_size?: number };
  roberta: Record<string, unknown>;
  fiber?: { hidden_size: number; num_fuse_block: number; vqav2_label_size: number; max_text_len: number };
  fiber_config?: { hidden_size: number; num_fuse_block: number; vqav2_label_size: number; max_text_len: number };
}

export function fiberConfigFromFixture(json: unknown): { config: FiberCoarseConfig; heads: CoarseHeadsSelection } {
  const c = json as FixtureConfigJson;
  const f = c.fiber ?? c.fiber_config;
  if (!c.swin || !c.roberta || !f)
    throw new Error('fixture config.json: expected "swin", "roberta" and "fiber" (or "fiber_config") sections');
  const config = validateFiberConfig({
    swin: swinConfig('swin_base_patch4_window12_384', {
      imageSize: c.swin.img_size,
      embedDim: c.swin.embed_dim,
      depths: c.swin.depths,
      numHeads: c.swin.num_heads,
      windowSize: fiberCoarseWindowSize(c.swin.img_size),
    }),
    roberta: robertaConfigFromHf(c.roberta),
    numFuseBlock: f.num_fuse_block,
    hiddenSize: f.hidden_size,
    maxTextLen: f.max_text_len,
  });
  return {
    config,
    heads: { itc: true, itm: true, mlm: true, vqaLabels: f.vqav2_label_size, nlvr2: true, caption: true },
  };
}
