// Child processes of scripts/run.mjs. A signal sent to run.mjs (a CI timeout's SIGTERM, `kill`, a
// closed terminal's SIGHUP) is passed on to the command it runs, and run.mjs waits for that
// command to exit, so that stopping `npm run bench` stops fiber-bench rather than leaving it to
// train on alone. Ctrl-C in a terminal reaches both anyway (one process group); the command then
// sees SIGINT twice: fiber-bench run takes them as one stop, a command that handles only the first
// dies of the second, and either way the exit status is 130.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

export const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The first signal passed on to a command, if any. */
let received;

/**
 * The first stop signal this process passed on to a command (undefined if none): a command may
 * catch it and still exit 0, and the caller should then stop rather than go on to its next step.
 */
export function stopSignal() {
  return received;
}

/** The shell's exit status for a process stopped by `signal`: 128 + its number. */
export function signalStatus(signal) {
  return 128 + (constants.signals[signal] ?? 0);
}

/**
 * Runs `bin argv` (child_process.spawn options) and resolves with its exit status; a command killed
 * by a signal gives the shell's 128 + the signal's number. Rejects when it cannot be started.
 */
export function runChild(bin, argv, options) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, argv, options);
    const forward = (signal) => {
      received ??= signal;
      // a child that already exited has nothing to stop
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    };
    for (const s of FORWARDED_SIGNALS) process.on(s, forward);
    const settle = () => {
      for (const s of FORWARDED_SIGNALS) process.off(s, forward);
    };
    child.once('error', (e) => {
      settle();
      reject(e);
    });
    child.once('exit', (code, signal) => {
      settle();
      resolve(code ?? signalStatus(signal));
    });
  });
}
