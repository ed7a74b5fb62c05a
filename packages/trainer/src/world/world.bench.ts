// Speed of the world (run: cd packages/trainer && npx vitest bench --run src/world/world.bench.ts).
// Not a test: numbers depend on the machine and its load; the README quotes one run.
import { bench, describe } from 'vitest';
import { encodePng } from './png.js';
import { renderScene } from './raster.js';
import { createWorld } from './world.js';

const square = createWorld({ seed: 1, imageSize: [128, 128], aspectRatios: [1] });
const scenes = Array.from({ length: 64 }, (_, i) => square.scene('train', i));
const small = createWorld({ seed: 1, preset: 'small' });
let i = 0;

describe('world, 128 x 128 scenes (default objects, textures, backgrounds)', () => {
  bench('layout (scene)', () => void square.scene('train', i++ % 4000));
  bench('render (renderScene)', () => void renderScene(scenes[i++ % scenes.length]));
  bench('layout + text (sample)', () => void square.sample('train', i++ % 4000));
  bench('PNG encode', () => void encodePng(renderScene(scenes[i++ % scenes.length])));
});

describe('world, small preset (64-80 px)', () => {
  bench('sample + render', () => void renderScene(small.sample('train', i++ % 3000).scene));
  bench('NLVR2 pair', () => void small.nlvr2('train', i++ % 1500));
});
