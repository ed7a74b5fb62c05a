// Bad input to `fiber-bench eval` (options, missing files, a checkpoint of the wrong kind, unusable
// partial results): reported as one line on stderr with exit code 2, never as a stack trace.
export class EvalInputError extends Error {
  override name = 'EvalInputError';
}

export const fail = (message: string): never => {
  throw new EvalInputError(message);
};
