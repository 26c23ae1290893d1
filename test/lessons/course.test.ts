/** The course issue 13 asks for: twelve lessons, in this order, in lessons/course.yaml, each with its file. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { course_order, load_course } from '../../core/lesson/course.js';

const DIR = join(import.meta.dirname, '..', '..', 'lessons');
const REQUIRED = [
  'first-migration',
  'call-chain',
  'thread-lifecycle',
  'rate-limit',
  'dirty-passes',
  'convergence',
  'auto-converge',
  'downtime',
  'states-and-events',
  'cancel-and-faults',
  'stream-format',
  'background-snapshot',
];

describe('the course', () => {
  it('lessons/course.yaml lists the twelve required lessons in order', () => {
    expect(course_order(DIR).slice(0, REQUIRED.length)).toEqual(REQUIRED);
  });

  it('load_course gives every required lesson in course order, each parsed', () => {
    expect(load_course(DIR).map((l) => l.id).slice(0, REQUIRED.length)).toEqual(REQUIRED);
  });

  for (const id of REQUIRED) it(`lesson ${id} has its file`, () => expect(existsSync(join(DIR, `${id}.yaml`))).toBe(true));
});
