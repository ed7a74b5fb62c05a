import { describe, expect, it } from 'vitest';
import { NodeOnlyError } from '../index.js';

describe('NodeOnlyError', () => {
  it('names what needs Node.js and what to do instead', () => {
    const e = new NodeOnlyError('writing a file by path', 'offer the bytes as a download');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('NodeOnlyError');
    expect(e.message).toBe(
      'writing a file by path needs Node.js (file paths do not exist in browsers); offer the bytes as a download',
    );
  });

  it('matches an error from another copy of the class (the platform files bundle their own)', () => {
    class Copy extends Error {
      constructor() {
        super('reading a file by path needs Node.js');
        this.name = 'NodeOnlyError';
      }
    }
    expect(new Copy() instanceof NodeOnlyError).toBe(true);
    expect(new Error('reading a file by path needs Node.js') instanceof NodeOnlyError).toBe(false);
    expect({ name: 'NodeOnlyError', message: '' } instanceof NodeOnlyError).toBe(false);
    class Narrower extends NodeOnlyError {}
    expect(new Narrower('a', 'b') instanceof NodeOnlyError).toBe(true);
    expect(new NodeOnlyError('a', 'b') instanceof Narrower).toBe(false);
    const nothing: unknown = null;
    expect(nothing instanceof NodeOnlyError).toBe(false);
  });
});
