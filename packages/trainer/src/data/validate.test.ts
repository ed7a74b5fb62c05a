import { describe, expect, it } from 'vitest';
import { field, num, str } from './validate.js';

describe('record field checks', () => {
  it('show the value that is wrong as it is (Infinity, null, a list), not as JSON would', () => {
    // JSON.parse('1e309') is Infinity, which JSON.stringify would show as null
    expect(() => num(JSON.parse('{"x": 1e309}'), 'x', 'f.json:3')).toThrow(
      'f.json:3: field "x" must be a number, got Infinity',
    );
    expect(() => num({ x: null }, 'x', 'r')).toThrow('r: field "x" must be a number, got null');
    expect(() => str({ x: [1] }, 'x', 'r')).toThrow('r: field "x" must be a string, got a list');
    expect(() => field(null, 'x', 'r')).toThrow('r: expected an object, got null');
    expect(() => field([], 'x', 'r')).toThrow('r: expected an object, got a list');
    expect(() => field('text', 'x', 'r')).toThrow('r: expected an object, got "text"');
  });
});
