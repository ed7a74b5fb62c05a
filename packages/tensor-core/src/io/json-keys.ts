// JSON.parse keeps the last of two equal keys without a word; checkpoint headers must not be
// ambiguous. This scanner walks a text that JSON.parse has already accepted (so it can be simple)
// without recursion, and reports the first key that one object holds twice.

/** The first key repeated inside one object, with the keys of the objects around it, or undefined. */
export function findDuplicateKey(text: string): { key: string; path: string[] } | undefined {
  // one frame per open object or array: the keys seen so far (objects) and the key it sits under
  const frames: { keys?: Set<string>; under?: string }[] = [];
  let expectKey = false;
  let lastKey: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      frames.push({ keys: c === 0x7b ? new Set() : undefined, under: lastKey });
      expectKey = c === 0x7b;
      lastKey = undefined;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      frames.pop();
      expectKey = false;
      lastKey = undefined;
    } else if (c === 0x2c /* , */) {
      expectKey = frames.at(-1)?.keys !== undefined;
      lastKey = undefined;
    } else if (c === 0x22 /* " */) {
      let end = i + 1;
      for (;;) {
        end = text.indexOf('"', end);
        if (end < 0) return undefined; // not valid JSON: JSON.parse reports it
        let backslashes = 0;
        for (let j = end - 1; text.charCodeAt(j) === 0x5c; j--) backslashes++;
        if (backslashes % 2 === 0) break;
        end++;
      }
      if (expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        const frame = frames[frames.length - 1];
        if (frame.keys!.has(key)) return { key, path: frames.slice(1).map((f) => f.under ?? '?') };
        frame.keys!.add(key);
        lastKey = key;
        expectKey = false;
      } else lastKey = undefined;
      i = end;
    }
  }
  return undefined;
}
