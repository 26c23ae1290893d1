/**
 * The host API's lessons (host/lessons.ts, host/simulation.ts through the simulated
 * runtime's process): lesson.list in course order with the steps counted; lesson.get with
 * the seed's numbers in both languages' texts; lesson.start running the lesson's scenario
 * paused at t = 0 under its run name; lesson.check grading in the child process, the same
 * grade the engine gives in-process, for the reference (passes) and the wrong attempt
 * (fails), and for the commands a console typed into the run (sim.inputs); a bad id, a bad
 * attempt or a bad attempt file answered with one line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_OWN_ID, lessonRunName, type LessonAction, type LessonGrade, type LessonSummary, type LessonView, type SimStatus } from '../../host/api.js';
import { load_course, preset_reader } from '../../core/lesson/course.js';
import { grade_attempt } from '../../core/lesson/grade.js';
import { steps_by_kind, type Attempt, type Lesson } from '../../core/lesson/lesson.js';
import { draw_params, param_texts } from '../../core/lesson/params.js';
import { CoreHarness } from '../helpers/core-harness.js';
import { match } from '../helpers/matchers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Harness extends CoreHarness {
  async ended(): Promise<SimStatus> {
    for (let i = 0; i < 3000; i++) {
      const s = this.core.sim.status();
      if (s.state === 'ended') return s;
      await sleep(20);
    }
    throw new Error('the run did not end');
  }
}

const COURSE = load_course();
const convergence = COURSE.find((l) => l.id === 'convergence')!;
const reference = (l: Lesson, seed: number): Attempt => ({ lesson: l.id, seed, answers: { ...l.reference.answers } as Attempt['answers'], actions: l.reference.actions.map((a) => ({ ...a })) });
const wrong = (l: Lesson, seed: number): Attempt => ({ lesson: l.id, seed, answers: { ...l.wrong.answers } as Attempt['answers'], actions: l.wrong.actions.map((a) => ({ ...a })) });

describe('the host API: lessons', () => {
  let h: Harness;
  beforeAll(() => {
    h = new Harness();
  });
  afterAll(async () => {
    await h.core.close();
  });

  it('lists the course in its order, titles in both languages and steps by kind', async () => {
    const list = await h.ok<LessonSummary[]>({ type: 'lesson.list' });
    expect(list.map((l) => l.id)).toEqual(COURSE.map((l) => l.id));
    expect(list.find((l) => l.id === 'convergence')).toEqual({
      id: 'convergence',
      title: convergence.title,
      title_zh: convergence.title_zh,
      summary: convergence.summary,
      summary_zh: convergence.summary_zh,
      runtime: 'simulated',
      steps: steps_by_kind(convergence),
    });
  });

  it("gets a lesson with the seed's numbers in its texts, in both languages; another seed, other numbers", async () => {
    const v = await h.ok<LessonView>({ type: 'lesson.get', id: 'convergence', seed: 7 });
    expect(v.seed).toBe(7);
    expect(v.params).toEqual(draw_params(convergence, 7));
    expect(v.steps.map((s) => [s.id, s.kind])).toEqual(convergence.steps.map((s) => [s.id, s.kind]));
    const look = v.steps[0];
    if (look.kind !== 'explain') throw new Error('look is an explain step');
    const texts = param_texts(convergence, draw_params(convergence, 7));
    for (const t of [look.text.en, look.text['zh-Hans']]) {
      expect(t).not.toContain('${');
      expect(t).toContain(texts.bandwidth);
      expect(t).toContain(texts.downtime);
    }
    expect(look.text['zh-Hans']).not.toBe(look.text.en);
    expect(look.point).toEqual({ view: 'chain', fn: 'migration_iteration_run' });
    const guess = v.steps.find((s) => s.id === 'guess-threshold')!;
    expect(guess.kind === 'predict' && guess.answer).toEqual({ kind: 'number', measure: 'initial_threshold_bytes', unit: 'bytes', tolerance: '10%' });
    const rescue = v.steps.find((s) => s.id === 'rescue')!;
    expect(rescue.kind === 'task' && rescue.forbid).toEqual(['stop']);
    // Some seed draws other numbers (the params are drawn, not fixed).
    const others = await Promise.all([1, 2, 3, 4, 5].map((seed) => h.ok<LessonView>({ type: 'lesson.get', id: 'convergence', seed })));
    expect(new Set(others.map((o) => JSON.stringify(o.params))).size).toBeGreaterThan(1);
  });

  it('refuses a lesson that is not there, in one line naming the ones that are', async () => {
    const e = await h.error({ type: 'lesson.get', id: 'no-such-lesson', seed: 1 });
    expect(e).toBe(`no lesson 'no-such-lesson' (lessons: ${COURSE.map((l) => l.id).join(', ')})`);
    expect(await h.error({ type: 'lesson.start', id: 'no-such-lesson', seed: 1 })).toBe(e);
    expect(await h.error({ type: 'lesson.check', id: 'no-such-lesson', attempt: { seed: 1, answers: {}, actions: [] } })).toBe(e);
  });

  it("starts the lesson's run paused at t = 0 under its run name, its consoles' commands recorded as the attempt's actions", async () => {
    const s = await h.ok<SimStatus>({ type: 'lesson.start', id: 'convergence', seed: 7 });
    expect(s).toMatchObject({ state: 'paused', scenario: lessonRunName('convergence', 7), t_ms: 0 });
    expect(h.core.sim.statuses().map((x) => [x.id, x.state, x.kind])).toEqual([
      ['source', 'ready', 'simulated'],
      ['destination', 'ready', 'simulated'],
    ]);
    // The lab's setup already ran at t = 0: the lesson's parameters are set, the destination listens.
    const p = (await h.core.sim.execute('source', 'query-migrate-parameters')) as Record<string, unknown>;
    expect(p['max-bandwidth']).toBe(draw_params(convergence, 7).bandwidth);
    await h.ok({ type: 'qmp.send', endpoint: 'source', text: '{"execute": "migrate", "arguments": {"uri": "tcp:dst:4444"}}' });
    // A console's own request (tab completion's) is not the learner's: not recorded.
    await h.ok({ type: 'qmp.send', endpoint: 'source', text: `{"execute": "query-commands", "id": "${CONSOLE_OWN_ID}-1-commands"}` });
    const inputs = await h.ok<LessonAction[]>({ type: 'sim.inputs' });
    // Typed after the setup's timers at t = 0 (timer ≥ 0: a replay runs it after them).
    expect(inputs).toEqual([{ at: 0, side: 'src', execute: 'migrate', arguments: { uri: 'tcp:dst:4444' }, timer: match.any(Number) }]);
    expect(inputs[0].timer).toBeGreaterThanOrEqual(0);
  });

  it('grades an attempt in the child process: the engine\'s own grade; the reference passes, the wrong attempt fails', async () => {
    const presets = preset_reader();
    const ref = reference(convergence, 7);
    const got = await h.ok<LessonGrade>({ type: 'lesson.check', id: 'convergence', attempt: ref });
    expect(got).toEqual(await grade_attempt(convergence, ref, { presets }));
    expect(got.passed).toBe(true);
    const bad = await h.ok<LessonGrade>({ type: 'lesson.check', id: 'convergence', attempt: wrong(convergence, 7), locale: 'zh-Hans' });
    expect(bad.passed).toBe(false);
    expect(bad.steps.some((s) => s.status === 'failed')).toBe(true);
    // The reveal texts in the language asked.
    const why = bad.steps.find((s) => s.id === 'guess-threshold')!.why!;
    expect(why).toMatch(/[\u4e00-\u9fff]/);
    expect(why).not.toContain('${');
    // The run the learner watches is not the grading's: it is still the lesson's, where it was.
    expect(h.core.sim.status().scenario).toBe(lessonRunName('convergence', 7));
  });

  it('grades what a console typed into the run (sim.inputs as the actions)', async () => {
    await h.ok({ type: 'lesson.start', id: 'convergence', seed: 7 });
    await h.ok({ type: 'qmp.send', endpoint: 'source', text: '{"execute": "migrate", "arguments": {"uri": "tcp:dst:4444"}}' });
    await h.ok({ type: 'sim.runUntil', fn: 'migration_iteration_run' });
    await h.ok({ type: 'qmp.send', endpoint: 'source', text: '{"execute": "migrate-set-parameters", "arguments": {"downtime-limit": 5000}}' });
    await h.ok({ type: 'sim.control', action: 'resume' });
    const end = await h.ended();
    expect(end.outcome).toBe('completed');
    const actions = await h.ok<LessonAction[]>({ type: 'sim.inputs' });
    expect(actions.map((a) => a.execute)).toEqual(['migrate', 'migrate-set-parameters']);
    const g = await h.ok<LessonGrade>({ type: 'lesson.check', id: 'convergence', attempt: { lesson: 'convergence', seed: 7, answers: {}, actions } });
    const rescue = g.steps.find((s) => s.id === 'rescue')!;
    expect(rescue.status).toBe('passed');
    expect(rescue.way?.id).toBe('downtime-limit');
    expect(g.steps.find((s) => s.id === 'guess-threshold')!.status).toBe('pending');
  });

  it('refuses a bad attempt, and a bad attempt file, in one line', async () => {
    const e1 = await h.error({ type: 'lesson.check', id: 'convergence', attempt: { answers: {}, actions: [] } });
    expect(e1).toMatch(/^attempt: .*seed/);
    expect(e1).not.toContain('\n');
    const e2 = await h.error({ type: 'lesson.check', id: 'convergence', attempt: 'seed: 7\nanswers: {}\nactions:\n  - { at: 1s, side: middle, execute: stop }\n' });
    expect(e2).toMatch(/^attempt:4:\d+: actions\[0\]\.side: /);
    expect(e2).toContain('side');
    expect(e2).not.toContain('\n');
    const e3 = await h.error({ type: 'lesson.check', id: 'convergence', attempt: { lesson: 'call-chain', seed: 7, answers: {}, actions: [] } });
    expect(e3).toBe('the attempt is for lesson "call-chain", not "convergence"');
  });
});
