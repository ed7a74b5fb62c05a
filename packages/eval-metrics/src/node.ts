// Node-only helpers of @fiber-vl/eval-metrics (`@fiber-vl/eval-metrics/node`): the bundled Meteor
// resources, JSON file reading with clear errors, the standard file formats, and the fixture runner.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MetricInputError, show } from './errors.js';
import { parseMeteorResources, type MeteorResources } from './caption/meteor/resources.js';
import { parseParaphraseTable, type ParaphraseTable } from './caption/meteor/paraphrase.js';
import { gunzipSync } from 'node:zlib';

/** The folder of Meteor's English data shipped with this package. */
export function bundledMeteorDir(): string {
  const candidates = [
    fileURLToPath(new URL('../data/meteor-en', import.meta.url)),
    fileURLToPath(new URL('../../data/meteor-en', import.meta.url)),
  ];
  const dir = candidates.find((d) => existsSync(join(d, 'english.synsets')));
  if (!dir) throw new Error(`the Meteor data folder is missing from the package (looked in ${candidates.join(', ')})`);
  return dir;
}

let cached: { dir: string; resources: MeteorResources } | undefined;
const METEOR_FILES = ['english.words', 'english.synsets', 'english.exceptions'];

/** Loads english.words / .synsets / .exceptions from `dir` (default: the bundled copy). */
export function loadMeteorResources(dir?: string): MeteorResources {
  const given = dir !== undefined;
  dir ??= bundledMeteorDir();
  if (cached?.dir === dir) return cached.resources;
  const read = (f: string) => {
    const p = join(dir, f);
    if (!existsSync(p)) {
      const problem = `Meteor resources: ${p} does not exist`;
      // a folder the user named is bad input; the bundled one missing is a broken install
      throw given
        ? new MetricInputError(`${problem} (the Meteor data folder needs ${METEOR_FILES.join(', ')})`)
        : new Error(problem);
    }
    return readFileSync(p, 'utf8');
  };
  const resources = parseMeteorResources({
    words: read('english.words'),
    synsets: read('english.synsets'),
    exceptions: read('english.exceptions'),
  });
  cached = { dir, resources };
  return resources;
}

/** Loads a Meteor paraphrase table (paraphrase-en.gz as shipped with Meteor 1.5, or uncompressed). */
export function loadParaphraseTable(path: string): ParaphraseTable {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new MetricInputError(
      `${path}: cannot read the paraphrase table (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  const text = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).toString('utf8') : bytes.toString('utf8');
  return parseParaphraseTable(text, path);
}

/** Reads and parses a JSON file; errors name the file. */
export function readJson<T = unknown>(path: string): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new MetricInputError(
      `${path}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new MetricInputError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

function checkImageId(id: unknown, at: string): void {
  if (id === undefined) throw new MetricInputError(`${at}: "image_id" is missing`);
  if (!(typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)))) {
    throw new MetricInputError(`${at}: "image_id" must be a number or a string, got ${show(id)}`);
  }
}

/** COCO caption annotations ({annotations: [{image_id, caption}]}) -> references per image id. */
export function cocoCaptionReferences(json: unknown, file = 'references'): Map<string, string[]> {
  const anns = (json as { annotations?: unknown })?.annotations;
  if (!Array.isArray(anns))
    throw new MetricInputError(`${file}: expected a COCO captions file with an "annotations" list`);
  const refs = new Map<string, string[]>();
  anns.forEach((a, i) => {
    checkImageId(a?.image_id, `${file}: annotations[${i}]`);
    if (typeof a.caption !== 'string')
      throw new MetricInputError(`${file}: annotations[${i}] (image ${a.image_id}): "caption" is not a string`);
    const k = String(a.image_id);
    (refs.get(k) ?? refs.set(k, []).get(k)!).push(a.caption);
  });
  return refs;
}

/** COCO caption results ([{image_id, caption}]) -> one candidate per image id. */
export function cocoCaptionResults(json: unknown, file = 'results'): Map<string, string> {
  if (!Array.isArray(json)) throw new MetricInputError(`${file}: expected a list of {image_id, caption}`);
  const out = new Map<string, string>();
  json.forEach((r, i) => {
    checkImageId(r?.image_id, `${file}: [${i}]`);
    if (typeof r.caption !== 'string')
      throw new MetricInputError(
        `${file}: [${i}] (image ${r.image_id}): "caption" is not a string (${show(r.caption)})`,
      );
    const k = String(r.image_id);
    if (out.has(k)) throw new MetricInputError(`${file}: [${i}]: a second caption for image ${r.image_id}`);
    out.set(k, r.caption);
  });
  return out;
}

/** A reader for a dataset folder (Flickr30k Entities layout). */
export function folderReader(dir: string): (rel: string) => string {
  return (rel) => {
    const p = join(dir, rel);
    try {
      return readFileSync(p, 'utf8');
    } catch {
      throw new MetricInputError(
        `${p}: cannot read (is ${resolve(dir)} a Flickr30k Entities folder with ${rel.split('/')[0]}?)`,
      );
    }
  };
}

export { runFixtures, type FixtureCheck } from './fixtures.js';

/** JSON files of a folder, sorted. */
export function jsonFilesIn(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new MetricInputError(
      `${dir}: cannot read the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  return names
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(dir, f));
}
