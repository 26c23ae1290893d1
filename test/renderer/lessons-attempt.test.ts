/**
 * The attempt the UI exports (renderer/src/lib/lessons/attempt.ts) is an attempt file the
 * engine reads back as it was (core/lesson's parser, which `miglab lesson check` uses), and
 * an accepted import gives back its seed, answers and actions.
 */
import { describe, expect, it } from 'vitest';
import { parse_attempt_yaml } from '../../core/lesson/lesson.js';
import { acceptedAttempt, attemptFileName, attemptYaml, buildAttempt } from '../../renderer/src/lib/lessons/attempt.js';
import { freshProgress } from '../../renderer/src/lib/lessons/progress.js';

describe('attempt files', () => {
  const p = { ...freshProgress(42), answers: { 'guess-threshold': 4194304, 'guess-states': 'setup,active,completed' } };
  const actions = [
    { at: 0, side: 'src' as const, execute: 'migrate', arguments: { uri: 'tcp:dst:4444' }, timer: 7 },
    { at: 1503.25, side: 'src' as const, execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 5000 }, timer: 1288 },
    { at: 1600, side: 'dst' as const, execute: 'query-status', timer: 1301 },
  ];

  it('exports what the engine parses back unchanged', () => {
    const a = buildAttempt('convergence', p, actions);
    const text = attemptYaml(a);
    expect(text.split('\n', 1)[0]).toBe('# Migration Lab attempt: grade it with  miglab lesson check convergence --attempt FILE');
    expect(parse_attempt_yaml(text, 'x.yaml')).toEqual({ lesson: 'convergence', seed: 42, answers: p.answers, actions });
    expect(attemptFileName(a)).toBe('convergence-seed42.attempt.yaml');
  });

  it('copies, so a later change to the progress is not in an attempt already built', () => {
    const a = buildAttempt('convergence', p, actions);
    p.answers['guess-threshold'] = 1;
    expect(a.answers['guess-threshold']).toBe(4194304);
    p.answers['guess-threshold'] = 4194304;
  });

  it('reads an accepted import: its seed, answers and actions as written', () => {
    expect(acceptedAttempt('seed: 9\nanswers: { guess: 4M }\nactions:\n  - { at: 2s, side: src, execute: stop }\n')).toEqual({
      seed: 9,
      answers: { guess: '4M' },
      actions: [{ at: '2s', side: 'src', execute: 'stop' }],
    });
    expect(acceptedAttempt('lesson: convergence\nseed: 1\n')).toEqual({ lesson: 'convergence', seed: 1, answers: {}, actions: [] });
  });
});
