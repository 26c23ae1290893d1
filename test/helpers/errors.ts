/** The error `f` throws, which must be an instance of `type` (others are rethrown). */
export function error_of<E extends Error>(type: new (...args: never[]) => E, f: () => unknown): E {
  try {
    f();
  } catch (e) {
    if (e instanceof type) return e;
    throw e;
  }
  throw new Error('no error');
}
