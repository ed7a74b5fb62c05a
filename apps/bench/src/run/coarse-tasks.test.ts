import { describe, expect, it } from 'vitest';
import { rankGroups } from './coarse-tasks.js';

describe('rankGroups', () => {
  it("builds each query's image group from the ITC ranking and its text group from the rows after the captions", () => {
    // 4 scenes: sim[i * 4 + q] is image i against caption q
    const sim = [
      [0.9, 0.1, 0.5, 0.0],
      [0.2, 0.8, 0.6, 0.0],
      [0.7, 0.3, 0.4, 0.0],
      [0.4, 0.9, 0.1, 0.0],
    ].flat();
    const captions = ['a', 'b', 'c', 'd'];
    // scene 2 has caption 'a' too: never a negative image for query 0
    const shares = (image: number, query: number) => image === 2 && query === 0;
    const groups = rankGroups(sim, captions, 3, [['a1', 'a2'], null, ['c1', 'c2']], 2, shares);
    expect(groups).toEqual([
      [
        [0, 0],
        [3, 0],
        [1, 0],
      ], // query 0: images 3 (0.4) and 1 (0.2); image 2 (0.7) shares its caption
      [
        [0, 0],
        [0, 4],
        [0, 5],
      ], // its swapped captions are text rows 4 and 5
      [
        [1, 1],
        [3, 1],
        [2, 1],
      ], // query 1: images 3 (0.9) and 2 (0.3); no text group
      [
        [2, 2],
        [1, 2],
        [0, 2],
      ], // query 2: images 1 (0.6) and 0 (0.5)
      [
        [2, 2],
        [2, 6],
        [2, 7],
      ], // rows 6 and 7: the next swapped captions
    ]);
    // too few images left for a group of 3 negatives: query 0 keeps its text group only
    expect(rankGroups(sim, captions, 1, [['a1', 'a2', 'a3']], 3, shares)).toEqual([
      [
        [0, 0],
        [0, 4],
        [0, 5],
        [0, 6],
      ],
    ]);
    expect(() => rankGroups(sim.slice(1), captions, 1, [null], 2, shares)).toThrow(
      'rankGroups: sim has 15 values for 4 captions',
    );
  });
});
