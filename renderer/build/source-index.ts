/**
 * The source view's index, built at `npm run build` time (the vite plugin in
 * renderer/vite.config.ts): every function and method of core/ named after a QEMU function
 * the lab models (`function NAME` or `const NAME = traced('NAME', …)`), and every name the
 * tracer reports (traced('NAME', …), traced_at('NAME', …), tracer.call(thread, 'NAME', …)), with its lab file, line and TypeScript text, and its QEMU 9.0
 * file (core/trace/qemu-files.ts). Read with the TypeScript compiler API, so a name is a
 * declaration, not a match in a comment.
 *
 * Node (build time only): never bundled into the page.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import ts from 'typescript';
import { LAB_HELPERS, qemu_place, type LabSourceEntry, type LabSourceIndex } from '../../core/trace/qemu-files.js';

/** QEMU's naming: lower case words joined by `_` (qmp_migrate, migration_thread). */
const QEMU_NAME = /^[a-z][a-z0-9]*(_[a-z0-9]+)+$/;

/** One declaration or traced region found in a file, before the index picks one per name. */
type Found = Omit<LabSourceEntry, 'traced' | 'qemu'>;

/** Every .ts file under `dir` (tests are not under core/), sorted so the index is the same on every build. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

/** The declarations and traced regions of one file (`file`: its path relative to the repository). */
export function scan_source(file: string, source: string): { defs: Found[]; traced: Found[] } {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const defs: Found[] = [];
  const traced: Found[] = [];
  const lineOf = (pos: number) => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const place = (node: ts.Node, name: string, kind: Found['kind'], owner?: string): Found => {
    // The listing starts at the doc comment (the lab's why), the line at the declaration.
    const start = node.getStart(sf, true);
    return {
      name,
      kind,
      ...(owner ? { owner } : {}),
      file,
      line: lineOf(node.getStart(sf, false)),
      first: lineOf(start),
      text: source.slice(start, node.getEnd()),
    };
  };
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionDeclaration(node) && node.name && node.body) {
      defs.push(place(node, node.name.text, 'function'));
    } else if (ts.isMethodDeclaration(node) && ts.isIdentifier(node.name) && node.body && ts.isClassLike(node.parent)) {
      defs.push(place(node, node.name.text, 'method', node.parent.name?.text));
    } else if (ts.isVariableStatement(node)) {
      // `const NAME = traced('NAME', (env, …) => { … })`: the function NAME, traced where it
      // is declared. A one-expression body is a traced call of a function declared
      // elsewhere (savevm.ts's, ram.ts's): a traced region, which that definition wins over.
      for (const d of node.declarationList.declarations) {
        const init = d.initializer;
        if (!ts.isIdentifier(d.name) || !init || !ts.isCallExpression(init) || tracedName(init) !== d.name.text) continue;
        const fn = init.arguments[1];
        if (fn && (ts.isArrowFunction(fn) || ts.isFunctionExpression(fn)) && ts.isBlock(fn.body)) defs.push(place(node, d.name.text, 'function'));
      }
    } else if (ts.isCallExpression(node)) {
      const name = tracedName(node);
      if (name) traced.push(place(statementOf(node), name, 'traced'));
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return { defs, traced };
}

/** 'NAME' of `traced('NAME', …)`, `traced_at('NAME', …)` or `….tracer.call(thread, 'NAME', …)`, or null. */
function tracedName(call: ts.CallExpression): string | null {
  const callee = call.expression;
  if (ts.isIdentifier(callee) && (callee.text === 'traced' || callee.text === 'traced_at')) {
    const arg = call.arguments[0];
    return arg && ts.isStringLiteral(arg) ? arg.text : null;
  }
  if (!ts.isPropertyAccessExpression(callee)) return null;
  const method = callee.name.text;
  let arg: ts.Expression | undefined;
  if (method === 'call' && /(^|\.)tracer$/.test(callee.expression.getText())) arg = call.arguments[1];
  return arg && ts.isStringLiteral(arg) ? arg.text : null;
}

/** The statement a call stands in (the listing shows the whole line it starts on). */
function statementOf(node: ts.Node): ts.Node {
  let n = node;
  while (n.parent && !ts.isBlock(n.parent) && !ts.isSourceFile(n.parent) && !ts.isArrowFunction(n.parent)) n = n.parent;
  return n;
}

/**
 * The index of core/ under `root` (the repository): a name the tracer reports is indexed
 * whatever its file; a definition only when its name is QEMU-shaped, its file mirrors a
 * QEMU file (or the table names its place) and it is not one of the lab's helpers. A
 * definition wins over a traced region of the same name; among definitions, the first in
 * path order.
 */
export function build_source_index(root: string): LabSourceIndex {
  const defs: Found[] = [];
  const traced: Found[] = [];
  for (const path of tsFiles(join(root, 'core'))) {
    const file = relative(root, path).split(sep).join('/');
    const found = scan_source(file, readFileSync(path, 'utf8'));
    defs.push(...found.defs);
    traced.push(...found.traced);
  }
  const tracedNames = new Set(traced.map((t) => t.name));
  const index: LabSourceIndex = {};
  const add = (f: Found) => {
    if (Object.hasOwn(index, f.name)) return;
    const qemu = qemu_place(f.file, f.name);
    if (qemu) index[f.name] = { ...f, traced: tracedNames.has(f.name), qemu };
  };
  for (const d of defs) if (QEMU_NAME.test(d.name) && !LAB_HELPERS.has(d.name)) add(d);
  for (const t of traced) add(t);
  return index;
}
