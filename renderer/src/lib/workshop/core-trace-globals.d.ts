/**
 * The trace export reuses core/trace/chrome-trace.ts, whose event type comes from
 * core/trace/trace.ts; that module names Node's `process` (for the main thread's tid).
 * The page never loads trace.ts (the import is type-only), but the renderer's type check
 * reads it, and the renderer has no Node types: this is the one name it needs.
 */
declare const process: { readonly pid: number };
