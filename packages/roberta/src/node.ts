// Node-only helpers of @fiber-vl/roberta (`@fiber-vl/roberta/node`).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ByteLevelBpeTokenizer, type SpecialTokens } from './tokenizer.js';

/**
 * Loads a byte-level BPE tokenizer from a folder holding HF `tokenizer.json`, or `vocab.json` +
 * `merges.txt` (the files of roberta-base), or from the path of one tokenizer.json.
 */
export function loadTokenizer(path: string, special?: Partial<SpecialTokens>): ByteLevelBpeTokenizer {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8');
    } catch (e) {
      throw new Error(`tokenizer: cannot read ${p} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  };
  const parse = (p: string) => {
    try {
      return JSON.parse(read(p));
    } catch (e) {
      throw new Error(`tokenizer: ${p} is not valid JSON (${(e as Error).message})`);
    }
  };
  if (path.endsWith('.json')) return ByteLevelBpeTokenizer.fromTokenizerJson(parse(path), special);
  if (existsSync(join(path, 'tokenizer.json')))
    return ByteLevelBpeTokenizer.fromTokenizerJson(parse(join(path, 'tokenizer.json')), special);
  if (existsSync(join(path, 'vocab.json')) && existsSync(join(path, 'merges.txt'))) {
    return ByteLevelBpeTokenizer.fromVocabAndMerges(
      parse(join(path, 'vocab.json')),
      read(join(path, 'merges.txt')),
      special,
    );
  }
  throw new Error(`tokenizer: ${path} has neither tokenizer.json nor vocab.json + merges.txt`);
}
