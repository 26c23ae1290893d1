/**
 * The shape of core/'s imports (issue 15): no import circle anywhere in core/, the engine in
 * core/migration/ never reaches up into the VM endpoint in core/vm/ (the VM uses the engine,
 * as QEMU's system/ and hw/ call into migration/, never the other way), and core/ runs in
 * plain Node (DESIGN: never imports electron, nor the app's main/, host/, renderer/, cli/).
 *
 * And the engine's seams: MigrationState's storage is declared (runtime/state-storage.ts), not
 * patched onto objects at run time, and its types are not forced.
 *
 * Imports are read with TypeScript's own scanner (ts.preProcessFile), value and type alike:
 * a type-only circle still ties two files together for a reader.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

/** Every .ts file under dir, as paths relative to ROOT with '/' separators. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts')) out.push(relative(ROOT, p).split(sep).join('/'));
  }
  return out.sort();
}

/** The module specifiers one source text imports: import, import type, export ... from,
 *  import('...') in code or in a type, require('...'). */
export function importSpecifiers(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

/** A relative specifier of `from` as a path from ROOT ('./x.js' names the source './x.ts'). */
function resolveRelative(from: string, spec: string): string {
  const abs = resolve(ROOT, dirname(from), spec.replace(/\.js$/, '.ts'));
  return relative(ROOT, abs).split(sep).join('/');
}

interface ImportGraph {
  /** file -> the files it imports (relative specifiers only), both as paths from ROOT. */
  edges: Map<string, string[]>;
  /** file -> its bare specifiers (packages, node: builtins). */
  bare: Map<string, string[]>;
}

function coreGraph(): ImportGraph {
  const edges = new Map<string, string[]>();
  const bare = new Map<string, string[]>();
  for (const file of tsFiles(join(ROOT, 'core'))) {
    const specs = importSpecifiers(readFileSync(join(ROOT, file), 'utf8'));
    edges.set(file, [...new Set(specs.filter((s) => s.startsWith('.')).map((s) => resolveRelative(file, s)))]);
    bare.set(file, specs.filter((s) => !s.startsWith('.')));
  }
  return { edges, bare };
}

/** The strongly connected components with more than one file, or one file importing itself
 *  (Tarjan's algorithm), each as the files of one circle. */
export function importCircles(edges: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const circles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!edges.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || (edges.get(v) ?? []).includes(v)) circles.push(scc.sort());
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return circles;
}

/** One circle through the first file of a component, printed 'a -> b -> a' (a shortest one,
 *  by breadth-first search inside the component). */
export function showCircle(edges: Map<string, string[]>, scc: string[]): string {
  const inside = new Set(scc);
  const start = scc[0];
  const parent = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of edges.get(v) ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = parent.get(u)!) path.splice(1, 0, u);
        return [...path, start].join(' -> ');
      }
      if (!parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return scc.join(', ');
}

describe('core imports', () => {
  it('the scanner sees every form of import, value and type', () => {
    const text = [
      `import { a } from './a.js';`,
      `import type { B } from './b.js';`,
      `import { type C } from '../c.js';`,
      `export * from './d.js';`,
      `export type { E } from './e.js';`,
      `type F = import('./f.js').F;`,
      `const g = await import('./g.js');`,
      `import './h.js';`,
      `import { readFileSync } from 'node:fs';`,
      `// import { x } from './not-an-import.js';`,
    ].join('\n');
    expect(importSpecifiers(text)).toEqual([
      './a.js', './b.js', '../c.js', './d.js', './e.js', './f.js', './g.js', './h.js', 'node:fs',
    ]);
  });

  it('finds a circle and prints it', () => {
    const edges = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
    ]);
    const circles = importCircles(edges);
    expect(circles).toEqual([['a', 'b', 'c'], ['e']]);
    expect(showCircle(edges, circles[0])).toBe('a -> b -> c -> a');
    expect(showCircle(edges, circles[1])).toBe('e -> e');
  });

  it('every relative import names a file in core/', () => {
    const { edges } = coreGraph();
    const unresolved: string[] = [];
    for (const [file, deps] of edges) {
      for (const dep of deps) if (dep.startsWith('core/') && !edges.has(dep)) unresolved.push(`${file} -> ${dep}`);
    }
    expect(unresolved).toEqual([]);
  });

  it('has no import circle', () => {
    const { edges } = coreGraph();
    expect(importCircles(edges).map((scc) => showCircle(edges, scc))).toEqual([]);
  });

  it('core/migration/ imports nothing from core/vm/', () => {
    const { edges } = coreGraph();
    const upward: string[] = [];
    for (const [file, deps] of edges) {
      if (!file.startsWith('core/migration/')) continue;
      for (const dep of deps) if (dep.startsWith('core/vm/')) upward.push(`${file} -> ${dep}`);
    }
    expect(upward).toEqual([]);
  });

  it('core/system/ (RAM blocks, run state, CPU throttle) builds on neither core/vm/ nor core/migration/', () => {
    const { edges } = coreGraph();
    // The lab's RAM map bits (no QEMU counterpart) live in each RAMBlock's shared memory;
    // ram-map.ts imports nothing, so it closes no circle.
    const allowed = new Set(['core/migration/ram-map.ts']);
    const upward: string[] = [];
    for (const [file, deps] of edges) {
      if (!file.startsWith('core/system/')) continue;
      for (const dep of deps) {
        if ((dep.startsWith('core/vm/') || dep.startsWith('core/migration/')) && !allowed.has(dep)) upward.push(`${file} -> ${dep}`);
      }
    }
    expect(upward).toEqual([]);
    for (const dep of allowed) expect(edges.get(dep)).toEqual([]);
  });

  it('core/ runs in plain Node: no electron, nothing from main/, host/, renderer/ or cli/', () => {
    const { edges, bare } = coreGraph();
    const offenders: string[] = [];
    for (const [file, specs] of bare) {
      for (const s of specs) if (s === 'electron' || s.startsWith('electron/')) offenders.push(`${file} -> ${s}`);
    }
    for (const [file, deps] of edges) {
      for (const dep of deps) if (!dep.startsWith('core/')) offenders.push(`${file} -> ${dep}`);
    }
    expect(offenders).toEqual([]);
  });
});

/** `file:line: text` of every line of core/migration/ that matches `re`. */
function grep(re: RegExp): string[] {
  const hits: string[] = [];
  for (const f of tsFiles(join(ROOT, 'core', 'migration'))) {
    readFileSync(join(ROOT, f), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (re.test(line)) hits.push(`${f}:${i + 1}: ${line.trim()}`);
      });
  }
  return hits;
}

describe('core/migration storage', () => {
  it('no Object.defineProperty: every field is declared where it lives', () => {
    expect(grep(/Object\.defineProperty/)).toEqual([]);
  });

  it('no `as unknown as`: no field is reached around its type', () => {
    expect(grep(/as unknown as/)).toEqual([]);
  });

  it('no module-level map of per-migration state', () => {
    expect(grep(/^(export )?const \w+ = new Weak(Map|Set)\b/)).toEqual([]);
  });
});
