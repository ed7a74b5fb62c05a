// What the page and the Node test driver exchange (page.evaluate returns plain JSON).

/** One compared quantity: a tensor against the reference, a score, a thrown error's text. */
export interface Check {
  name: string;
  /** max |ours - reference| (Infinity for a shape mismatch, NaN found, or a failed expectation). */
  maxAbsError: number;
  /** What `ok` was judged on when it is not maxAbsError: max |diff| / max(1, max |reference|). */
  relError?: number;
  tolerance: number;
  ok: boolean;
  detail?: string;
}

export interface SuiteResult {
  suite: string;
  params: Record<string, unknown>;
  ok: boolean;
  checks: Check[];
  /** Suite-specific facts (the backend that ran, timings, thread counts). */
  info: Record<string, unknown>;
  ms: number;
  /** The error that stopped the suite, with its stack. */
  error?: string;
}

export type SuiteParams = Record<string, string | number | boolean | undefined>;

export interface FiberTestsApi {
  suites: string[];
  run(name: string, params?: SuiteParams): Promise<SuiteResult>;
}

declare global {
  interface Window {
    fiberTests?: FiberTestsApi;
  }
}
