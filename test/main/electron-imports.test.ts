/**
 * Value imports of `electron` live in main/ only (DESIGN: core/ and host/ run in plain
 * Node, the renderer in a sandbox). A type-only import is fine anywhere. scripts/start.mjs
 * finds the Electron binary by reading electron's path.txt and never loads the module
 * (loading it would try to download a missing binary); it is scanned like the rest.
 * Also: the sandboxed preload repeats host/ipc-guard.ts's channel names; they must agree.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IPC } from '../../host/ipc-guard.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SCANNED = ['core', 'cli', 'host', 'renderer', 'scripts', 'bin', 'bench', 'test', 'main'];
const SOURCE = /\.(ts|mts|cts|js|mjs|cjs|svelte)$/;
const E = 'electron'; // kept out of the patterns' literal text so this file scans clean

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name === 'dist-renderer' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (SOURCE.test(name)) out.push(p);
  }
  return out;
}

/** The value imports of electron in one source text (each as written). */
export function electronValueImports(text: string): string[] {
  const found: string[] = [];
  const mod = `['"]${E}(?:/[^'"]*)?['"]`;
  // Static imports and re-exports from the module, unless type-only.
  for (const m of text.matchAll(new RegExp(`\\b(import|export)\\s+([^;'"]*?)\\s*from\\s*${mod}`, 'g'))) {
    const clause = m[2].trim();
    if (/^type\b/.test(clause)) continue;
    const braces = /^\{([^}]*)\}$/.exec(clause);
    if (braces && braces[1].split(',').every((s) => s.trim() === '' || /^type\s/.test(s.trim()))) continue;
    found.push(m[0]);
  }
  for (const re of [`\\bimport\\s*${mod}`, `\\brequire\\s*\\(\\s*${mod}\\s*\\)`, `\\bimport\\s*\\(\\s*${mod}\\s*\\)`]) {
    for (const m of text.matchAll(new RegExp(re, 'g'))) found.push(m[0]);
  }
  return found;
}

describe('electron value imports', () => {
  it('the scanner tells value imports from type-only ones', () => {
    const q = (s: string) => s.replace(/EL/g, E);
    expect(electronValueImports(q(`import { app } from 'EL';`))).toHaveLength(1);
    expect(electronValueImports(q(`import EL from "EL";`))).toHaveLength(1);
    expect(electronValueImports(q(`import * as el from 'EL/main';`))).toHaveLength(1);
    expect(electronValueImports(q(`import { type A, app } from 'EL';`))).toHaveLength(1);
    expect(electronValueImports(q(`import 'EL';`))).toHaveLength(1);
    expect(electronValueImports(q(`const { app } = require('EL');`))).toHaveLength(1);
    expect(electronValueImports(q(`const el = await import("EL");`))).toHaveLength(1);
    expect(electronValueImports(q(`export { app } from 'EL';`))).toHaveLength(1);
    expect(electronValueImports(q(`import type { BrowserWindow } from 'EL';`))).toEqual([]);
    expect(electronValueImports(q(`import { type BrowserWindow, type App } from 'EL';`))).toEqual([]);
    expect(electronValueImports(q(`export type { App } from 'EL';`))).toEqual([]);
    expect(electronValueImports(q(`import { x } from 'EL-builder';`))).toEqual([]);
    expect(electronValueImports(q(`// the EL app\nconst p = 'EL';`))).toEqual([]);
  });

  it('only main/ imports a value from electron (and it does)', () => {
    const offenders: string[] = [];
    let inMain = 0;
    for (const top of SCANNED) {
      for (const f of files(join(ROOT, top))) {
        const found = electronValueImports(readFileSync(f, 'utf8'));
        const rel = relative(ROOT, f);
        if (rel.startsWith('main/')) inMain += found.length;
        else for (const imp of found) offenders.push(`${rel}: ${imp}`);
      }
    }
    expect(offenders).toEqual([]);
    expect(inMain).toBeGreaterThan(0);
  });

  it('the preload uses the guard’s channel names', () => {
    const preload = readFileSync(join(ROOT, 'main', 'preload.cts'), 'utf8');
    for (const name of Object.values(IPC)) expect(preload).toContain(`'${name}'`);
    expect(preload.match(/'miglab:[a-z]+'/g)?.sort()).toEqual(Object.values(IPC).map((n) => `'${n}'`).sort());
  });
});
