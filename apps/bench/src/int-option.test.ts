import { describe, expect, it } from 'vitest';
import { parseIntOption, parseNumberOption } from './int-option.js';

describe('numeric command-line values', () => {
  it.each([
    ['5e-4', 5e-4],
    ['1E3', 1000],
    ['.5', 0.5],
    ['2.', 2],
    [' 0.25 ', 0.25],
    ['+3', 3],
    ['-1.5', -1.5],
    ['007', 7],
  ])('reads %j as %d', (text, value) => {
    expect(parseNumberOption(text)).toBe(value);
  });

  it.each([
    '',
    ' ',
    '0x10',
    '0b1',
    '0o7',
    'Infinity',
    '-Infinity',
    'NaN',
    '1e',
    'e3',
    '.',
    '1.2.3',
    '1,5',
    '2 3',
    '1e999',
    '5e-4s',
  ])('refuses %j', (text) => {
    expect(parseNumberOption(text)).toBeUndefined();
  });

  it('integers are digits only', () => {
    expect(parseIntOption(' 12 ', 1)).toBe(12);
    for (const t of ['1e3', '0x10', '2.0', '', '-1', '9007199254740993'])
      expect(parseIntOption(t, 0), t).toBeUndefined();
    expect(parseIntOption('0', 1)).toBeUndefined();
  });
});
