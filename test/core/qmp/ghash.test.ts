/** GHashTable slot order, checked against which extra argument real QEMU 7.2 named. */
import { describe, expect, it } from 'vitest';
import { GHashTableModel, g_str_hash } from '../../../core/qmp/ghash.js';
import { qdictOrder } from '../../../core/qmp/qdict.js';
import { inProcessVm } from '../../helpers/in-process-vm.js';

/** The key "is unexpected" names when all of `keys` are extra (none visited). */
function firstUnexpected(keys: string[]): string {
  const t = new GHashTableModel();
  for (const k of qdictOrder(keys)) t.insert(k);
  return [...t][0];
}

describe('GHashTable order', () => {
  it('g_str_hash is djb2', () => {
    expect(g_str_hash('')).toBe(5381);
    expect(g_str_hash('a')).toBe(5381 * 33 + 97);
  });

  it('names the extra argument real QEMU 7.2 named', () => {
    // Recorded with qemu-system-x86_64 7.2: query-status with these arguments.
    expect(firstUnexpected(['a', 'b'])).toBe('b');
    expect(firstUnexpected(['b', 'a'])).toBe('b');
    expect(firstUnexpected(['zz', 'a'])).toBe('a');
    expect(firstUnexpected(['foo', 'bar'])).toBe('bar');
  });

  it('survives growth and shrinking with every key kept once', () => {
    const t = new GHashTableModel();
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    for (const k of keys) t.insert(k);
    expect(new Set(t).size).toBe(200);
    for (const k of keys.slice(0, 190)) t.remove(k);
    expect([...t].sort()).toEqual(keys.slice(190).sort());
  });

  it('drives the visitor: the same extra argument whatever the order written', async () => {
    const c = await inProcessVm();
    for (const args of [{ a: 1, b: 1 }, { b: 1, a: 1 }]) {
      expect(await c.execute('query-status', args)).toEqual({
        error: { class: 'GenericError', desc: "Parameter 'b' is unexpected" },
      });
    }
  });
});
