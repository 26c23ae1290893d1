/** A lesson or attempt that does not parse, check or run: one line, file:line: path: what. */
export class LessonError extends Error {
  constructor(
    message: string,
    readonly file: string | null = null,
  ) {
    super(message);
    this.name = 'LessonError';
  }
}
