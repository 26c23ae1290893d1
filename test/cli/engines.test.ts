/**
 * Which Node each part needs, as package.json's `engines` and the README say: no lower
 * than what the tools of the CLI, the build and the tests declare (vite 8 refuses Node
 * 20 before 20.19), and the desktop app's Node is electron's own requirement, read from
 * the installed electron, not remembered.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url);
const json = (path: string) => JSON.parse(readFileSync(new URL(path, ROOT), 'utf8')) as { version: string; engines?: { node?: string } };

/** The lowest Node a range admits: its first version (ranges here are written lowest first). */
function lowest(range: string): [number, number, number] {
  const m = /(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(range);
  if (!m) throw new Error(`no version in '${range}'`);
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

const at_least = (a: [number, number, number], b: [number, number, number]) => a[0] > b[0] || (a[0] === b[0] && (a[1] > b[1] || (a[1] === b[1] && a[2] >= b[2])));

describe('engines', () => {
  const ours = json('package.json').engines!.node!;

  it('admit no Node that the CLI, the build or the tests refuse', () => {
    for (const tool of ['commander', 'vite', '@sveltejs/vite-plugin-svelte', 'vitest', 'playwright-core']) {
      const theirs = json(`node_modules/${tool}/package.json`).engines!.node!;
      expect(at_least(lowest(ours), lowest(theirs)), `${tool} wants ${theirs}; package.json says ${ours}`).toBe(true);
    }
    // vite and its svelte plugin skip Node 21 and 23 and 22 before 22.12: so do we.
    expect(ours).toBe('^20.19.0 || ^22.12.0 || >=24.0.0');
  });

  it("the README gives each part its Node, the desktop app electron's own", () => {
    const readme = readFileSync(new URL('README.md', ROOT), 'utf8');
    const electron = json('node_modules/electron/package.json');
    const [maj, min] = lowest(electron.engines!.node!);
    expect(electron.version.split('.')[0]).toBe('45');
    expect(readme).toContain(`| the desktop app: \`npm start\`, \`npm run dist\` | ${maj}.${min} or newer: electron 45 declares \`"node": "${electron.engines!.node}"\``);
    const [cmaj, cmin] = lowest(ours);
    expect(readme).toContain(`| ${cmaj}.${cmin} or newer on ${cmaj}, 22.12 or newer on 22, or 24+ |`);
    expect(readme).not.toMatch(/Node 20 or newer/);
  });
});
