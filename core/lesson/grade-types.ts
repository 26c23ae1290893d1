/**
 * A lesson's grade as data (what lesson.check answers and `miglab lesson check --json`
 * prints): no imports, so the renderer's types can name it (host/api.ts).
 */
export interface CheckResult {
  what: string;
  expected: string;
  measured: string;
  ok: boolean;
}

export interface StepGrade {
  id: string;
  kind: 'explain' | 'predict' | 'task';
  status: 'passed' | 'failed' | 'pending';
  checks: CheckResult[];
  way?: { id: string; label: string } | null;
  measured?: number | string | string[] | boolean;
  /** The reveal text, filled in, in the locale asked. */
  why?: string;
}

export interface Grade {
  lesson: string;
  seed: number;
  params: Record<string, number | string>;
  passed: boolean;
  steps: StepGrade[];
  outcome: string;
}
