// Node decodes the command line as UTF-8 and puts U+FFFD where the bytes are not UTF-8, so a file
// name that is not valid UTF-8 reaches fiber-bench as another name: --data said "does not exist"
// of a folder that does, and --out wrote to a new folder named with U+FFFD.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * One line on the first argument that holds U+FFFD and names nothing on disk (`--opt=VALUE` is
 * read after its `=`), or undefined. A name that holds the character itself exists and passes.
 */
export function undecodableArgument(argv: readonly string[]): string | undefined {
  for (const arg of argv) {
    if (!arg.includes('\uFFFD')) continue;
    const value = arg.startsWith('--') && arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : arg;
    if (value.includes('\uFFFD') && !existsSync(resolve(value)))
      return `${JSON.stringify(arg)} holds U+FFFD, which Node puts where an argument's bytes are not valid UTF-8: a file name that is not UTF-8 cannot be passed on the command line (rename it, or link to it under a UTF-8 name)`;
  }
  return undefined;
}
