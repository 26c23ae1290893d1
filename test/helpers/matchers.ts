/**
 * vitest's asymmetric matchers, typed `unknown`. vitest types them `any` (so they fit any
 * place of an expected value); where an expected value is typed, the linter's no-unsafe-*
 * rules would follow that `any` into it. The same matchers, making the same checks.
 */
import { expect } from 'vitest';

export const match = {
  any: (type: unknown): unknown => expect.any(type),
  closeTo: (n: number, digits?: number): unknown => expect.closeTo(n, digits),
  objectContaining: (o: Record<string, unknown>): unknown => expect.objectContaining(o),
  stringContaining: (s: string): unknown => expect.stringContaining(s),
  stringMatching: (re: string | RegExp): unknown => expect.stringMatching(re),
};
