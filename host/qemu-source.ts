/**
 * QEMU's C beside the lab's TypeScript: a local QEMU source tree the user points the lab
 * at (the source view's setting, `miglab serve --qemu-source DIR`), remembered by the host
 * for its session. QEMU is GPL and not bundled; the lab reads the user's own tree.
 *
 * Only the file the source index (dist-renderer/source-index.json, built from
 * core/trace/qemu-files.ts's table) names for a function is read, and only a .c or .h
 * file inside the tree: the client names a function, never a path under the tree.
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve, sep } from 'node:path';
import type { LabSourceIndex } from '../core/trace/qemu-files.js';
import type { QemuSource } from './api.js';
import { find_c_definition } from './c-definition.js';
import { HostError } from './endpoints.js';

/** The file whose presence makes a directory a QEMU tree. */
export const QEMU_TREE_MARK = 'migration/migration.c';

export class QemuSourceTree {
  private root: string | null = null;
  private index: LabSourceIndex | null = null;

  /** `indexFile`: the built source index (read on first use); `dir`: a tree to start with (checked now). */
  constructor(private readonly indexFile: string | null, dir?: string | null) {
    if (dir) this.set(dir);
  }

  /** The tree in use, or null. */
  get dir(): string | null {
    return this.root;
  }

  /** Use `dir` as the QEMU tree ('' : none). Throws a one-line HostError when it is not one. */
  set(dir: string): string | null {
    if (dir === '') return (this.root = null);
    if (!isAbsolute(dir)) throw new HostError(`${dir}: the QEMU source tree must be given as an absolute path`);
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      throw new HostError(`${dir}: no such directory`);
    }
    if (!statSync(real).isDirectory()) throw new HostError(`${dir}: not a directory`);
    if (!existsSync(join(real, QEMU_TREE_MARK))) throw new HostError(`${dir} is not a QEMU source tree: it has no ${QEMU_TREE_MARK}`);
    return (this.root = real);
  }

  /** QEMU's C definition of `fn`, from the file the index names (10.0's name and file where 9.0's is not found and 10.0 renamed it). */
  read(fn: string): QemuSource {
    const root = this.root;
    if (!root) throw new HostError('no QEMU source tree is set: give one in the source view, or start with --qemu-source DIR');
    const entry = this.entries()[fn];
    if (!entry) throw new HostError(`${fn} is not a function the lab models`);
    // QEMU's name where the lab's function is named otherwise (qemu-files.ts's `name`).
    const qemuName = entry.qemu.name ?? fn;
    const tries: { file: string; name: string }[] = [{ file: entry.qemu.file, name: qemuName }];
    const v10 = entry.qemu.v10;
    if (v10 && 'file' in v10) tries.push({ file: v10.file, name: v10.name ?? qemuName });
    for (const t of tries) {
      const text = readTreeFile(root, t.file);
      const def = text === null ? null : find_c_definition(text, t.name);
      if (def) return t.name === fn ? { file: t.file, line: def.line, text: def.text } : { file: t.file, line: def.line, text: def.text, name: t.name };
    }
    const where = tries.map((t) => (t.name === fn ? t.file : `${t.file} (as ${t.name})`)).join(' or ');
    throw new HostError(`${fn}: function not found in ${where} of ${root}`);
  }

  private entries(): LabSourceIndex {
    if (this.index) return this.index;
    if (!this.indexFile) throw new HostError('the source index is not available (the renderer was not built: npm run build)');
    try {
      return (this.index = JSON.parse(readFileSync(this.indexFile, 'utf8')) as LabSourceIndex);
    } catch (e) {
      throw new HostError(`the source index cannot be read (${(e as Error).message}); run npm run build`);
    }
  }
}

/** A .c or .h file under `root` (its real path stays inside), or null when there is none. */
function readTreeFile(root: string, file: string): string | null {
  if (!/\.[ch]$/.test(file)) return null;
  const path = resolve(root, file);
  try {
    const real = realpathSync(path);
    if (!real.startsWith(root + sep)) return null;
    return readFileSync(real, 'utf8');
  } catch {
    return null;
  }
}
