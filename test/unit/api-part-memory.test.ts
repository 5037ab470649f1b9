import { describe, expect, it } from 'vitest';
import { PartMemoryBudget } from '../../src/api/tus.ts';

describe('PartMemoryBudget', () => {
  it('hands out pairs of part buffers within its total, and none when full', () => {
    const b = new PartMemoryBudget(40);
    const a = b.take(10);
    const c = b.take(10);
    expect(a?.map((x) => x.length)).toEqual([10, 10]);
    expect(c).not.toBeNull();
    expect(b.free).toBe(0);
    expect(b.take(10)).toBeNull(); // that PATCH goes through disk
    b.give(a!);
    expect(b.free).toBe(20);
    expect(new PartMemoryBudget(0).take(1)).toBeNull();
  });

  it('reuses returned buffers, and keeps no more of them than the total', () => {
    const b = new PartMemoryBudget(40);
    const first = b.take(10)!;
    b.give(first);
    const again = b.take(10)!;
    expect(new Set([...again])).toEqual(new Set([...first]));
    b.give(again);
    // Many pairs given back (e.g. of a larger part size first): the pool stays bounded.
    const big = b.take(20)!;
    b.give(big);
    const pairs = [b.take(10)!, b.take(10)!];
    expect(b.take(10)).toBeNull();
    for (const p of pairs) b.give(p);
    expect(b.free).toBe(40);
  });

  it('gives a PATCH up to `most` buffers, fewer when the budget is short, never fewer than two', () => {
    const b = new PartMemoryBudget(50);
    const three = b.take(10, 3)!;
    expect(three).toHaveLength(3);
    expect(b.take(10, 3)).toHaveLength(2); // 20 left: two
    expect(b.take(10, 3)).toBeNull(); // nothing left
    b.give(three);
    expect(b.free).toBe(30);
  });
});
