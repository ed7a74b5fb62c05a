// Vitest setup file of every package: a test file that leaves a file handle from
// fs.promises.open open fails, naming where each handle was opened (and closes them). Node closes
// a forgotten FileHandle only when it is garbage collected, with a deprecation warning (an error in
// later Node versions), and a reader that forgets one on an error path holds the file open in a
// user's long-running process. Descriptors from fs.open / openSync and streams opened by path are
// not tracked.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { afterAll } from 'vitest';

type Open = typeof fs.promises.open;
interface Tracker {
  /** Handles opened and not yet closed, with the stack of their open(). */
  handles: Map<fs.promises.FileHandle, string>;
}
// one wrapper per worker process: test files share the built-in module, setup runs per file
const KEY = Symbol.for('fiber-vl.test.file-handles');
const holder = globalThis as { [KEY]?: Tracker };
if (!holder[KEY]) {
  const tracker: Tracker = { handles: new Map() };
  const original: Open = fs.promises.open;
  const tracked: Open = async (...args) => {
    const where = new Error(); // before the await: the caller's frames are all still there
    const handle = await original(...args);
    tracker.handles.set(handle, `${String(args[0])}\n${where.stack?.split('\n').slice(2, 8).join('\n')}`);
    const close = handle.close.bind(handle);
    handle.close = () => {
      tracker.handles.delete(handle);
      return close();
    };
    return handle;
  };
  fs.promises.open = tracked;
  syncBuiltinESMExports();
  holder[KEY] = tracker;
}
const tracker = holder[KEY];
// this setup runs before each test file is collected, so a handle its top level opens counts too
tracker.handles.clear();

// Runs after the test file's own afterAll and onTestFinished hooks: vitest runs after-hooks in
// reverse order of registration (its default `sequence.hooks: 'stack'`), and this file registers
// first.
afterAll(async () => {
  const left = [...tracker.handles];
  tracker.handles.clear();
  await Promise.allSettled(left.map(([handle]) => handle.close()));
  if (left.length > 0)
    throw new Error(
      `${left.length} file handle(s) left open by this test file:\n${left.map(([, where]) => where).join('\n---\n')}`,
    );
});
