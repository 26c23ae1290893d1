/**
 * The course on disk (Node: reads files): lessons/course.yaml gives the order, each lesson
 * is lessons/ID.yaml. Lessons the order names but that have no file yet are left out
 * (test/lessons/course.test.ts requires every one of the course); a file the order does
 * not name, or whose id is not its name, is an error naming the file. Presets are read
 * from scenarios/ beside lessons/.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ScenarioError, parse_scenario_yaml, type Scenario } from '../sim/scenario.js';
import { package_root } from '../util/package-root.js';
import { LessonError } from './error.js';
import { parse_lesson_yaml, type Lesson } from './lesson.js';

export function defaultLessonsDir(): string {
  return join(package_root(), 'lessons');
}

/** The lesson ids in course order (lessons/course.yaml: `lessons: [ID, …]`). */
export function course_order(dir = defaultLessonsDir()): string[] {
  const file = join(dir, 'course.yaml');
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LessonError(`${file}: ${(e as Error).message.split('\n')[0]}`, file);
  }
  const ids = (doc as { lessons?: unknown })?.lessons;
  if (!Array.isArray(ids) || !ids.every((x) => typeof x === 'string')) throw new LessonError(`${file}: lessons: expected a list of lesson ids`, file);
  return ids;
}

/** A lesson's or attempt's file text; a LessonError ("FILE: No such file") when it cannot be read. */
export function read_text(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new LessonError(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file' : (e as Error).message}`, file);
  }
}

/** Read and parse one lesson file; its id must be its file name. */
export function load_lesson(file: string): Lesson {
  const lesson = parse_lesson_yaml(read_text(file), file);
  const name = file.replace(/^.*[\\/]/, '').replace(/\.ya?ml$/, '');
  if (lesson.id !== name) throw new LessonError(`${file}: id: "${lesson.id}" is not the file's name ("${name}")`, file);
  return lesson;
}

/** The course's lessons that exist, in lessons/course.yaml's order. */
export function load_course(dir = defaultLessonsDir()): Lesson[] {
  const order = course_order(dir);
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'course.yaml');
  for (const f of files) {
    const id = f.slice(0, -'.yaml'.length);
    if (!order.includes(id)) throw new LessonError(`${join(dir, f)}: not in ${join(dir, 'course.yaml')} (add "${id}" where it belongs in the course)`, join(dir, f));
  }
  return order.filter((id) => files.includes(`${id}.yaml`)).map((id) => load_lesson(join(dir, `${id}.yaml`)));
}

/** The presets of `scenarios_dir` (default: the package's scenarios/), read when a lesson names one. */
export function preset_reader(scenarios_dir = join(package_root(), 'scenarios')): (name: string) => Scenario {
  const cache = new Map<string, Scenario>();
  return (name) => {
    let sc = cache.get(name);
    if (!sc) {
      const file = join(scenarios_dir, `${name}.yaml`);
      if (!/^[a-z0-9-]+$/.test(name) || !existsSync(file)) throw new LessonError(`scenario: no preset "${name}" in ${scenarios_dir}`);
      try {
        sc = parse_scenario_yaml(readFileSync(file, 'utf8'), file);
      } catch (e) {
        if (e instanceof ScenarioError) throw new LessonError(e.message, file);
        throw e;
      }
      cache.set(name, sc);
    }
    return sc;
  };
}
