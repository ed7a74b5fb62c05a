// Progress lines on stderr: stage, step, losses and an ETA from the stage's own pace.
import { formatDuration } from '@fiber-vl/trainer';

export type Log = (line: string) => void;

export const stderrLog: Log = (line) => process.stderr.write(`${line}\n`);

export class StageProgress {
  private readonly started = performance.now();
  private lastPrint = 0;

  constructor(
    private readonly log: Log,
    private readonly label: string,
    private readonly total: number,
    private readonly everyMs = 5000,
  ) {
    log(`${label}: 0/${total}`);
  }

  /** Prints `label: step/total losses ETA` at most every `everyMs` (and at the last step). */
  tick(step: number, losses: Record<string, number> = {}): void {
    const now = performance.now();
    if (step < this.total && now - this.lastPrint < this.everyMs) return;
    this.lastPrint = now;
    const elapsed = now - this.started;
    const eta = step > 0 ? ((this.total - step) * elapsed) / step : 0;
    const terms = Object.entries(losses)
      .map(([k, v]) => `${k} ${v.toFixed(3)}`)
      .join(' ');
    this.log(
      `${this.label}: ${step}/${this.total}${terms ? ` ${terms}` : ''} (${formatDuration(elapsed / 1000)}, ETA ${formatDuration(eta / 1000)})`,
    );
  }

  seconds(): number {
    return (performance.now() - this.started) / 1000;
  }
}
