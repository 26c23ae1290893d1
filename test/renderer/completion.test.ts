/** Tab completion in the QMP console: command names, argument names, the loader's hidden requests, the line editor's Tab. */
import { describe, expect, it } from 'vitest';
import {
  COMPLETION_ID,
  CompletionLoader,
  argsFromQmpSchema,
  commandsFromReply,
  complete,
  formatColumns,
  isLabGreeting,
  labArgs,
  type CompletionData,
} from '../../renderer/src/lib/console/completion.js';
import { LineEditor } from '../../renderer/src/lib/console/line-editor.js';
import { SCHEMA } from '../../core/vm/vm.js';
import { parseJson } from '../helpers/json.js';

/** A request the loader sends. */
type QmpRequest = { execute: string; id: string };

const LAB_GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 9}, "package": "migration-lab 0.1.0"}, "capabilities": ["oob"]}}';
const QEMU_GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7"}, "capabilities": ["oob"]}}';

const data: CompletionData = {
  commands: ['migrate', 'migrate-incoming', 'migrate-set-parameters', 'query-migrate', 'query-migrate-capabilities', 'query-migrationthreads', 'query-status'],
  args: labArgs(),
};

describe('complete()', () => {
  it('completes a command name, with a space after a unique one', () => {
    expect(complete('query-st', data)).toEqual({ insert: 'atus ', candidates: ['query-status'] });
    expect(complete('migrate-set-p', data).insert).toBe('arameters ');
  });

  it('completes an ambiguous prefix to what the candidates share, and lists them', () => {
    const c = complete('query-mi', data);
    expect(c.insert).toBe('grat');
    expect(c.candidates).toEqual(['query-migrate', 'query-migrate-capabilities', 'query-migrationthreads']);
    expect(complete('query-migrat', data).insert).toBe('');
  });

  it("completes argument names from the lab's schema, as name=, leaving out those given", () => {
    expect(complete('migrate u', data)).toEqual({ insert: 'ri=', candidates: ['uri='] });
    expect(complete('migrate ', data).candidates).toContain('detach=');
    expect(complete('migrate ', data).candidates).toContain('channels=');
    expect(complete('migrate uri=tcp:1.2.3.4:5 ', data).candidates).not.toContain('uri=');
    expect(complete('migrate-set-parameters max-b', data).insert).toBe('andwidth=');
    expect(labArgs().get('x-miglab-query-ram-map')).toEqual(['bins']);
  });

  it("knows every command of the schema the lab's endpoint validates with, and their arguments", () => {
    const args = labArgs();
    expect([...args.keys()].sort()).toEqual(SCHEMA.commandNames().sort());
    for (const c of SCHEMA.commandNames()) expect(args.get(c)).toEqual(SCHEMA.commandMembers(SCHEMA.command(c)!).map((m) => m.name));
  });

  it('leaves values, raw JSON, hmp and unknown commands alone', () => {
    expect(complete('migrate uri=tc', data).insert).toBe('');
    expect(complete('{"execute": "query-mi', data).candidates).toEqual([]);
    expect(complete('hmp info mig', data).candidates).toEqual([]);
    expect(complete('no-such-command x', data).candidates).toEqual([]);
    expect(complete('zzz', data).candidates).toEqual([]);
  });
});

describe('completion data from QMP replies', () => {
  it("reads query-commands' names", () => {
    expect(commandsFromReply([{ name: 'query-status' }, { name: 'migrate' }, { nope: 1 }, null])).toEqual(['migrate', 'query-status']);
    expect(commandsFromReply({ error: 1 })).toEqual([]);
  });

  it("reads argument names from QEMU's query-qmp-schema (masked type names)", () => {
    const schema = [
      { name: 'migrate', 'meta-type': 'command', 'arg-type': '12', 'ret-type': '0' },
      { name: 'query-status', 'meta-type': 'command', 'arg-type': '0', 'ret-type': '5' },
      { name: '12', 'meta-type': 'object', members: [{ name: 'uri', type: 'str' }, { name: 'detach', type: 'bool', default: null }] },
      { name: '0', 'meta-type': 'object', members: [] },
    ];
    const args = argsFromQmpSchema(schema);
    expect(args.get('migrate')).toEqual(['uri', 'detach']);
    expect(args.get('query-status')).toEqual([]);
    expect(argsFromQmpSchema('bad').size).toBe(0);
  });

  it('tells the lab from another QMP server by its greeting', () => {
    expect(isLabGreeting(LAB_GREETING)).toBe(true);
    expect(isLabGreeting(QEMU_GREETING)).toBe(false);
    expect(isLabGreeting(null)).toBe(false);
  });
});

describe('CompletionLoader', () => {
  it('asks a lab endpoint for query-commands only, and keeps its replies from the console', () => {
    const l = new CompletionLoader();
    const sent = l.begin(LAB_GREETING);
    expect(sent).toHaveLength(1);
    const req = parseJson<QmpRequest>(sent[0]);
    expect(req.execute).toBe('query-commands');
    expect(l.accept('{"return": {"status": "running", "running": true}}')).toBe(false);
    expect(l.ready).toBe(false);
    expect(l.accept(JSON.stringify({ return: [{ name: 'migrate' }, { name: 'query-migrate' }], id: req.id }))).toBe(true);
    expect(l.ready).toBe(true);
    expect(complete('migrate ', l.data).candidates).toContain('uri=');
  });

  it('asks another server for its schema too, and ignores replies meant for an earlier endpoint', () => {
    const l = new CompletionLoader();
    const old = parseJson<QmpRequest>(l.begin(QEMU_GREETING)[0]).id;
    const sent = l.begin(QEMU_GREETING).map((t) => parseJson<QmpRequest>(t));
    expect(sent.map((r) => r.execute)).toEqual(['query-commands', 'query-qmp-schema']);
    expect(l.accept(JSON.stringify({ return: [{ name: 'stale' }], id: old }))).toBe(true);
    expect(l.accept(JSON.stringify({ return: [{ name: 'migrate' }], id: sent[0].id }))).toBe(true);
    expect(l.ready).toBe(false);
    const schema = [
      { name: 'migrate', 'meta-type': 'command', 'arg-type': '1' },
      { name: '1', 'meta-type': 'object', members: [{ name: 'uri', type: 'str' }] },
    ];
    expect(l.accept(JSON.stringify({ return: schema, id: sent[1].id }))).toBe(true);
    expect(l.data.commands).toEqual(['migrate']);
    expect(complete('migrate ', l.data).candidates).toEqual(['uri=']);
    expect(l.accept(`{"return": [], "id": "${COMPLETION_ID}-x"}`)).toBe(false);
  });
});

describe('Tab in the line editor', () => {
  it('completes at the cursor, then lists the candidates above the prompt on a second Tab', () => {
    const ed = new LineEditor('> ', 2, 80);
    ed.completer = (before) => complete(before, data);
    ed.start();
    ed.feed('query-mi');
    ed.feed('\t');
    expect(ed.line).toBe('query-migrat');
    const out = ed.feed('\t').out;
    expect(ed.line).toBe('query-migrat');
    expect(out).toContain('query-migrationthreads');
    // The line being typed is drawn again below the list.
    expect(out.endsWith('\r' + '\x1b[14C')).toBe(true);
    expect(out.lastIndexOf('> query-migrat')).toBeGreaterThan(out.indexOf('query-migrationthreads'));
    ed.feed('e-c\t');
    expect(ed.line).toBe('query-migrate-capabilities ');
  });

  it('completes in the middle of a line and does nothing without a completer', () => {
    const ed = new LineEditor('> ', 2, 80);
    ed.start();
    ed.feed('migr\t');
    expect(ed.line).toBe('migr');
    ed.completer = (before) => complete(before, data);
    ed.feed('\x1b[D\x1b[D\x1b[D\x1b[D'); // home, by arrows
    ed.feed('query-s\t');
    expect(ed.line).toBe('query-status migr');
    expect(ed.cursor).toBe('query-status '.length);
  });

  it('lists candidates in columns across the width', () => {
    expect(formatColumns(['a', 'bb', 'ccc', 'd'], 10)).toBe('a    ccc\nbb   d');
    expect(formatColumns([], 10)).toBe('');
  });
});
