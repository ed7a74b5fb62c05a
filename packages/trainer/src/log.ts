// What people expect to see while training: a live progress line on a terminal (step, loss per
// objective, lr, it/s, ETA), plain lines when the output is a file or a pipe, and a JSONL record
// of every step. Sinks are passed in, so this works in browsers too (`@fiber-vl/trainer/node`
// wires them to process.stderr and files).
import type { FitLogger, StepResult } from './loop.js';

/** Where text goes: a stream-like object (process.stderr, a test buffer, a browser console adapter). */
export interface TextSink {
  write(text: string): unknown;
  /** A terminal: the progress line is rewritten in place. */
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressLine {
  step: number;
  totalSteps: number;
  losses: Record<string, number>;
  lr: number;
  itPerSecond: number;
  etaSeconds: number;
  skipped?: string;
}

/** "1h02m", "6m20s", "12s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? v.toFixed(4) : v.toExponential(3);
}

/** "step 120/1000 | itc 1.2340 itm 0.6931 mlm 4.3210 | lr 1.00e-5 | 2.31 it/s | ETA 6m20s". */
export function formatProgress(p: ProgressLine): string {
  const width = String(p.totalSteps).length;
  const losses = Object.entries(p.losses)
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(' ');
  const parts = [
    `step ${String(p.step).padStart(width)}/${p.totalSteps}`,
    losses || 'no loss',
    `lr ${p.lr.toExponential(2)}`,
    `${p.itPerSecond.toFixed(2)} it/s`,
    `ETA ${formatDuration(p.etaSeconds)}`,
  ];
  if (p.skipped) parts.push(`SKIPPED (${p.skipped})`);
  return parts.join(' | ');
}

export interface ProgressPrinterOptions {
  /** Plain output: a line every N steps (and the first, the last and every skipped one). Default 10. */
  every?: number;
  /** Smoothing of the it/s estimate (exponential moving average weight of the newest step). */
  smoothing?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** A FitLogger that prints progress to a sink: one rewritten line on a TTY, plain lines otherwise. */
export class ProgressPrinter implements FitLogger {
  private rate = 0;
  private last = 0;
  private startStep = 0;
  private lineOpen = false;
  private readonly every: number;
  private readonly smoothing: number;
  private readonly now: () => number;

  constructor(
    private readonly sink: TextSink,
    { every = 10, smoothing = 0.1, now = () => Date.now() }: ProgressPrinterOptions = {},
  ) {
    this.every = every;
    this.smoothing = smoothing;
    this.now = now;
  }

  private print(line: string, live = false): void {
    if (this.sink.isTTY) {
      const cols = this.sink.columns ?? 0;
      const shown = cols > 0 && line.length >= cols ? `${line.slice(0, cols - 2)}…` : line;
      this.sink.write(`\r\x1b[2K${shown}${live ? '' : '\n'}`);
      this.lineOpen = live;
    } else this.sink.write(`${line}\n`);
  }

  onStart({ step, totalSteps, resumedFrom }: { step: number; totalSteps: number; resumedFrom?: string }): void {
    this.startStep = step;
    this.last = this.now();
    this.print(
      resumedFrom
        ? `resumed from ${resumedFrom} at step ${step}; training to step ${totalSteps}`
        : `training ${totalSteps} steps`,
    );
  }

  onStep(r: StepResult, { totalSteps }: { totalSteps: number }): void {
    const t = this.now();
    const dt = Math.max(1e-6, (t - this.last) / 1000);
    this.last = t;
    const inst = 1 / dt;
    this.rate = r.step - 1 === this.startStep ? inst : this.rate * (1 - this.smoothing) + inst * this.smoothing;
    const line = formatProgress({
      step: r.step,
      totalSteps,
      losses: r.losses,
      lr: r.lr,
      itPerSecond: this.rate,
      etaSeconds: (totalSteps - r.step) / this.rate,
      skipped: r.skipped ? r.reason : undefined,
    });
    if (this.sink.isTTY) this.print(line, !r.skipped && r.step !== totalSteps);
    else if (r.skipped || r.step === totalSteps || r.step - 1 === this.startStep || r.step % this.every === 0)
      this.print(line);
  }

  onCheckpoint(id: string, step: number): void {
    const reopen = this.lineOpen;
    if (reopen) this.sink.write('\n');
    this.lineOpen = false;
    this.print(`checkpoint at step ${step}: ${id}`);
  }

  onEnd({ step, seconds, stoppedBy }: { step: number; seconds: number; stoppedBy?: Error }): void {
    if (this.lineOpen) this.sink.write('\n');
    this.lineOpen = false;
    this.print(
      stoppedBy
        ? `stopped at step ${step} after ${formatDuration(seconds)}: ${stoppedBy.message}`
        : `done: step ${step} in ${formatDuration(seconds)}`,
    );
  }
}

/** One JSONL record per step: {"step", "loss", "losses", "lr", "grad_norm", "skipped", "reason"?, "time"}. */
export function stepRecord(r: StepResult, seconds: number): Record<string, unknown> {
  return {
    step: r.step,
    loss: finiteOrString(r.loss),
    losses: Object.fromEntries(Object.entries(r.losses).map(([k, v]) => [k, finiteOrString(v)])),
    lr: r.lr,
    grad_norm: finiteOrString(r.gradNorm),
    skipped: r.skipped,
    ...(r.reason ? { reason: r.reason } : {}),
    time: seconds,
  };
}

function finiteOrString(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

/** A FitLogger writing one JSON line per step (and per checkpoint) to a line sink. */
export class JsonlLogger implements FitLogger {
  constructor(private readonly writeLine: (line: string) => void) {}
  onStep(r: StepResult, { seconds }: { totalSteps: number; seconds: number }): void {
    this.writeLine(JSON.stringify(stepRecord(r, seconds)));
  }
  onCheckpoint(id: string, step: number): void {
    this.writeLine(JSON.stringify({ checkpoint: id, step }));
  }
}

/** Calls several loggers in order. */
export function combineLoggers(...loggers: FitLogger[]): FitLogger {
  return {
    onStart: (i) => loggers.forEach((l) => l.onStart?.(i)),
    onStep: (r, i) => loggers.forEach((l) => l.onStep?.(r, i)),
    onCheckpoint: (id, s) => loggers.forEach((l) => l.onCheckpoint?.(id, s)),
    onEnd: (i) => loggers.forEach((l) => l.onEnd?.(i)),
  };
}
