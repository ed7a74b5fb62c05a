// Vitest setup file of every package: a test file that leaves a file handle open fails, naming
// where each handle was opened. Node closes a forgotten FileHandle only when it is garbage
// collected, with a deprecation warning (an error in later Node versions), and a reader that
// forgets one on an error path holds the file open in a user's long-running process.
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
    const handle = await original(...args);
    tracker.handles.set(handle, `${String(args[0])}\n${new Error().stack?.split('\n').slice(2, 8).join('\n')}`);
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

afterAll(() => {
  const left = [...tracker.handles.values()];
  tracker.handles.clear();
  if (left.length > 0)
    throw new Error(`${left.length} file handle(s) left open by this test file:\n${left.join('\n---\n')}`);
});
