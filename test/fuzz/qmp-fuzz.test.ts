/**
 * Fuzzing the QMP endpoint: property tests (fast-check) over commands from the schema with
 * corrupted arguments, mutated and truncated requests, token soup, binary bytes, huge
 * lines, and random splitting of the byte stream.
 *
 * The bulk runs in-process: a VirtualMachine over a real 1 MiB Guest (idle workload, RAM
 * filled with random bytes so that a digest can prove nothing wrote to it) with
 * MonitorQMP sessions whose output is collected write by write. A smaller batch then goes
 * to a real `miglab vm` process over its unix socket.
 *
 * What every input must satisfy:
 *  - nothing throws, no promise rejects, the process stays alive;
 *  - every write is one line of pure printable ASCII ended by CRLF, a JSON object shaped as
 *    QEMU's: the greeting, {"return": R} or {"return": R, "id": I},
 *    {"error": {"class": C, "desc": D}} or {"id": I, "error": {...}} (QEMU's key orders),
 *    or {"timestamp": {"seconds", "microseconds"}, "event": E[, "data": {...}]}, with C
 *    among QEMU's error classes, D never the lab's "Internal error" and E a schema event;
 *  - well-formed requests get exactly one reply, carrying their id unchanged;
 *  - a request with exactly one corrupted argument gets QEMU's visitor message for it;
 *  - splitting the same bytes into chunks anywhere changes nothing in the replies;
 *  - before negotiation every command but qmp_capabilities is refused, and no event arrives;
 *  - afterwards the endpoint still answers: query-status (consistent with HMP `info
 *    status`) and guest RAM unchanged (idle workload).
 *
 * Recovering after garbage, as a real client must: QEMU's JSON streamer
 * (qobject/json-streamer.c) keeps queuing tokens while a '{' or '[' is unbalanced, and an
 * unterminated string swallows everything up to the next quote, newlines included, so a
 * newline alone does not end a broken request. A byte that never occurs in JSON — 0xFF,
 * the delimiter qemu-ga's guest-sync-delimited uses for the same purpose — makes the lexer
 * report an error in any state; the streamer then drops everything it had queued, and the
 * lexer skips to the next newline. So the probe is sent as "\xFF\n" + request (costing at
 * most one extra "JSON parse error, stray ..." reply). Some inputs instead get a brand new
 * connection (a fresh parser), as a client that gave up on the old one would.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MonitorQMP } from '../../core/qmp/monitor.js';
import { RUN_STATES } from '../../core/qmp/schema/run-state.js';
import type { QapiMember, QapiTypeRef } from '../../core/qmp/schema/types.js';
import { Guest } from '../../core/vm/guest.js';
import type { QmpContext } from '../../core/vm/qmp-cmds.js';
import { SCHEMA, VirtualMachine, type GuestMemoryAccess } from '../../core/vm/vm.js';
import { BLOB_BIN, spawnEndpoint, type Endpoint } from '../helpers/endpoint-process.js';
import { cooperative_runtime } from '../../core/migration/runtime/runtimes.js';
import type { QmpErrorObject } from '../helpers/json.js';

const SEED = 20240423; // fixed: a failure is reproducible; fast-check prints the counterexample
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;
const ERROR_CLASSES = ['GenericError', 'CommandNotFound', 'DeviceNotActive', 'DeviceNotFound', 'KVMMissingCap'];
const NEGOTIATE_FIRST = "Expecting capabilities negotiation with 'qmp_capabilities'";
/** The reply to the 0xFF of a parser reset (QEMU prints the invalid byte as U+FFFD). */
const STRAY_FF = "JSON parse error, stray '\ufffd'";

const counts = { inProcess: 0, process: 0 };

// ---------------------------------------------------------------------------------------
// JSON text with the literals JavaScript cannot hold (1e400, 2^64, -0.0, raw bytes).

class Raw {
  constructor(readonly text: string) {}
}
type JV = null | boolean | number | string | Raw | JV[] | { [k: string]: JV };

interface Style {
  /** ", " and ": " as QEMU writes, or compact. */
  sp: boolean;
  /** Single-quoted strings (QEMU's extension). */
  sq: boolean;
}

function encStr(s: string, sq: boolean): string {
  if (!sq) return JSON.stringify(s);
  let r = "'";
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === "'") r += "\\'";
    else if (ch === '\\') r += '\\\\';
    else if (c < 0x20) r += '\\u' + c.toString(16).padStart(4, '0');
    else r += ch;
  }
  return r + "'";
}

function enc(v: JV, st: Style): string {
  const comma = st.sp ? ', ' : ',';
  const colon = st.sp ? ': ' : ':';
  if (v === null) return 'null';
  if (v instanceof Raw) return v.text;
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') return JSON.stringify(v);
  if (typeof v === 'string') return encStr(v, st.sq);
  if (Array.isArray(v)) return '[' + v.map((x) => enc(x, st)).join(comma) + ']';
  return '{' + Object.entries(v).map(([k, x]) => encStr(k, st.sq) + colon + enc(x, st)).join(comma) + '}';
}

const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
const latin1 = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

// ---------------------------------------------------------------------------------------
// Generators.

/** Characters that are all valid in QMP strings: controls, quotes, non-ASCII, astral. */
const HOSTILE_CHARS = [
  ...'abcxyz019 -_.:/,{}[]"\'\\%',
  '\u0000', '\u0001', '\t', '\n', '\r', '\u001f', '\u007f', '\u0080', 'é', 'ß', 'ÿ', '\u0301',
  '中', '\u202e', '\u2028', '\ufeff', '\ufffd', '😀', '\u{10fffd}',
];
const hostileString = (maxLength = 24) =>
  fc.string({ unit: fc.constantFrom(...HOSTILE_CHARS), maxLength });

/** URIs whose use can never reach anything (now or once the migration engine exists). */
const SAFE_URIS = ['foo:bar', '', 'tcp:127.0.0.1', 'fd:nosuchfd', 'unix:/nonexistent/miglab-fuzz.sock', 'defer'];
const SAFE_ADDRESSES: JV[] = [
  { transport: 'socket', type: 'unix', path: '/nonexistent/miglab-fuzz.sock' },
  { transport: 'socket', type: 'fd', str: 'nosuchfd' },
  { transport: 'rdma', host: '127.0.0.1', port: '1' },
];

const HMP_WS = fc.constantFrom('', ' ', '  ', '\t');
const HMP_NAMES = [
  'info status', 'info migrate', 'info migrate_capabilities', 'info migrate_parameters', 'info version',
  'info', 'info nosuch', 'help', '?', 'stop', 'cont', 'migrate_cancel', 'nosuch-command', 'x/y',
];
const CAP_NAMES = ['events', 'xbzrle', 'postcopy-ram', 'postcopy-preempt', 'x-ignore-shared', 'multifd', 'nosuch-cap', ''];
const PARAM_NAMES = ['downtime-limit', 'max-bandwidth', 'multifd-channels', 'compress-level', 'tls-creds',
  'xbzrle-cache-size', 'announce-max', 'cpu-throttle-initial', 'multifd-compression', 'mode', 'nosuch-param'];
const PARAM_VALUES = ['0', '1', '-1', '300', '2000001', '1M', '16M', '1.5', '0x10', '18446744073709551615',
  '18446744073709551616', 'on', 'off', 'zstd', 'none', 'cpr-reboot', 'abc', ''];

/** human-monitor-command lines: the lab's HMP commands with good and bad arguments, and junk. */
const hmpLine: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(HMP_WS, fc.constantFrom(...HMP_NAMES), HMP_WS).map((p) => p.join('')),
  fc
    .tuple(fc.constantFrom(...CAP_NAMES), fc.constantFrom('on', 'off', 'maybe', ''), fc.constantFrom('', ' extra'))
    .map(([c, s, x]) => `migrate_set_capability ${c} ${s}${x}`),
  fc
    .tuple(fc.constantFrom(...PARAM_NAMES), fc.constantFrom(...PARAM_VALUES))
    .map(([p, v]) => `migrate_set_parameter ${p} ${v}`),
  hostileString(40),
);

/** Ids: strings, integers, doubles that print back exactly, nested values. */
const idArb: fc.Arbitrary<JV> = fc.oneof(
  hostileString(12),
  fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
  fc.constantFrom(1.5, 0.1, -2.25, 1e21, 123.456),
  fc.constant(null),
  fc.constant(true),
  fc.array(fc.oneof(fc.integer(), hostileString(6)), { maxLength: 3 }),
  fc.dictionary(fc.constantFrom('a', 'b', 'id', 'é'), fc.oneof(fc.integer(), hostileString(6)), { maxKeys: 3 }),
);

const styleArb: fc.Arbitrary<Style> = fc.record({ sp: fc.boolean(), sq: fc.boolean() });

const int64Arb = fc.oneof(
  fc.integer({ min: -1000, max: 1 << 20 }),
  fc.constantFrom(new Raw(INT64_MIN.toString()), new Raw(INT64_MAX.toString()), 0, -1),
);
const uintArb = (bits: number): fc.Arbitrary<JV> => {
  const max = (1n << BigInt(bits)) - 1n;
  return fc.oneof(
    fc.integer({ min: 0, max: Number(max < 100000n ? max : 100000n) }),
    fc.constant(bits === 64 ? new Raw(max.toString()) : Number(max)),
  );
};

/** A valid value of a QAPI type (member names pick safe strings where it matters). */
function validValue(t: QapiTypeRef, member: string, depth = 0): fc.Arbitrary<JV> {
  if (typeof t !== 'string') {
    if (depth > 2) return fc.constant([]);
    return fc.array(validValue(t.array, member, depth + 1), { maxLength: 2 });
  }
  switch (t) {
    case 'str':
      if (member === 'command-line') return hmpLine;
      if (member === 'uri') return fc.constantFrom(...SAFE_URIS);
      if (member === 'filename') return fc.constantFrom('dump.bin', '', '/nonexistent/dir/dump.bin');
      return hostileString();
    case 'bool':
      return fc.boolean();
    case 'int':
    case 'int64':
      return int64Arb;
    case 'int8':
      return fc.integer({ min: -128, max: 127 });
    case 'int16':
      return fc.integer({ min: -32768, max: 32767 });
    case 'int32':
      return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    case 'uint8':
      return uintArb(8);
    case 'uint16':
      return uintArb(16);
    case 'uint32':
      return uintArb(32);
    case 'uint64':
    case 'size':
      return fc.oneof(uintArb(64), fc.constant(-1)); // negative input wraps (QEMU compat)
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true });
    case 'null':
      return fc.constant(null);
    case 'any':
      return idArb;
  }
  if (t === 'MigrationAddress') return fc.constantFrom(...SAFE_ADDRESSES);
  const def = SCHEMA.type(t);
  if (!def) throw new Error(`schema type ${t} unknown`);
  switch (def.kind) {
    case 'enum':
      return fc.constantFrom(...def.values);
    case 'alternate':
      return fc.oneof(...def.branches.map((b) => validValue(b, member, depth)));
    case 'struct':
      return structValue(def.members, depth + 1);
  }
}

function structValue(members: readonly QapiMember[], depth = 0): fc.Arbitrary<{ [k: string]: JV }> {
  const shape: Record<string, fc.Arbitrary<JV>> = {};
  for (const m of members) shape[m.name] = validValue(m.type, m.name, depth);
  const required = members.filter((m) => !m.optional).map((m) => m.name);
  return fc.record(shape, { requiredKeys: required });
}

/** A wrong value with what QEMU's parser makes of it. */
type Kind = 'string' | 'bool' | 'null' | 'array' | 'object' | 'int' | 'double';
interface Wrong {
  v: JV;
  kind: Kind;
  /** For 'int': the value (QNum I64 or U64). */
  int?: bigint;
}

function intLiteral(n: bigint): Wrong {
  // An integer literal beyond int64 and uint64 becomes a double (json-parser.c).
  const isInt = n >= INT64_MIN && n <= UINT64_MAX;
  return isInt ? { v: new Raw(n.toString()), kind: 'int', int: n } : { v: new Raw(n.toString()), kind: 'double' };
}

const deepArray = (d: number) => new Raw('['.repeat(d) + ']'.repeat(d));

const wrongArb: fc.Arbitrary<Wrong> = fc.oneof(
  fc.constantFrom<Wrong>(
    { v: 'nosuch-vålue-⚡', kind: 'string' },
    { v: '', kind: 'string' },
    { v: '\u0000', kind: 'string' },
    { v: 'x'.repeat(100_000), kind: 'string' },
    { v: true, kind: 'bool' },
    { v: false, kind: 'bool' },
    { v: null, kind: 'null' },
    { v: [1, 'x'], kind: 'array' },
    { v: deepArray(300), kind: 'array' },
    { v: { a: 1 }, kind: 'object' },
    { v: {}, kind: 'object' },
    { v: 1.5, kind: 'double' },
    { v: new Raw('2.0'), kind: 'double' },
    { v: new Raw('-0.0'), kind: 'double' },
    { v: new Raw('1e400'), kind: 'double' },
    { v: new Raw('-1e400'), kind: 'double' },
  ),
  fc.constantFrom(0n, -1n, 255n, 256n, 65536n, 1n << 31n, 1n << 32n, INT64_MAX, INT64_MIN, 1n << 63n, UINT64_MAX,
    UINT64_MAX + 1n, INT64_MIN - 1n, 10n ** 30n).map(intLiteral),
  fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }).map(intLiteral),
  hostileString(30).map((s): Wrong => ({ v: s, kind: 'string' })),
);

// ---------------------------------------------------------------------------------------
// QEMU's visitor messages (qapi/qobject-input-visitor.c, qapi-visit-core.c) for a wrong
// value of a top-level member: null when the value is acceptable, 'skip' when the
// outcome depends on nested content the oracle does not model.

const typeErr = (name: string, expected: string) => `Invalid parameter type for '${name}', expected: ${expected}`;
const valueErr = (name: string, expected: string) => `Parameter '${name}' expects ${expected}`;

function visitorError(t: QapiTypeRef, name: string, w: Wrong): string | null | 'skip' {
  if (typeof t !== 'string') return w.kind === 'array' ? 'skip' : typeErr(name, 'array');
  const isInt64 = w.kind === 'int' && w.int! >= INT64_MIN && w.int! <= INT64_MAX;
  const isU64ish = w.kind === 'int'; // qnum_get_try_uint64 or the negative-compat int64 path
  switch (t) {
    case 'str':
      return w.kind === 'string' ? null : typeErr(name, 'string');
    case 'bool':
      return w.kind === 'bool' ? null : typeErr(name, 'boolean');
    case 'int':
    case 'int64':
      return isInt64 ? null : typeErr(name, 'integer');
    case 'int8':
    case 'int16':
    case 'int32': {
      if (!isInt64) return typeErr(name, 'integer');
      const bits = BigInt(t.slice(3));
      const lim = 1n << (bits - 1n);
      return w.int! >= -lim && w.int! < lim ? null : valueErr(name, `${t}_t`);
    }
    case 'uint64':
    case 'size':
      return isU64ish ? null : valueErr(name, 'uint64');
    case 'uint8':
    case 'uint16':
    case 'uint32': {
      if (!isU64ish) return valueErr(name, 'uint64');
      const v = w.int! < 0n ? w.int! + UINT64_MAX + 1n : w.int!;
      return v < 1n << BigInt(t.slice(4)) ? null : valueErr(name, `${t}_t`);
    }
    case 'number':
      return w.kind === 'int' || w.kind === 'double' ? null : typeErr(name, 'number');
    case 'null':
      return w.kind === 'null' ? null : typeErr(name, 'null');
    case 'any':
      return null;
  }
  const def = SCHEMA.type(t)!;
  switch (def.kind) {
    case 'enum':
      if (w.kind !== 'string') return typeErr(name, 'string');
      return def.values.includes(w.v as string) ? null : `Parameter '${name}' does not accept value '${w.v as string}'`;
    case 'struct':
      return w.kind === 'object' ? 'skip' : typeErr(name, 'object');
    case 'alternate': {
      // The generated visitor picks the branch by JSON type; the lab's alternates are StrOrNull.
      const ok = def.branches.some((b) => (b === 'str' && w.kind === 'string') || (b === 'null' && w.kind === 'null'));
      if (def.branches.some((b) => b !== 'str' && b !== 'null')) return 'skip';
      return ok ? null : typeErr(name, def.name);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Requests.

interface Request {
  cmd: string;
  text: string;
  /** The id sent, if any (as the reply must echo it). */
  id?: JV;
  /** The exact error desc QEMU's visitor gives, when one single corruption decides it. */
  expectDesc?: string;
  /** Request-level shape broken (execute/arguments/top-level members): a GenericError, no command run. */
  shapeBroken: boolean;
}

type Corruption =
  | { k: 'wrong'; member: number; w: Wrong }
  | { k: 'missing'; member: number }
  | { k: 'extra'; key: string; v: JV }
  | { k: 'deep'; member: number; depth: number }
  | { k: 'argsNotObject'; v: JV }
  | { k: 'topExtra'; key: string }
  | { k: 'executeNotString'; v: JV }
  | { k: 'noExecute' }
  | { k: 'execOob' };

const corruptionArb: fc.Arbitrary<Corruption> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('wrong' as const), member: fc.nat(), w: wrongArb }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('missing' as const), member: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('extra' as const),
      key: fc.oneof(fc.constantFrom('x-fuzz', 'id', 'execute', 'arguments', '__proto__', ''), hostileString(8)),
      v: idArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('deep' as const), member: fc.nat(), depth: fc.integer({ min: 1, max: 900 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('argsNotObject' as const),
      v: fc.constantFrom<JV>([], [1], 'x', 1, null, true),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('topExtra' as const), key: fc.constantFrom('foo', 'Execute', 'exec-oob', 'control') }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('executeNotString' as const), v: fc.constantFrom<JV>(42, null, [], {}, true) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'noExecute' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'execOob' as const }) },
);

function membersOf(cmd: string): readonly QapiMember[] {
  return SCHEMA.commandMembers(SCHEMA.command(cmd)!);
}

/** Build a request for `cmd` with valid `args`, then apply the corruptions in order. */
function buildRequest(
  cmd: string,
  args: { [k: string]: JV },
  corruptions: Corruption[],
  id: JV | undefined,
  st: Style,
): Request {
  const members = membersOf(cmd);
  const a: { [k: string]: JV } = { ...args };
  let argsValue: JV = a;
  let shapeBroken = false;
  const top: { [k: string]: JV } = {};
  let execKey: string | null = 'execute';
  let execValue: JV = cmd;
  let expectDesc: string | undefined;
  const single = corruptions.length === 1;
  for (const c of corruptions) {
    const m = members.length ? members[(c as { member?: number }).member! % members.length] : undefined;
    switch (c.k) {
      case 'wrong':
        if (!m) break;
        a[m.name] = c.w.v;
        if (single) {
          const e = visitorError(m.type, m.name, c.w);
          if (typeof e === 'string' && e !== 'skip') expectDesc = e;
        }
        break;
      case 'missing':
        if (!m) break;
        delete a[m.name];
        if (single && !m.optional) expectDesc = `Parameter '${m.name}' is missing`;
        break;
      case 'extra':
        if (members.some((x) => x.name === c.key)) break;
        setMember(a, c.key, c.v);
        if (single) expectDesc = `Parameter '${c.key}' is unexpected`;
        break;
      case 'deep':
        if (!m) break;
        a[m.name] = deepArray(c.depth);
        if (single) {
          const e = visitorError(m.type, m.name, { v: null, kind: 'array' });
          if (typeof e === 'string' && e !== 'skip') expectDesc = e;
        }
        break;
      case 'argsNotObject':
        argsValue = c.v;
        shapeBroken = true;
        break;
      case 'topExtra':
        top[c.key] = 1;
        shapeBroken = true;
        break;
      case 'executeNotString':
        execValue = c.v;
        shapeBroken = true;
        break;
      case 'noExecute':
        execKey = null;
        shapeBroken = true;
        break;
      case 'execOob':
        execKey = 'exec-oob';
        shapeBroken = true;
        break;
    }
  }
  if (shapeBroken) expectDesc = undefined;
  const req: { [k: string]: JV } = {};
  if (execKey) req[execKey] = execValue;
  if (argsValue !== a || Object.keys(a).length || members.length) req.arguments = argsValue;
  Object.assign(req, top);
  if (id !== undefined) req.id = id;
  return { cmd, text: enc(req, st), id, expectDesc, shapeBroken };
}

const STUB_MEMORY: GuestMemoryAccess = { pmemsave() {} };
const STUB_VCPUS = { pause_all_vcpus: async () => {}, resume_all_vcpus: () => {} };

/** The commands the endpoint registers (what query-commands lists). */
const COMMANDS = new VirtualMachine({ memory: STUB_MEMORY, vcpus: STUB_VCPUS, runtime: cooperative_runtime }).commands.names();

/** A schema command with valid arguments and up to `maxCorruptions` corruptions. */
function requestArb(maxCorruptions: number, exclude: readonly string[] = []): fc.Arbitrary<Request> {
  const cmds = COMMANDS.filter((c) => !exclude.includes(c));
  return fc
    .constantFrom(...cmds)
    .chain((cmd) =>
      fc.record({
        cmd: fc.constant(cmd),
        args: structValue(membersOf(cmd)),
        corruptions: fc.array(corruptionArb, { maxLength: maxCorruptions }),
        id: fc.option(idArb, { nil: undefined }),
        st: styleArb,
      }),
    )
    .map((r) => buildRequest(r.cmd, r.args, r.corruptions, r.id, r.st));
}

/** Random split points for a byte stream. */
const cutsArb = fc.array(fc.nat(), { maxLength: 6 });

function chunks(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const pts = [...new Set(cuts.map((c) => (bytes.length ? c % (bytes.length + 1) : 0)))].sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...pts, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

/** Junk that exercises the lexer's states: structure, quotes, escapes, bad UTF-8, 0x00/0xFF. */
const JUNK = [
  '{', '}', '[', ']', ':', ',', '"', "'", '\\', '\\u', '\\ud800', '\\u0000', '\u0000', '\n', '\t', ' ',
  'true', 'nul', 'x', '-', '0', '00', '1e', '1.', '-0.', '9'.repeat(30), '\x7f', '\x80', '\xc0\x80', '\xc3',
  '\xe2\x82', '\xed\xa0\x80', '\xef\xbf\xbe', '\xf4\x90\x80\x80', '\xfe', '\xff', '%', '"execute"', "'id'",
  '{"execute": "query-status"}', '{"execute": "stop"}', '{"execute": "cont"}',
];

interface Mutation {
  op: number;
  pos: number;
  len: number;
  byte: number;
  junk: string;
}

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  op: fc.nat(7),
  pos: fc.nat(),
  len: fc.integer({ min: 1, max: 16 }),
  byte: fc.nat(255),
  junk: fc.constantFrom(...JUNK),
});

/** Byte-level mutations of a request: flips, replacements, insertions, deletions, truncation. */
function mutate(input: Uint8Array, muts: Mutation[]): Uint8Array {
  let b = Buffer.from(input);
  for (const m of muts) {
    const p = m.pos % (b.length + 1);
    switch (m.op) {
      case 0:
        if (b.length) b[p % b.length] = b[p % b.length] ^ (1 << (m.byte & 7));
        break;
      case 1:
        if (b.length) b[p % b.length] = m.byte;
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, p), Buffer.from([m.byte]), b.subarray(p)]);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, p), Buffer.from(m.junk, 'latin1'), b.subarray(p)]);
        break;
      case 4:
        b = Buffer.concat([b.subarray(0, p), b.subarray(Math.min(b.length, p + m.len))]);
        break;
      case 5:
        b = Buffer.concat([b.subarray(0, p), b.subarray(p, p + m.len), b.subarray(p)]);
        break;
      case 6:
        b = b.subarray(0, p);
        break;
      default:
        b = Buffer.concat([b.subarray(p), b.subarray(0, p)]);
    }
  }
  return new Uint8Array(b);
}

const mutatedArb: fc.Arbitrary<Uint8Array> = fc
  .tuple(requestArb(1), fc.array(mutationArb, { minLength: 1, maxLength: 6 }))
  .map(([r, muts]) => mutate(utf8(r.text), muts));

const soupArb: fc.Arbitrary<Uint8Array> = fc
  .array(fc.constantFrom(...JUNK), { maxLength: 60 })
  .map((toks) => latin1(toks.join('')));

const nestingArb: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.integer({ min: 1, max: 1500 }), fc.constantFrom('[', '{', '{"a":'), fc.integer({ min: 0, max: 1600 }), fc.constantFrom(']', '}'))
  .map(([d, open, c, close]) => latin1(open.repeat(d) + close.repeat(c)));

const garbageArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 512 }) },
  { weight: 4, arbitrary: soupArb },
  { weight: 1, arbitrary: nestingArb },
  {
    weight: 2,
    // Truncations of valid requests: an unfinished object, string or keyword.
    arbitrary: fc.tuple(requestArb(0), fc.nat()).map(([r, n]) => {
      const b = utf8(r.text);
      return b.subarray(0, n % Math.max(1, b.length));
    }),
  },
);

// ---------------------------------------------------------------------------------------
// Checking what the endpoint writes.

/** The tolerant parse for QEMU's non-JSON doubles: an id of 1e400 comes back as `inf`. */
function parseQmpText(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    // Replace bare inf/-inf/nan outside strings (QEMU's "%.17g" prints them too).
    let out = '';
    let inStr = false;
    for (let i = 0; i < body.length; i++) {
      const ch = body[i];
      if (inStr) {
        out += ch;
        if (ch === '\\') out += body[++i] ?? '';
        else if (ch === '"') inStr = false;
        continue;
      }
      if (ch === '"') inStr = true;
      const m = /^-?(inf|nan)/.exec(body.slice(i, i + 4));
      if (!inStr && m) {
        out += 'null';
        i += m[0].length - 1;
        continue;
      }
      out += ch;
    }
    return JSON.parse(out);
  }
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(msg: string, line: string): never {
  throw new Error(`${msg}: ${line.length > 600 ? line.slice(0, 600) + `... (${line.length} chars)` : line}`);
}

/** A line's JSON object; checkBody() has checked the members its kind has. */
type Body = { return?: unknown; error?: QmpErrorObject; id?: unknown; [member: string]: unknown };

type Line =
  | { kind: 'greeting'; v: Body }
  | { kind: 'return'; v: Body & { return: unknown }; hasId: boolean }
  | { kind: 'error'; v: Body & { error: QmpErrorObject }; hasId: boolean }
  | { kind: 'event'; v: Body };

/** One line's body (CRLF stripped), checked against QEMU's output shapes. */
function checkBody(body: string): Line {
  if (!/^[\x20-\x7e]*$/.test(body)) fail('not printable ASCII (or a CR/LF inside the line)', JSON.stringify(body));
  let v: unknown;
  try {
    v = parseQmpText(body);
  } catch {
    fail('not JSON', body);
  }
  if (!isPlainObject(v)) fail('not a JSON object', body);
  const keys = Object.keys(v).join(',');
  switch (keys) {
    case 'QMP': {
      const q = v.QMP;
      if (!isPlainObject(q) || Object.keys(q).join(',') !== 'version,capabilities') fail('bad greeting', body);
      if (!isPlainObject(q.version) || Object.keys(q.version).join(',') !== 'qemu,package') fail('bad greeting version', body);
      if (!isPlainObject(q.version.qemu) || Object.keys(q.version.qemu).join(',') !== 'micro,minor,major') fail('bad greeting triple', body);
      if (!Array.isArray(q.capabilities)) fail('bad greeting capabilities', body);
      return { kind: 'greeting', v };
    }
    case 'return':
    case 'return,id':
      return { kind: 'return', v: v as Body & { return: unknown }, hasId: keys === 'return,id' };
    case 'error':
    case 'id,error': {
      const e = v.error;
      if (!isPlainObject(e) || Object.keys(e).join(',') !== 'class,desc') fail('bad error object', body);
      if (!ERROR_CLASSES.includes(e.class as string)) fail('unknown error class', body);
      if (typeof e.desc !== 'string' || e.desc === '') fail('bad error desc', body);
      if ((e.desc).startsWith('Internal error')) fail('the lab reported an internal error', body);
      return { kind: 'error', v: v as Body & { error: QmpErrorObject }, hasId: keys === 'id,error' };
    }
    case 'timestamp,event':
    case 'timestamp,event,data': {
      const ts = v.timestamp;
      if (!isPlainObject(ts) || Object.keys(ts).join(',') !== 'seconds,microseconds') fail('bad timestamp', body);
      const { seconds, microseconds } = ts as { seconds: number; microseconds: number };
      if (!Number.isInteger(seconds) || seconds < 1.5e9) fail('bad timestamp seconds', body);
      if (!Number.isInteger(microseconds) || microseconds < 0 || microseconds >= 1e6) fail('bad microseconds', body);
      if (typeof v.event !== 'string' || !SCHEMA.event(v.event)) fail('event not in the schema', body);
      if ('data' in v && !isPlainObject(v.data)) fail('event data not an object', body);
      return { kind: 'event', v };
    }
    default:
      return fail(`unexpected top-level members [${keys}]`, body);
  }
}

/** Check a monitor write: exactly one line ending in CRLF. */
function checkWrite(text: string): Line {
  if (!text.endsWith('\r\n')) fail('write not terminated by CRLF', JSON.stringify(text.slice(-200)));
  const body = text.slice(0, -2);
  if (/[\r\n]/.test(body)) fail('more than one line in a write', JSON.stringify(body.slice(0, 300)));
  return checkBody(body);
}

/** Deep equality of JSON values, member order aside (QEMU prints a QDict in hash order). */
function sameJson(a: unknown, b: unknown): boolean {
  return canon(a) === canon(b);
}

function canon(v: unknown): string {
  if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']';
  if (isPlainObject(v)) {
    return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}';
  }
  return JSON.stringify(v);
}

/** Set an own member, even one named __proto__. */
function setMember(o: { [k: string]: JV }, key: string, v: JV): void {
  Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true });
}

// ---------------------------------------------------------------------------------------
// The in-process endpoint.

const tick = () => new Promise<void>((r) => setImmediate(r));

class Conn {
  readonly writes: string[] = [];
  /** How many writes have been checked already. */
  private checked = 0;
  readonly mon: MonitorQMP<QmpContext>;
  private probes = 0;

  constructor(
    readonly vm: VirtualMachine,
    readonly label: string,
  ) {
    this.mon = new MonitorQMP(vm, { write: (t) => void this.writes.push(t), end: () => {} });
  }

  static async negotiated(vm: VirtualMachine, label: string): Promise<Conn> {
    const c = new Conn(vm, label);
    c.feed(utf8('{"execute": "qmp_capabilities"}\n'));
    await c.settle(() => c.writes.length >= 2);
    const lines = c.takeChecked();
    if (lines[0]?.kind !== 'greeting' || !sameJson(lines[1]?.v, { return: {} })) {
      throw new Error(`negotiation failed: ${c.writes.join('')}`);
    }
    return c;
  }

  feed(bytes: Uint8Array, cuts: number[] = []): void {
    for (const part of chunks(bytes, cuts)) this.mon.feed(part);
  }

  /** Has a reply carrying this (string) id been written? */
  hasReply(id: string): boolean {
    const head = `{"id": "${id}", `;
    const tail = `, "id": "${id}"}\r\n`;
    return this.writes.some((w) => w.startsWith(head) || w.endsWith(tail));
  }

  /** Let queued requests run (they complete within microtasks: idle vCPUs, no I/O). */
  async settle(done: () => boolean, maxTicks = 2000): Promise<void> {
    for (let i = 0; i < maxTicks && !done(); i++) await tick();
    if (!done()) throw new Error(`${this.label}: no reply after ${maxTicks} event-loop turns; got: ${this.writes.slice(-5).join('')}`);
  }

  /** Check and return the writes not checked yet. */
  takeChecked(): Line[] {
    const out: Line[] = [];
    for (; this.checked < this.writes.length; this.checked++) out.push(checkWrite(this.writes[this.checked]));
    return out;
  }

  /**
   * Reset the parser ("\xFF\n", see the file comment), ask query-status, and check its
   * reply. Returns the lines before the probe reply (already checked).
   */
  async probe(): Promise<{ before: Line[]; status: string }> {
    const id = `probe-${this.label}-${++this.probes}`;
    const start = this.writes.length;
    this.mon.feed(concat(latin1('\xff\n'), utf8(`{"execute": "query-status", "id": "${id}"}\n`)));
    const marker = `, "id": "${id}"}\r\n`;
    let at = -1;
    await this.settle(() => {
      for (let i = Math.max(start, this.checked); i < this.writes.length; i++) {
        if (this.writes[i].endsWith(marker)) return (at = i) >= 0;
      }
      return false;
    });
    const lines = this.takeChecked();
    const idx = lines.length - (this.writes.length - at);
    const reply = lines[idx];
    const r = reply?.v.return;
    if (reply?.kind !== 'return' || !isPlainObject(r) || Object.keys(r).join(',') !== 'status,running') {
      throw new Error(`${this.label}: bad probe reply ${this.writes[at]}`);
    }
    if (!RUN_STATES.includes(r.status as never) || r.running !== (r.status === 'running')) {
      throw new Error(`${this.label}: inconsistent status ${this.writes[at]}`);
    }
    return { before: lines.slice(0, idx), status: r.status as string };
  }

  close(): void {
    this.mon.close();
  }
}

/** Collect the lines answering one request: exactly one reply, with our id. */
function checkOneReply(lines: Line[], req: Request, label: string): Line {
  const replies = lines.filter((l) => l.kind === 'return' || l.kind === 'error');
  // At most one extra: the "stray '\xff'" of the probe's reset itself.
  const real = replies.filter((l) => !(l.kind === 'error' && !l.hasId && l.v.error.desc === STRAY_FF));
  if (real.length !== 1) {
    throw new Error(`${label}: ${real.length} replies to ${req.text.slice(0, 300)}: ${JSON.stringify(replies.map((r) => r.v)).slice(0, 600)}`);
  }
  const r = real[0];
  const hasId = req.id !== undefined;
  if ((r as { hasId: boolean }).hasId !== hasId || (hasId && !sameJson(r.v.id, req.id))) {
    throw new Error(`${label}: id not echoed for ${req.text.slice(0, 300)}: ${JSON.stringify(r.v).slice(0, 300)}`);
  }
  return r;
}

/** Guest memory for the fuzzed VMs: pmemsave writes only into the sandbox, at most 64 KiB. */
function sandboxedMemory(real: GuestMemoryAccess, sandbox: string): GuestMemoryAccess {
  return {
    pmemsave(val, size, filename) {
      // Paths that cannot be opened keep their own error; everything else lands in the sandbox.
      const target = filename === '' || filename.startsWith('/nonexistent/') ? filename : join(sandbox, 'dump.bin');
      const n = typeof size === 'bigint' ? size : BigInt(size);
      if (n > 1n << 16n) return; // QEMU would write that many bytes; spare the disk and the clock
      real.pmemsave(val, size, target);
    },
  };
}

interface Fixture {
  guest: Guest;
  vms: VirtualMachine[];
  sandbox: string;
  digest(): string;
}

let fx: Fixture;

function ramDigest(g: Guest): string {
  return createHash('sha256').update(g.ram!.host).digest('hex');
}

beforeAll(() => {
  const sandbox = mkdtempSync(join(tmpdir(), 'miglab-fuzz-'));
  const guest = Guest.create({ ram_size: 1 << 20, loaders: [], workload: { name: 'idle' }, seed: 0 });
  randomFillSync(guest.ram!.host);
  const memory = sandboxedMemory(guest.memory, sandbox);
  // A running VM, one started with -S, and an -incoming defer one, sharing the guest.
  const vms = [
    new VirtualMachine({ memory, vcpus: guest.vcpus, runtime: cooperative_runtime, name: 'fuzz' }),
    new VirtualMachine({ memory, vcpus: guest.vcpus, runtime: cooperative_runtime, startPaused: true }),
    new VirtualMachine({ memory, vcpus: guest.vcpus, runtime: cooperative_runtime, incoming: 'defer' }),
  ];
  for (const vm of vms) void vm.startMachine();
  fx = { guest, vms, sandbox, digest: () => ramDigest(guest) };
});

afterAll(async () => {
  await fx?.guest.terminate();
  if (fx) rmSync(fx.sandbox, { recursive: true, force: true });
  console.log(`qmp-fuzz: ${counts.inProcess} inputs in-process, ${counts.process} to a miglab vm process`);
});

/** After a property: every VM still answers, HMP agrees with QMP, RAM untouched. */
async function sanity(digestBefore: string): Promise<void> {
  for (const [i, vm] of fx.vms.entries()) {
    const c = await Conn.negotiated(vm, `sanity${i}`);
    const { status } = await c.probe();
    c.feed(utf8('{"execute": "human-monitor-command", "arguments": {"command-line": "info status"}, "id": "hmp"}'));
    await c.settle(() => c.hasReply('hmp'));
    const hmp = c.takeChecked().find((l) => l.kind === 'return')!.v.return;
    const want =
      status === 'running' ? 'VM status: running\r\n' : status === 'paused' ? 'VM status: paused\r\n' : `VM status: paused (${status})\r\n`;
    expect(hmp).toBe(want);
    c.close();
  }
  expect(fx.digest()).toBe(digestBefore);
}

/** FUZZ_SCALE=0.1 for a quick local run, 10 for a long one. */
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const runs = (n: number) => ({ numRuns: Math.max(1, Math.round(n * SCALE)), seed: SEED, endOnFailure: true });

// ---------------------------------------------------------------------------------------

describe('QMP fuzzing, in-process', () => {
  it('query-commands lists schema commands only', async () => {
    const c = await Conn.negotiated(fx.vms[0], 'qc');
    c.feed(utf8('{"execute": "query-commands", "id": 1}'));
    await c.settle(() => c.writes.length > 2);
    const names = (c.takeChecked()[0].v.return as { name: string }[]).map((x) => x.name);
    expect(names.sort()).toEqual([...COMMANDS].sort());
    for (const n of names) expect(SCHEMA.command(n), n).toBeDefined();
    c.close();
  });

  it('schema commands with corrupted arguments: one reply each, id echoed, QEMU shapes', async () => {
    const digest = fx.digest();
    const conns = fx.vms.map((vm, i) => Conn.negotiated(vm, `p1-${i}`));
    const live = await Promise.all(conns);
    await fc.assert(
      fc.asyncProperty(requestArb(3), fc.nat(2), cutsArb, fc.boolean(), async (req, v, cuts, nl) => {
        const c = live[v];
        counts.inProcess++;
        c.feed(utf8(req.text + (nl ? '\n' : '')), cuts);
        const { before } = await c.probe();
        const r = checkOneReply(before, req, c.label);
        if (req.shapeBroken && r.kind !== 'error') throw new Error(`shape-broken request succeeded: ${req.text}`);
      }),
      runs(40_000),
    );
    for (const c of live) c.close();
    await sanity(digest);
  });

  it("a single corrupted argument gets QEMU's visitor message", async () => {
    const c = await Conn.negotiated(fx.vms[0], 'p1b');
    const withArgs = requestArb(1).filter((r) => r.expectDesc !== undefined);
    await fc.assert(
      fc.asyncProperty(withArgs, async (req) => {
        counts.inProcess++;
        c.feed(utf8(req.text + '\n'));
        const { before } = await c.probe();
        const r = checkOneReply(before, req, c.label);
        if (r.kind !== 'error' || r.v.error.class !== 'GenericError' || r.v.error.desc !== req.expectDesc) {
          throw new Error(`for ${req.text.slice(0, 400)}\nexpected ${req.expectDesc}\n     got ${JSON.stringify(r.v).slice(0, 400)}`);
        }
      }),
      runs(10_000),
    );
    c.close();
  });

  it('mutated, truncated requests and garbage: QEMU shapes, and the probe after it answers', async () => {
    const digest = fx.digest();
    const persistent = await Promise.all(fx.vms.map((vm, i) => Conn.negotiated(vm, `p2-${i}`)));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof({ weight: 3, arbitrary: mutatedArb }, { weight: 2, arbitrary: garbageArb }),
        fc.nat(2),
        cutsArb,
        fc.boolean(),
        async (bytes, v, cuts, fresh) => {
          // Half the inputs on a long-lived connection (recovery by 0xFF), half on a new one.
          const c = fresh ? await Conn.negotiated(fx.vms[v], `p2-fresh-${v}`) : persistent[v];
          counts.inProcess++;
          c.feed(bytes, cuts);
          await c.probe();
          if (fresh) c.close();
        },
      ),
      runs(45_000),
    );
    for (const c of persistent) c.close();
    await sanity(digest);
  });

  it('splitting the byte stream anywhere changes no reply', async () => {
    const norm = (w: string) => w.replace(/"timestamp": \{"seconds": \d+, "microseconds": \d+\}/, '"timestamp": T');
    const stream = fc
      .array(fc.oneof(requestArb(2).map((r) => utf8(r.text)), mutatedArb, garbageArb), { minLength: 1, maxLength: 4 })
      .map((parts) => concat(...parts, latin1('\xff\n')));
    await fc.assert(
      fc.asyncProperty(stream, fc.array(fc.nat(), { minLength: 1, maxLength: 12 }), async (bytes, cuts) => {
        counts.inProcess++;
        const outs: string[][] = [];
        for (const split of [[], cuts]) {
          const vm = new VirtualMachine({ memory: STUB_MEMORY, vcpus: STUB_VCPUS, runtime: cooperative_runtime });
          void vm.startMachine();
          const c = await Conn.negotiated(vm, 'p4');
          c.feed(bytes, split);
          c.feed(utf8('{"execute": "query-status", "id": "end"}\n'));
          await c.settle(() => c.hasReply('end'));
          c.takeChecked();
          outs.push(c.writes.map(norm));
          c.close();
        }
        if (outs[0].join('') !== outs[1].join('')) {
          throw new Error(`chunking changed the replies:\n${outs[0].join('').slice(0, 800)}\n---\n${outs[1].join('').slice(0, 800)}`);
        }
      }),
      runs(5_000),
    );
  });

  it('before negotiation only qmp_capabilities runs, and no event is delivered', async () => {
    const vm = fx.vms[0];
    const driver = await Conn.negotiated(vm, 'driver');
    await fc.assert(
      fc.asyncProperty(requestArb(1, ['qmp_capabilities']), fc.boolean(), async (req, toggle) => {
        const c = new Conn(vm, 'unnegotiated');
        counts.inProcess++;
        // Events happen meanwhile: another client stops or resumes the VM.
        driver.feed(utf8(toggle ? '{"execute": "stop"}' : '{"execute": "cont"}'));
        c.feed(utf8(req.text));
        c.feed(utf8('{"execute": "query-status", "id": "end"}'));
        await c.settle(() => c.hasReply('end'));
        await tick();
        driver.takeChecked();
        const lines = c.takeChecked();
        if (lines[0]?.kind !== 'greeting') throw new Error('no greeting');
        if (lines.some((l) => l.kind === 'event')) throw new Error(`event before negotiation: ${c.writes.join('')}`);
        const last = lines.at(-1)!;
        if (last.kind !== 'error' || last.v.error.class !== 'CommandNotFound' || last.v.error.desc !== NEGOTIATE_FIRST) {
          throw new Error(`query-status before negotiation: ${c.writes.at(-1)}`);
        }
        const r = checkOneReply(lines.slice(1, -1), req, 'unnegotiated');
        if (!req.shapeBroken && (r.kind !== 'error' || r.v.error.desc !== NEGOTIATE_FIRST)) {
          throw new Error(`${req.text} before negotiation: ${JSON.stringify(r.v)}`);
        }
        c.close();
      }),
      runs(8_000),
    );
    driver.close();
  });

  it('huge inputs (several MB) in 64 KiB chunks', async () => {
    const digest = fx.digest();
    const big = 3 << 20;
    const rnd = new Uint8Array(5 << 20);
    randomFillSync(rnd);
    // Bytes a string may hold (0x20..0xFD without quote and backslash): one 5 MiB token.
    const inString = rnd.map((b) => 0x20 + (b % 0xde)).map((b) => (b === 0x22 || b === 0x5c ? 0x41 : b));
    const inputs: [string, Uint8Array][] = [
      ['4 MiB id', utf8(`{"execute": "query-name", "id": "${'i'.repeat(4 << 20)}"}`)],
      ['4 MiB HMP line', utf8(`{"execute": "human-monitor-command", "arguments": {"command-line": "${'x'.repeat(4 << 20)}"}}`)],
      ['3 MiB string argument', utf8(`{"execute": "migrate-set-parameters", "arguments": {"tls-creds": "${'é'.repeat(big / 2)}"}}`)],
      ['3 MiB of whitespace', latin1(' \t\r\n'.repeat(big / 4))],
      ['3 MiB keyword', latin1('a'.repeat(big))],
      ['3 MiB number', latin1(`{"execute": "query-name", "id": ${'9'.repeat(big)}}`)],
      ['3 MiB unterminated string', latin1('{"execute": "' + 'q'.repeat(big))],
      // 2 * 1_048_600 + 1 tokens: just over MAX_TOKEN_COUNT (2 Mi), so few tokens are left over.
      ['2 Mi tokens (token count limit)', latin1('[' + '1,'.repeat(1_048_600) + '1]')],
      ['1 M nested brackets (nesting limit)', latin1('['.repeat(1 << 20))],
      ['5 MiB of binary bytes in a string', concat(latin1('{"execute": "query-name", "id": "'), inString, latin1('"}'))],
      // Raw random bytes answer about one error per 6 bytes, each its own reply, as in QEMU. Kept
      // at 256 KiB: the lab's reply queue is quadratic in its length (see the report).
      ['256 KiB of random bytes', rnd.subarray(0, 256 << 10)],
    ];
    for (const [label, bytes] of inputs) {
      const c = await Conn.negotiated(fx.vms[0], label);
      counts.inProcess++;
      const cuts: number[] = [];
      for (let p = 65536; p < bytes.length; p += 65536) cuts.push(p);
      c.feed(bytes, cuts);
      await c.probe();
      c.close();
    }
    await sanity(digest);
  });
});

// ---------------------------------------------------------------------------------------

/** Nothing a fuzzed process receives may end it or touch files (now or with a migration engine). */
function safeForProcess(b: Uint8Array): boolean {
  const s = Buffer.from(b).toString('latin1').toLowerCase();
  return ![
    'quit', 'pmemsave', 'exec:', '"exec"', "'exec'", 'file:', '"file"', "'file'", 'migrate-incoming', '"migrate"', "'migrate'",
  ].some((w) => s.includes(w));
}

describe('QMP fuzzing, a miglab vm process', () => {
  let ep: Endpoint | undefined;
  afterAll(async () => {
    await ep?.kill();
  });

  it('2,000 inputs over the unix socket: it stays up, answers in QEMU shapes, RAM intact', async () => {
    ep = await spawnEndpoint([
      '-m', '4M',
      '-device', `loader,file=${BLOB_BIN},addr=0x200000`,
    ]);
    const gen = fc.oneof(
      { weight: 2, arbitrary: requestArb(3).map((r) => utf8(r.text + '\n')) },
      { weight: 2, arbitrary: mutatedArb },
      { weight: 1, arbitrary: garbageArb },
    );
    const inputs = fc.sample(gen, { numRuns: 4000, seed: SEED }).filter(safeForProcess).slice(0, 1994);
    expect(inputs.length).toBe(1994);
    inputs.push(
      utf8(`{"execute": "query-name", "id": "${'i'.repeat(4 << 20)}"}`),
      latin1('{"execute": "' + 'q'.repeat(3 << 20)),
      latin1('['.repeat(200_000)),
    );
    const cutsOf = fc.sample(cutsArb, { numRuns: inputs.length, seed: SEED + 1 });
    let conn = await ep.negotiated();
    let n = 0;
    for (const [i, bytes] of inputs.entries()) {
      if (i % 150 === 149) {
        // A client that gives up mid-request, then a new one.
        conn.send(bytes.subarray(0, bytes.length >> 1));
        conn.close();
        conn = await ep.negotiated();
        counts.process++;
        continue;
      }
      for (const part of chunks(bytes, cutsOf[i])) {
        conn.send(part);
        if (part.length && i % 3 === 0) await tick();
      }
      counts.process++;
      const id = `probe-${++n}`;
      conn.send(concat(latin1('\xff\n'), utf8(`{"execute": "query-status", "id": "${id}"}\n`)));
      for (;;) {
        const body = await conn.line();
        const l = checkBody(body);
        if (l.kind === 'return' && l.v.id === id) {
          expect(Object.keys(l.v.return as object)).toEqual(['status', 'running']);
          break;
        }
      }
      expect(ep.alive()).toBe(true);
    }
    // Nothing was left unterminated by CRLF.
    expect(conn.partial()).toBe('');
    // A brand-new client still gets a greeting and service, memory is intact.
    conn.close();
    const c2 = await ep.negotiated();
    const { reply } = await c2.execute('pmemsave', { val: 0x200000, size: 1 << 20, filename: 'after-fuzz.bin' });
    expect(reply).toEqual({ return: {} });
    const blob = readFileSync(BLOB_BIN);
    expect(readFileSync(join(ep.dir, 'after-fuzz.bin')).equals(blob)).toBe(true);
    c2.close();
    expect(ep.alive()).toBe(true);
    expect(ep.stderr()).not.toMatch(/internal error/i);
  });
});
