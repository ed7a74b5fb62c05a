// `fiber-bench train`'s entry: the arguments are checked before the models, tfjs and the data code
// load (./main.js), so that --help and bad usage answer at once.
import { type TrainArgs, TRAIN_USAGE, UsageError, parseTrainArgs } from './args.js';

/** `fiber-bench train ...`: 0 on success, 2 on bad usage (one line on stderr). */
export async function trainMain(argv: string[]): Promise<number> {
  const usage = (e: unknown) => {
    process.stderr.write(`fiber-bench train: ${(e as Error).message}\n`);
    return 2;
  };
  let args: TrainArgs | 'help';
  try {
    args = parseTrainArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) return usage(e);
    throw e;
  }
  if (args === 'help') {
    process.stdout.write(TRAIN_USAGE);
    return 0;
  }
  try {
    const { train } = await import('./main.js');
    await train(args, (line) => process.stdout.write(`${line}\n`));
    return 0;
  } catch (e) {
    if (e instanceof UsageError) return usage(e);
    throw e;
  }
}
