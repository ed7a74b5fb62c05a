// Progress on stderr: items done of the total, the rate of this run (resumed items excluded) and the
// time left. On a terminal one line is rewritten; otherwise a line every few seconds and at the end.

export interface ProgressSink {
  write(text: string): void;
  isTTY?: boolean;
}

const clock = (s: number): string => {
  if (!Number.isFinite(s)) return '?';
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
};

export class Progress {
  private readonly started = performance.now();
  private lastPrint = -Infinity;
  private done: number;
  private skipped = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly resumed: number,
    private readonly sink: ProgressSink,
    private readonly every = sink.isTTY ? 0.5 : 5,
  ) {
    this.done = resumed;
    if (resumed) sink.write(`${label}: ${resumed} of ${total} done in an earlier run (--resume)\n`);
  }

  /** `n` more items finished, `skipped` of them skipped. */
  advance(n: number, skipped = 0): void {
    this.done += n;
    this.skipped += skipped;
    const now = performance.now();
    if ((now - this.lastPrint) / 1000 >= this.every) this.print(now, false);
  }

  finish(): void {
    this.print(performance.now(), true);
  }

  private print(now: number, final: boolean): void {
    this.lastPrint = now;
    const seconds = (now - this.started) / 1000;
    const fresh = this.done - this.resumed;
    const rate = seconds > 0 ? fresh / seconds : 0;
    const pct = this.total ? ((100 * this.done) / this.total).toFixed(1) : '100.0';
    const eta = final ? `took ${clock(seconds)}` : `ETA ${rate > 0 ? clock((this.total - this.done) / rate) : '?'}`;
    const skipped = this.skipped ? `, ${this.skipped} skipped` : '';
    const line = `${this.label}: ${this.done}/${this.total} (${pct}%) ${rate.toFixed(2)}/s ${eta}${skipped}`;
    this.sink.write(this.sink.isTTY ? `\r${line}\x1b[K${final ? '\n' : ''}` : `${line}\n`);
  }
}
