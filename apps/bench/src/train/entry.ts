// `fiber-bench train`'s entry: the arguments are checked before the models, tfjs and the data code
// load (./main.js), so that --help and bad usage answer at once.
import { TRAIN_USAGE, UsageError, parseTrainArgs } from './args.js';

/** `fiber-bench train ...`: 0 on success, 2 on bad usage (one line on stderr). */
export async function trainMain(argv: string[]): Promise<number> {
  try {
    const args = parseTrainArgs(argv);
    if (args === 'help') {
      process.stdout.write(TRAIN_USAGE);
      return 0;
    }
    const { train } = await import('./main.js');
    await train(args, (line) => process.stdout.write(`${line}\n`));
    return 0;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`fiber-bench train: ${e.message}\n`);
    return 2;
  }
}
