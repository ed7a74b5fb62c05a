// Files that `fiber-bench train` reads whole (a tokenizer, a --model JSON): regular files only, as
// the data readers take them. A FIFO would block the read for ever and /dev/zero never ends.
import { readFileSync, statSync, type Stats } from 'node:fs';
import { fileKind } from '@fiber-vl/trainer/node';
import { UsageError } from './args.js';

/** The text of a regular file, or a UsageError that names `what`, the path and why. */
export function readRegularText(path: string, what: string): string {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw new UsageError(`${what}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!st.isFile()) throw new UsageError(`${what}: ${path} is ${fileKind(st)}, not a regular file`);
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${what}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
