/**
 * The page's lesson: the course list (lesson.list), the open lesson (lesson.get with the
 * learner's seed), its run (lesson.start), the learner's progress (progress.ts, kept in
 * localStorage) and the grades (lesson.check on the attempt: seed, answers, and the
 * actions the run recorded from the consoles). The panel and the list only show this and
 * call its methods.
 */
import { lessonRunName, type LessonAction, type LessonGrade, type LessonStepView, type LessonSummary, type LessonTexts, type LessonView, type SimStatus } from '../../../../host/api.js';
import type { HostConnection } from '../host.svelte.js';
import { store, stored } from '../storage.js';
import { acceptedAttempt, attemptFileName, attemptYaml, buildAttempt } from './attempt.js';
import {
  OPEN_KEY,
  PROGRESS_KEY,
  lockPredicts,
  markRead,
  parseProgress,
  resetProgress,
  runStarted,
  takeGrade,
  type LessonProgress,
} from './progress.js';

export class LessonState {
  /** The course (null until it has been asked for). */
  course = $state<LessonSummary[] | null>(null);
  /** Progress of every lesson of the course, as kept (for the list's ticks). */
  kept = $state<Record<string, LessonProgress>>({});
  listOpen = $state(false);
  /** The open lesson's id, and the lesson with its numbers drawn. */
  openId = $state<string | null>(stored(OPEN_KEY) || null);
  lesson = $state<LessonView | null>(null);
  progress = $state<LessonProgress>(parseProgress(null));
  busy = $state<string | null>(null);
  failure = $state<string | null>(null);
  /** An imported attempt file: graded as it is (its text, its own actions) instead of the run's. */
  imported = $state<{ file: string; text: string; actions: number } | null>(null);
  /** The last grade, and the attempt (and locale) it was of: the same attempt is not run twice. */
  private graded: { key: string; grade: LessonGrade } | null = null;

  constructor(private readonly host: HostConnection) {}

  /** The simulated runtime's playback state (any run's). */
  get sim(): SimStatus | null {
    return this.host.sim;
  }

  get runName(): string | null {
    return this.lesson ? lessonRunName(this.lesson.id, this.lesson.seed) : null;
  }

  /** The simulated run is this lesson's (with its seed). */
  get onRun(): boolean {
    return this.runName !== null && this.host.sim?.scenario === this.runName && this.host.sim.state !== 'none';
  }

  get runEnded(): boolean {
    return this.onRun && this.host.sim?.state === 'ended';
  }

  get step(): LessonStepView | null {
    return this.lesson?.steps[Math.min(this.progress.current, this.lesson.steps.length - 1)] ?? null;
  }

  async loadCourse(): Promise<void> {
    try {
      const list = (await this.host.request({ type: 'lesson.list' })) as LessonSummary[];
      this.kept = Object.fromEntries(list.map((l) => [l.id, parseProgress(stored(PROGRESS_KEY(l.id)))]));
      this.course = list;
    } catch (e) {
      this.failure = (e as Error).message;
    }
  }

  /**
   * Open a lesson: its kept progress (seed, answers, step), its numbers, and its run, paused at
   * t = 0 (a run of the same lesson and seed already there is kept: a reload loses nothing).
   */
  async open(id: string): Promise<void> {
    this.listOpen = false;
    this.openId = id;
    store(OPEN_KEY, id);
    this.imported = null;
    this.graded = null;
    this.progress = parseProgress(stored(PROGRESS_KEY(id)));
    await this.load(false);
  }

  close(): void {
    this.openId = null;
    this.lesson = null;
    store(OPEN_KEY, '');
  }

  /** A new seed: other numbers, the answers cleared, the run started afresh. */
  async setSeed(seed: number): Promise<void> {
    if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff || seed === this.progress.seed) return;
    this.save(resetProgress(this.progress, seed));
    this.graded = null;
    this.imported = null;
    await this.load(true);
  }

  /** Restart the run; this lesson's answers, locks and grades go (the seed stays). */
  async reset(): Promise<void> {
    this.save(resetProgress(this.progress));
    this.graded = null;
    this.imported = null;
    await this.load(true);
  }

  go(delta: number): void {
    if (!this.lesson) return;
    const current = Math.max(0, Math.min(this.lesson.steps.length - 1, this.progress.current + delta));
    this.save(this.read({ ...this.progress, current }));
  }

  answer(stepId: string, value: number | string | null): void {
    const answers = { ...this.progress.answers };
    if (value === null) delete answers[stepId];
    else answers[stepId] = value;
    this.save({ ...this.progress, answers });
  }

  lock(stepId: string): void {
    if (!this.progress.locked.includes(stepId)) this.save({ ...this.progress, locked: [...this.progress.locked, stepId] });
  }

  /** Called on every sim.status: once this lesson's run has started, the predictions are locked. */
  watch(sim: SimStatus | null): void {
    if (this.lesson && this.onRun && runStarted(sim)) {
      const p = lockPredicts(this.progress, this.lesson.steps);
      if (p !== this.progress) this.save(p);
    }
  }

  /** Grade the attempt so far and take these steps' grades (a reveal, a task's check; all shown ones when the language changes). */
  async grade(stepIds: readonly string[], locale: keyof LessonTexts): Promise<void> {
    const l = this.lesson;
    if (!l || stepIds.length === 0) return;
    this.busy = stepIds.length === 1 ? stepIds[0] : 'grade';
    this.failure = null;
    try {
      const attempt = this.imported?.text ?? buildAttempt(l.id, this.progress, await this.recordedActions());
      const key = JSON.stringify([attempt, locale]);
      const grade = this.graded?.key === key ? this.graded.grade : ((await this.host.request({ type: 'lesson.check', id: l.id, attempt, locale })) as LessonGrade);
      if (this.lesson !== l) return;
      this.graded = { key, grade };
      let p = this.progress;
      for (const g of grade.steps) if (stepIds.includes(g.id)) p = takeGrade(p, g);
      this.save(p);
    } catch (e) {
      this.failure = (e as Error).message;
    } finally {
      this.busy = null;
    }
  }

  /** The grades shown, again in `locale` (their reveal texts are in one language); the host keeps the run, so only the judging is redone. */
  async regrade(locale: keyof LessonTexts): Promise<void> {
    const ids = Object.keys(this.progress.grades);
    if (ids.length && (this.runEnded || this.imported) && this.busy === null) await this.grade(ids, locale);
  }

  /**
   * An attempt file: the host checks and grades it (its text, so a bad line is named); then
   * its seed, answers and actions are the lesson's, every step shown as graded. Null, or the
   * one line that says what is wrong with the file.
   */
  async takeImport(file: string, text: string, locale: keyof LessonTexts): Promise<string | null> {
    const l = this.lesson;
    if (!l) return null;
    let grade: LessonGrade;
    try {
      grade = (await this.host.request({ type: 'lesson.check', id: l.id, attempt: text, locale })) as LessonGrade;
    } catch (e) {
      return `${file}: ${(e as Error).message}`;
    }
    const attempt = acceptedAttempt(text);
    if (attempt.seed !== this.progress.seed) {
      this.save(resetProgress(this.progress, attempt.seed));
      await this.load(true);
    }
    let p = { ...lockPredicts(this.progress, l.steps), answers: { ...attempt.answers } };
    for (const g of grade.steps) if (g.kind !== 'explain') p = takeGrade(p, g);
    this.save(p);
    this.imported = { file, text, actions: attempt.actions.length };
    this.graded = { key: JSON.stringify([text, locale]), grade };
    return null;
  }

  /** The attempt as it stands, as the attempt file's text (for Export): an imported file as it was. */
  async attemptFile(): Promise<{ name: string; text: string } | null> {
    if (!this.lesson) return null;
    if (this.imported) return { name: this.imported.file, text: this.imported.text };
    const a = buildAttempt(this.lesson.id, this.progress, await this.recordedActions());
    return { name: attemptFileName(a), text: attemptYaml(a) };
  }

  /** What the learner typed into this lesson's run, as the run recorded it (none when the run is another's). */
  private async recordedActions(): Promise<LessonAction[]> {
    if (!this.onRun) return [];
    return (await this.host.request({ type: 'sim.inputs' })) as LessonAction[];
  }

  private async load(restart: boolean): Promise<void> {
    const id = this.openId;
    if (!id) return;
    this.busy = 'start';
    this.failure = null;
    try {
      const seed = this.progress.seed;
      const lesson = (await this.host.request({ type: 'lesson.get', id, seed })) as LessonView;
      if (this.openId !== id) return;
      this.lesson = lesson;
      this.save(this.read(this.progress));
      if (restart || !this.onRun) await this.host.request({ type: 'lesson.start', id, seed });
    } catch (e) {
      this.failure = (e as Error).message;
    } finally {
      this.busy = null;
    }
  }

  /** An explain step shown is read: passed (grading says the same of every explain step). */
  private read(p: LessonProgress): LessonProgress {
    const s = this.lesson?.steps[Math.min(p.current, this.lesson.steps.length - 1)];
    return s ? markRead(p, s) : p;
  }

  private save(p: LessonProgress): void {
    this.progress = p;
    const id = this.openId;
    if (!id) return;
    store(PROGRESS_KEY(id), JSON.stringify(p));
    this.kept = { ...this.kept, [id]: p };
  }
}
