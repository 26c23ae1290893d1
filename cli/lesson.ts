/**
 * `miglab lesson`: the course from the command line, for trainers and self-study.
 *
 *   list [--json]                                  id, titles in both languages, runtime, steps by kind
 *   show ID [--lang zh-Hans] [--seed N]            the texts with the seed's numbers
 *   check ID --attempt FILE [--seed N] [--json]    grade an attempt offline: each check, expected and measured
 *   verify [FILE...]                               each lesson's reference passes (its seed and 1-8), its wrong attempt fails
 *
 * ID is a lesson of the course (lessons/ID.yaml) or a lesson file. Exit status: 0 all
 * passed, 1 a check failed (check) or a lesson is broken (verify), 2 a bad file, id or
 * option, said in one line on stderr.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { course_order, defaultLessonsDir, load_course, load_lesson, preset_reader, read_text } from '../core/lesson/course.js';
import { LessonError } from '../core/lesson/error.js';
import { grade_attempt, type Grade } from '../core/lesson/grade.js';
import { LESSON_LOCALES, localized, parse_attempt_yaml, steps_by_kind, type Lesson, type LessonLocale } from '../core/lesson/lesson.js';
import { draw_params, fill_text, param_texts } from '../core/lesson/params.js';
import { verify_lesson, type VerifyRun } from '../core/lesson/verify.js';
import { closest } from '../core/sim/scenario.js';
import { plural } from './format.js';

const PROG = 'miglab lesson';

/** A usage or input error: one line on stderr, exit status 2. */
class Bad extends Error {}

function lesson_arg(arg: string): Lesson {
  if (/[\\/]/.test(arg) || /\.ya?ml$/.test(arg)) return load_lesson(arg);
  const dir = defaultLessonsDir();
  const file = join(dir, `${arg}.yaml`);
  if (existsSync(file)) return load_lesson(file);
  const ids = course_order(dir).filter((id) => existsSync(join(dir, `${id}.yaml`)));
  const near = closest(arg, ids);
  throw new Bad(`no lesson "${arg}"${near ? ` (did you mean "${near}"?)` : ''}; lessons: ${ids.join(', ')}`);
}

function seed_arg(s: string | undefined, lesson: Lesson | null): number | undefined {
  if (s === undefined) return lesson?.seed;
  if (!/^[0-9]+$/.test(s) || Number(s) > 0xffffffff) throw new Bad(`--seed: expected a whole number from 0 to 4294967295, got "${s}"`);
  return Number(s);
}

function lang_arg(s: string | undefined): LessonLocale {
  if (s === undefined) return 'en';
  if (!(LESSON_LOCALES as readonly string[]).includes(s)) throw new Bad(`--lang: expected ${LESSON_LOCALES.join(' or ')}, got "${s}"`);
  return s as LessonLocale;
}

/** Run `body`; a Bad or LessonError becomes one line on stderr and status 2. */
async function guarded(cmd: string, body: () => Promise<number> | number): Promise<void> {
  try {
    process.exitCode = await body();
  } catch (e) {
    if (!(e instanceof Bad) && !(e instanceof LessonError)) throw e;
    process.stderr.write(`${PROG} ${cmd}: ${e.message}\n`);
    process.exitCode = 2;
  }
}

const kinds = (l: Lesson): string => {
  const n = steps_by_kind(l);
  return `${n.explain} explain, ${n.predict} predict, ${n.task} task`;
};

function list(json: boolean): number {
  const lessons = load_course();
  if (json) {
    const rows = lessons.map((l) => ({ id: l.id, title: l.title, title_zh: l.title_zh, runtime: l.runtime, steps: steps_by_kind(l) }));
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return 0;
  }
  const w = Math.max(...lessons.map((l) => l.id.length), 2);
  for (const l of lessons) process.stdout.write(`${l.id.padEnd(w)}  ${l.title} / ${l.title_zh}  (${l.runtime}; ${kinds(l)})\n`);
  return 0;
}

function show(lesson: Lesson, locale: LessonLocale, seed: number): number {
  const p = param_texts(lesson, draw_params(lesson, seed));
  const t = (o: object, f: string): string => fill_text(localized(o, f, locale), p).replace(/\s+/g, ' ').trim();
  const out: string[] = [`${t(lesson, 'title')} (${lesson.id})`, t(lesson, 'summary'), ''];
  out.push(`seed ${seed}${Object.keys(p).length ? `: ${Object.entries(p).map(([k, v]) => `${k} = ${v}`).join(', ')}` : ''}`);
  lesson.steps.forEach((s, i) => {
    out.push('', `${i + 1}. ${s.kind} ${s.id}`);
    if (s.kind === 'explain') out.push(`   ${t(s, 'text')}`);
    else if (s.kind === 'predict') {
      out.push(`   ${t(s, 'question')}`);
      const labels = (locale === 'en' ? s.answer.choice_labels : s.answer.choice_labels_zh) ?? s.answer.choices;
      if (labels) out.push(`   ${labels.map((c, j) => `[${s.answer.choices![j]}] ${c}`).join('  ')}`);
    } else {
      out.push(`   ${t(s, 'goal')}`);
      if (s.forbid.length) out.push(`   (${locale === 'en' ? 'not allowed' : '不允许'}: ${s.forbid.join(', ')})`);
    }
  });
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

function print_grade(g: Grade): void {
  const out: string[] = [`${g.lesson}, seed ${g.seed}: ${g.passed ? 'passed' : 'not passed'} (the run ended ${g.outcome})`];
  for (const s of g.steps) {
    out.push(`  ${s.status.padEnd(7)} ${s.kind} ${s.id}${s.way ? ` (way: ${s.way.label})` : ''}`);
    for (const c of s.checks) out.push(`    ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}: expected ${c.expected}, measured ${c.measured}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

async function check(lesson: Lesson, attempt_file: string, seed: string | undefined, json: boolean): Promise<number> {
  const attempt = parse_attempt_yaml(read_text(attempt_file), attempt_file);
  const s = seed_arg(seed, null);
  if (s !== undefined) attempt.seed = s;
  const g = await grade_attempt(lesson, attempt, { presets: preset_reader() });
  if (json) process.stdout.write(JSON.stringify(g, null, 2) + '\n');
  else print_grade(g);
  return g.passed ? 0 : 1;
}

function verdict(r: VerifyRun): string {
  if (r.attempt === 'reference') return `reference seed ${r.seed} ${r.ok ? 'passes' : 'FAILS'}`;
  return `wrong seed ${r.seed} ${r.ok ? 'fails' : 'PASSES'}`;
}

/** What broke in a run, one line a step. */
function broken(r: VerifyRun): string[] {
  if (r.attempt === 'wrong') return [`    the wrong attempt failed no step`];
  return r.grade.steps
    .filter((s) => s.status !== 'passed')
    .map((s) => `    ${s.id} ${s.status}: ${s.checks.filter((c) => !c.ok).map((c) => `${c.what} expected ${c.expected}, measured ${c.measured}`).join('; ') || 'no answer'}`);
}

async function verify(files: string[]): Promise<number> {
  let lessons: { name: string; load: () => Lesson }[];
  if (files.length) lessons = files.map((f) => ({ name: f, load: () => lesson_arg(f) }));
  else {
    const all = load_course();
    lessons = all.map((l) => ({ name: l.id, load: () => l }));
  }
  const presets = preset_reader();
  let bad = 0;
  for (const { name, load } of lessons) {
    let lesson: Lesson;
    try {
      lesson = load();
    } catch (e) {
      if (!(e instanceof Bad) && !(e instanceof LessonError)) throw e;
      process.stdout.write(`${name}: BROKEN: ${e.message}\n`);
      bad++;
      continue;
    }
    const runs: VerifyRun[] = [];
    try {
      runs.push(...(await verify_lesson(lesson, presets)));
    } catch (e) {
      if (!(e instanceof LessonError)) throw e;
      process.stdout.write(`${lesson.id}: BROKEN: ${e.message}\n`);
      bad++;
      continue;
    }
    const ok = runs.every((r) => r.ok);
    if (!ok) bad++;
    process.stdout.write(`${lesson.id}: ${ok ? 'ok' : 'BROKEN'} (${runs.map(verdict).join(', ')})\n`);
    for (const r of runs) if (!r.ok) process.stdout.write(broken(r).join('\n') + '\n');
  }
  process.stdout.write(bad ? `${bad} of ${lessons.length} lessons broken\n` : `${plural(lessons.length, 'lesson', 'lessons')} verified\n`);
  return bad ? 1 : 0;
}

export function lessonCommand(): Command {
  const cmd = new Command('lesson').description('the course: list, show, grade an attempt, verify lessons');
  cmd
    .command('list')
    .description('the lessons in course order: id, titles (English and 简体中文), runtime, steps by kind')
    .option('--json', 'as JSON')
    .action((o: { json?: boolean }) => guarded('list', () => list(!!o.json)));
  cmd
    .command('show')
    .description("a lesson's texts, with the numbers of a seed")
    .argument('<lesson>', 'a lesson id, or a lesson file')
    .option('--lang <locale>', 'en or zh-Hans', 'en')
    .option('--seed <n>', "the seed (default: the lesson's)")
    .action((id: string, o: { lang?: string; seed?: string }) =>
      guarded('show', () => {
        const locale = lang_arg(o.lang);
        const lesson = lesson_arg(id);
        return show(lesson, locale, seed_arg(o.seed, lesson)!);
      }),
    );
  cmd
    .command('check')
    .description('grade an attempt file offline: each check with its expected and measured value')
    .argument('<lesson>', 'a lesson id, or a lesson file')
    .requiredOption('--attempt <file>', 'the attempt (YAML: seed, answers, actions)')
    .option('--seed <n>', "override the attempt's seed")
    .option('--json', 'the grade as JSON')
    .addHelpText('after', '\nExit status: 0 every step passed, 1 a step failed or is unanswered, 2 a bad lesson, attempt file or option.')
    .action((id: string, o: { attempt: string; seed?: string; json?: boolean }) => guarded('check', () => check(lesson_arg(id), o.attempt, o.seed, !!o.json)));
  cmd
    .command('verify')
    .description("run each lesson's reference attempt (its seed and seeds 1-8: it must pass) and its wrong attempt (it must fail)")
    .argument('[files...]', 'lesson files or ids (default: every lesson of the course)')
    .addHelpText('after', '\nExit status: 0 all verified, 1 a lesson is broken (named, with what broke).')
    .action((files: string[]) => guarded('verify', () => verify(files)));
  return cmd;
}
