// The output folder of a fiber-bench command (--out), checked before any work starts: a run that
// cannot write its results should say so at once, not after minutes of training or inference.
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { oneLine } from './one-line.js';

/**
 * What keeps `dir` from being written, as one line naming --out (and the file in the way, if one
 * is), or undefined when it can be: the folder, or where it does not exist yet its nearest existing
 * parent, must be a writable folder. Nothing is created.
 */
export function outFolderProblem(dir: string): string | undefined {
  for (let path = resolve(dir); ; path = dirname(path)) {
    try {
      if (!statSync(path).isDirectory()) return `--out ${dir}: ${path} is a file, not a folder`;
      accessSync(path, constants.W_OK);
      return undefined;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // not there yet, or a file above it (ENOTDIR): look at the parent
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(path) === path)
        return `--out ${dir}: cannot write there (${oneLine((e as Error).message)})`;
    }
  }
}
