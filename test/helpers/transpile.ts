/**
 * Compile core/ modules from source with TypeScript's own transpiler into a temporary
 * folder, keeping their folders (vm/, system/, util/) so relative imports resolve. For tests whose
 * Worker threads need real JavaScript beside the module that starts them: this tests the
 * current source, needs no build, and cannot be broken by a type error elsewhere in the
 * tree or by another test rebuilding dist/ meanwhile.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';

const SRC = path.resolve(import.meta.dirname, '../../core');

/** What the vCPU workload thread runs. */
export const VCPU_MODULES = ['system/physmem.ts', 'migration/ram-map.ts', 'system/cpu-throttle.ts', 'vm/workload.ts', 'vm/workload-spec.ts', 'vm/workload-worker.ts', 'util/cutils.ts', 'util/bitmap.ts', 'util/atomic.ts'];

/** Transpile `files` (paths under core/) into a new temporary folder and return it. */
export function transpileCore(files: readonly string[], prefix: string): string {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.writeFileSync(path.join(out, 'package.json'), '{"type":"module"}');
  for (const f of files) {
    const { outputText } = ts.transpileModule(fs.readFileSync(path.join(SRC, f), 'utf8'), {
      fileName: f,
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    });
    fs.mkdirSync(path.join(out, path.dirname(f)), { recursive: true });
    fs.writeFileSync(path.join(out, f.replace(/\.ts$/, '.js')), outputText);
  }
  return out;
}

/** Import a module that transpileCore() wrote, e.g. importFrom(out, 'vm/workload.js'). */
export async function importFrom<T>(out: string, rel: string): Promise<T> {
  return (await import(pathToFileURL(path.join(out, rel)).href)) as T;
}
