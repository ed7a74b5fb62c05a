// Node-only helpers of @fiber-vl/eval-metrics (`@fiber-vl/eval-metrics/node`): the bundled Meteor
// resources, JSON file reading with clear errors, the standard file formats, and the fixture runner.
import { closeSync, constants, existsSync, fstatSync, openSync, readFileSync, readdirSync, type Stats } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MetricInputError, show } from './errors.js';
import { parseMeteorResources, type MeteorResources } from './caption/meteor/resources.js';
import { parseParaphraseTable, type ParaphraseTable } from './caption/meteor/paraphrase.js';
import { gunzipSync } from 'node:zlib';
import { constants as bufferConstants } from 'node:buffer';

/** The longest string Node makes from a buffer: a table that decompresses to more cannot be read. */
const MAX_STRING_BYTES = bufferConstants.MAX_STRING_LENGTH;

const kindOf = (st: Stats) =>
  st.isDirectory()
    ? 'a folder'
    : st.isFIFO()
      ? 'a FIFO or pipe'
      : st.isCharacterDevice()
        ? 'a character device'
        : st.isBlockDevice()
          ? 'a block device'
          : st.isSocket()
            ? 'a socket'
            : 'not a file';

/**
 * A regular file's bytes. Anything else is refused, naming its kind: a FIFO without a writer would
 * block for ever, and a device such as /dev/zero never ends. Opened non-blocking, so that a FIFO is
 * refused rather than waited on. Errors are `cannot read` lines naming the file and the cause.
 */
function readRegularFile(path: string, what: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new MetricInputError(
      `${path}: cannot read ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile())
      throw new MetricInputError(`${path}: cannot read ${what}: it is ${kindOf(st)}, not a regular file`);
    return readFileSync(fd);
  } catch (e) {
    if (e instanceof MetricInputError) throw e;
    throw new MetricInputError(
      `${path}: cannot read ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  } finally {
    closeSync(fd);
  }
}

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
    return readRegularFile(p, 'the Meteor resources').toString('utf8');
  };
  const [words, synsets, exceptions] = METEOR_FILES.map((f) => join(dir, f));
  const resources = parseMeteorResources(
    { words: read('english.words'), synsets: read('english.synsets'), exceptions: read('english.exceptions') },
    { words, synsets, exceptions },
  );
  cached = { dir, resources };
  return resources;
}

/** Loads a Meteor paraphrase table (paraphrase-en.gz as shipped with Meteor 1.5, or uncompressed). */
export function loadParaphraseTable(path: string): ParaphraseTable {
  const bytes = readRegularFile(path, 'the paraphrase table');
  let text: string;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      // Buffer.toString gives '' past its limit: refuse a table that decompresses to more
      text = gunzipSync(bytes, { maxOutputLength: MAX_STRING_BYTES }).toString('utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new MetricInputError(
        code === 'ERR_BUFFER_TOO_LARGE'
          ? `${path}: the paraphrase table decompresses to more than ${MAX_STRING_BYTES} bytes`
          : `${path}: not a valid gzip file (${(e as Error).message})`,
      );
    }
  } else text = bytes.toString('utf8');
  return parseParaphraseTable(text, path);
}

/** Reads and parses a JSON file; errors name the file. */
export function readJson<T = unknown>(path: string): T {
  const bytes = readRegularFile(path, 'the file');
  let text: string;
  try {
    text = bytes.toString('utf8');
  } catch (e) {
    // past V8's longest string (about 512 MiB)
    throw new MetricInputError(
      `${path}: too large to read as JSON text (${bytes.length} bytes: ${(e as Error).message})`,
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

/** A reader for a dataset folder (Flickr30k Entities layout); names that would leave the folder are refused. */
export function folderReader(dir: string): (rel: string) => string {
  const root = resolve(dir);
  return (rel) => {
    const p = join(dir, rel);
    if (!resolve(p).startsWith(root + sep))
      throw new MetricInputError(`${p}: outside the dataset folder ${root} (an id or --subset with "..")`);
    if (!existsSync(p))
      throw new MetricInputError(
        `${p}: cannot read (is ${root} a Flickr30k Entities folder with ${rel.split('/')[0]}?)`,
      );
    return readRegularFile(p, 'the file').toString('utf8');
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
