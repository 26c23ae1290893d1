/**
 * migration/options.ts against QEMU: defaults and error texts from the 7.2 and 10.0
 * recordings (../shared/fixtures), the conflict rules of 9.0's migrate_caps_check(), and
 * migrate-set-parameters' all-or-nothing behaviour.
 *
 * 7.2 / 10.0 → 9.0 differences, each checked below:
 * - capabilities: 9.0 = 7.2's 21 + switchover-ack, dirty-limit (8.1), mapped-ram (9.0);
 *   10.0 lacks compress and block (removed 9.1). 9.0 qapi/migration.json and options.c.
 * - parameters: 9.0 = 7.2's + avail-switchover-bandwidth, mode (8.2), x-vcpu-dirty-limit-
 *   period, vcpu-dirty-limit (8.1), zero-page-detection (9.0); 10.0 lacks the compress-*,
 *   decompress-threads, block-incremental ones (9.1) and adds direct-io (9.1),
 *   multifd-qatzip-level (9.2).
 * - compress-level 10 etc.: 9.0 still range-checks them (7.2's texts); 10.0 says
 *   "is unexpected" because the members are gone.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  LAB_CAPABILITIES,
  MigrationOptions,
  to_uint64,
  type MigrateSetParameters,
  type MigrationRunState,
} from '../../../core/migration/options.js';
import { QmpError } from '../../../core/qmp/error.js';
import { qobject_to_json } from '../../../core/qmp/json-writer.js';
import { toQObject } from '../../../core/qmp/qobject.js';
import { QObjectInputVisitor } from '../../../core/qmp/qobject-input-visitor.js';
import { migrationSchema, MigrationCapability_lookup, type MigrationCapability } from '../../../core/qmp/schema/migration.js';
import { SchemaRegistry } from '../../../core/qmp/schema/registry.js';
import { loadTranscript, type FixtureRecord } from '../../helpers/fixtures.js';
import { parseJson, type MigrationCapabilityStatus, type MigrationParameters, type QmpReply } from '../../helpers/json.js';




/** The first reply to `execute` on the source in a transcript. */
function replyTo(recs: FixtureRecord[], execute: string): string {
  for (let i = 0; i < recs.length; i++) {
    const r = recs[i];
    if (r.dir === 'send' && r.vm === 'src' && r.raw?.includes(`"execute": "${execute}"`)) {
      const reply = recs.slice(i + 1).find((x) => x.dir === 'recv' && x.vm === 'src' && x.kind !== 'event');
      return reply!.raw!;
    }
  }
  throw new Error(`no ${execute} in transcript`);
}

/** Every migrate-set-parameters request with its reply (error desc or null). */
function setParameterCases(version: string): { args: string; error: string | null }[] {
  const recs = loadTranscript(version, 'e2_bad_params');
  const out: { args: string; error: string | null }[] = [];
  for (let i = 0; i < recs.length; i++) {
    const r = recs[i];
    if (r.dir !== 'send' || !r.raw?.includes('"migrate-set-parameters"')) continue;
    const reply = parseJson<QmpReply>(recs.slice(i + 1).find((x) => x.dir === 'recv' && x.kind !== 'event')!.raw!);
    const args = /"arguments": (\{.*\})\}$/.exec(r.raw)![1];
    out.push({ args, error: reply.error ? reply.error.desc : null });
  }
  return out;
}

const registry = new SchemaRegistry([migrationSchema]);

/** A QMP argument text through the lab's input visitor, as migrate-set-parameters gets it. */
function visit(argsJson: string): MigrateSetParameters {
  // Integer literals become bigint, as the lab's JSON parser makes them (QNum).
  const withBig = JSON.parse(argsJson.replace(/(:\s*)(-?\d+)(?=[,}\s])/g, '$1"__big$2"'), (_k, v: unknown) =>
    typeof v === 'string' && v.startsWith('__big') ? BigInt(v.slice(5)) : v,
  ) as unknown;
  const v = new QObjectInputVisitor(toQObject(withBig), (n) => registry.type(n));
  return v.visitRootMembers(registry.commandMembers(registry.command('migrate-set-parameters')!));
}

const idle: MigrationRunState = { migration_is_running: () => false };
const running: MigrationRunState = { migration_is_running: () => true };

function errorOf(f: () => void): string | null {
  try {
    f();
    return null;
  } catch (e) {
    if (e instanceof QmpError) return e.desc;
    throw e;
  }
}

function setCaps(o: MigrationOptions, caps: Partial<Record<MigrationCapability, boolean>>, rs = idle): string | null {
  return errorOf(() =>
    o.qmp_migrate_set_capabilities(
      Object.entries(caps).map(([capability, state]) => ({ capability: capability as MigrationCapability, state: state })),
      rs,
    ),
  );
}

describe('defaults', () => {
  it('query-migrate-capabilities: 7.2 list + 8.1/9.0 additions; 10.0 list + compress, block', () => {
    const caps = new MigrationOptions().qmp_query_migrate_capabilities();
    expect(caps.every((c) => c.state === false)).toBe(true);
    const names = caps.map((c) => c.capability);
    const v72 = parseJson<QmpReply<MigrationCapabilityStatus[]>>(replyTo(loadTranscript('7.2', 'b_queries_defaults'), 'query-migrate-capabilities')).return.map(
      (c) => c.capability,
    );
    const v100 = parseJson<QmpReply<MigrationCapabilityStatus[]>>(replyTo(loadTranscript('10.0', 'b_queries_defaults'), 'query-migrate-capabilities')).return.map(
      (c) => c.capability,
    );
    expect(names).toEqual([...v72, 'switchover-ack', 'dirty-limit', 'mapped-ram']);
    expect(names.filter((n) => n !== 'compress' && n !== 'block')).toEqual(v100);
    expect(names).toHaveLength(24);
  });

  it('query-migrate-capabilities prints like QEMU ({"state": ..., "capability": ...})', () => {
    const raw = replyTo(loadTranscript('7.2', 'b_queries_defaults'), 'query-migrate-capabilities');
    const mine = new MigrationOptions()
      .qmp_query_migrate_capabilities()
      .filter((c) => !['switchover-ack', 'dirty-limit', 'mapped-ram'].includes(c.capability));
    expect(qobject_to_json({ return: mine })).toBe(raw);
  });

  it('query-migrate-parameters: every shared default equal to both recordings', () => {
    const q = new MigrationOptions().qmp_query_migrate_parameters();
    const v72 = parseJson<QmpReply<MigrationParameters>>(replyTo(loadTranscript('7.2', 'b_queries_defaults'), 'query-migrate-parameters')).return;
    const v100 = parseJson<QmpReply<MigrationParameters>>(replyTo(loadTranscript('10.0', 'b_queries_defaults'), 'query-migrate-parameters')).return;
    for (const [k, v] of Object.entries(v72)) expect(q[k], k).toEqual(v);
    const newIn91 = ['direct-io', 'multifd-qatzip-level'];
    for (const [k, v] of Object.entries(v100)) {
      if (newIn91.includes(k)) expect(q[k], k).toBeUndefined();
      else expect(q[k], k).toEqual(v);
    }
    const expectedKeys = new Set([...Object.keys(v72), ...Object.keys(v100)].filter((k) => !newIn91.includes(k)));
    expect(new Set(Object.keys(q))).toEqual(expectedKeys);
    expect(Object.keys(q)).toHaveLength(31); // block-bitmap-mapping only once set
  });

  it('query-migrate-parameters, restricted to 7.2 members, prints byte for byte as 7.2', () => {
    const raw = replyTo(loadTranscript('7.2', 'b_queries_defaults'), 'query-migrate-parameters');
    const keys = Object.keys(parseJson<QmpReply<MigrationParameters>>(raw).return);
    const q = new MigrationOptions().qmp_query_migrate_parameters();
    const only = Object.fromEntries(Object.entries(q).filter(([k]) => keys.includes(k)));
    expect(qobject_to_json({ return: only })).toBe(raw);
  });

  it('members come in QAPI schema order', () => {
    const q = new MigrationOptions().qmp_query_migrate_parameters();
    const def = registry.type('MigrationParameters');
    if (def?.kind !== 'struct') throw new Error('MigrationParameters is not a struct');
    const schema = def.members.map((m) => m.name);
    expect(Object.keys(q)).toEqual(schema.filter((n) => n !== 'block-bitmap-mapping'));
  });

  it('accessors', () => {
    const o = new MigrationOptions();
    expect(o.migrate_max_bandwidth()).toBe(134217728);
    expect(o.migrate_downtime_limit()).toBe(300);
    expect(o.migrate_events()).toBe(false);
    expect(o.migrate_multifd_channels()).toBe(2);
    expect(o.migrate_xbzrle_cache_size()).toBe(64 << 20);
    expect(o.migrate_tls()).toBe(false);
    expect(o.migrate_tls_authz()).toBeNull();
    expect(o.migrate_zero_page_detection()).toBe('multifd');
    expect(o.migrate_announce_params()).toEqual({ initial: 50, max: 550, rounds: 5, step: 100 });
  });
});

describe('migrate-set-parameters range checks (e2_bad_params)', () => {
  // Replayed in order on one endpoint, as recorded; 7.2's texts are 9.0's.
  it('every 7.2 request gives 7.2\'s reply, and the final state matches', () => {
    const o = new MigrationOptions();
    for (const c of setParameterCases('7.2')) {
      let err: string | null;
      try {
        const p = visit(c.args);
        err = errorOf(() => o.qmp_migrate_set_parameters(p));
      } catch (e) {
        err = (e as QmpError).desc; // visitor errors ("expects uint8_t")
      }
      expect(err, c.args).toBe(c.error);
    }
    const recs = loadTranscript('7.2', 'e2_bad_params');
    const finals = recs.filter((r) => r.dir === 'recv' && r.raw?.startsWith('{"return": {"cpu-throttle-tailslow"'));
    // Compared as text: 18446744073709551611 does not survive JSON.parse.
    const raw = finals[finals.length - 1].raw!;
    const keys = Object.keys(parseJson<QmpReply<MigrationParameters>>(raw).return);
    const q = o.qmp_query_migrate_parameters();
    expect(qobject_to_json({ return: Object.fromEntries(Object.entries(q).filter(([k]) => keys.includes(k))) })).toBe(raw);
  });

  it('10.0 agrees except for the members 9.1 removed', () => {
    const v72 = setParameterCases('7.2');
    const v100 = setParameterCases('10.0');
    expect(v100.map((c) => c.args)).toEqual(v72.map((c) => c.args));
    v100.forEach((c, i) => {
      if (/compress|decompress/.test(c.args)) {
        expect(c.error).toMatch(/is unexpected$/);
        expect(v72[i].error).toMatch(/expects a value between/);
      } else {
        expect(c.error).toBe(v72[i].error);
      }
    });
  });

  it('max-bandwidth wraps like uint64 and has no upper limit', () => {
    const o = new MigrationOptions();
    o.qmp_migrate_set_parameters(visit('{"max-bandwidth": -1}'));
    expect(o.qmp_query_migrate_parameters()['max-bandwidth']).toBe(18446744073709551615n);
    expect(qobject_to_json(o.qmp_query_migrate_parameters()['max-bandwidth'])).toBe('18446744073709551615');
    o.qmp_migrate_set_parameters({ 'max-bandwidth': -5 }); // a plain number works too
    expect(o.qmp_query_migrate_parameters()['max-bandwidth']).toBe(18446744073709551611n);
    o.qmp_migrate_set_parameters(visit('{"max-bandwidth": 0}'));
    expect(o.migrate_max_bandwidth()).toBe(0);
  });

  it('tls-* null means ""', () => {
    const o = new MigrationOptions();
    o.qmp_migrate_set_parameters(visit('{"tls-creds": "nosuch"}'));
    expect(o.migrate_tls()).toBe(true);
    o.qmp_migrate_set_parameters(visit('{"tls-creds": null, "tls-authz": null}'));
    expect(o.migrate_tls_creds()).toBe('');
    expect(o.migrate_tls_authz()).toBe('');
    expect(o.migrate_tls()).toBe(false);
  });

  it.each([
    [{ 'compress-level': 10 }, "Parameter 'compress_level' expects a value between 0 and 9"],
    [{ 'multifd-zlib-level': 10 }, "Parameter 'multifd_zlib_level' expects a value between 0 and 9"],
    [{ 'multifd-zstd-level': 21 }, "Parameter 'multifd_zstd_level' expects a value between 0 and 20"],
    [{ 'announce-initial': 100001 }, "Parameter 'announce_initial' expects a value between 0 and 100000"],
    [{ 'announce-rounds': 1001 }, "Parameter 'announce_rounds' expects a value between 0 and 1000"],
    [{ 'announce-step': 0 }, "Parameter 'announce_step' expects a value between 0 and 10000"],
    [{ 'announce-step': 10001 }, "Parameter 'announce_step' expects a value between 0 and 10000"],
    [{ 'x-vcpu-dirty-limit-period': 0 }, "Parameter 'x-vcpu-dirty-limit-period' expects a value between 1 and 1000"],
    [{ 'x-vcpu-dirty-limit-period': 1001 }, "Parameter 'x-vcpu-dirty-limit-period' expects a value between 1 and 1000"],
    [{ 'vcpu-dirty-limit': 0 }, "Parameter 'vcpu_dirty_limit' must be greater than 1 MB/s"],
    [{ 'xbzrle-cache-size': 6144 }, "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size"],
    [{ 'xbzrle-cache-size': 2048 }, "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size"],
    [{ 'downtime-limit': 2000001 }, "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms"],
    [{ 'multifd-channels': 300 }, "Parameter 'multifd-channels' expects uint8_t"],
  ] as [MigrateSetParameters, string][])('%o → %s', (p, msg) => {
    expect(errorOf(() => new MigrationOptions().qmp_migrate_set_parameters(p))).toBe(msg);
  });

  it('accepts the edges', () => {
    const o = new MigrationOptions();
    for (const p of [
      { 'xbzrle-cache-size': 4096 },
      { 'announce-step': 1 },
      { 'announce-rounds': 1000 },
      { 'x-vcpu-dirty-limit-period': 1 },
      { 'multifd-zstd-level': 20 },
      { 'cpu-throttle-initial': 99, 'max-cpu-throttle': 99 },
      { 'block-incremental': true, 'compress-wait-thread': false },
      { mode: 'normal', 'zero-page-detection': 'legacy', 'multifd-compression': 'zlib' },
    ] as MigrateSetParameters[]) {
      expect(errorOf(() => o.qmp_migrate_set_parameters(p)), JSON.stringify(p)).toBeNull();
    }
  });

  it('refuses mode cpr-reboot after QEMU\'s checks (CPR is not modelled), leaving every member unchanged', () => {
    const o = new MigrationOptions();
    expect(errorOf(() => o.qmp_migrate_set_parameters({ mode: 'cpr-reboot', 'downtime-limit': 5 }))).toBe(
      "Parameter 'mode' value 'cpr-reboot' is not modelled by Migration Lab yet",
    );
    expect(errorOf(() => o.qmp_migrate_set_parameters({ mode: 'cpr-reboot', 'downtime-limit': 2000001 }))).toBe(
      "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms",
    );
    expect(o.qmp_query_migrate_parameters()).toMatchObject({ mode: 'normal', 'downtime-limit': 300 });
  });

  it('max-cpu-throttle is checked against the merged cpu-throttle-initial', () => {
    const o = new MigrationOptions();
    o.qmp_migrate_set_parameters({ 'max-cpu-throttle': 30 });
    expect(errorOf(() => o.qmp_migrate_set_parameters({ 'cpu-throttle-initial': 40 }))).toBe(
      "Parameter 'max_cpu_throttle' expects an integer in the range of cpu_throttle_initial to 99",
    );
    expect(errorOf(() => o.qmp_migrate_set_parameters({ 'cpu-throttle-initial': 40, 'max-cpu-throttle': 40 }))).toBeNull();
  });

  it('all or nothing: a bad member leaves every member unchanged', () => {
    fc.assert(
      fc.property(
        fc.record({
          'downtime-limit': fc.integer({ min: 0, max: 3_000_000 }),
          'max-bandwidth': fc.integer({ min: 0, max: 2 ** 40 }),
          'multifd-channels': fc.integer({ min: 0, max: 255 }),
          'cpu-throttle-initial': fc.integer({ min: 0, max: 120 }),
          'announce-max': fc.integer({ min: 0, max: 200_000 }),
        }),
        (p) => {
          const o = new MigrationOptions();
          const before = o.qmp_query_migrate_parameters();
          const err = errorOf(() => o.qmp_migrate_set_parameters(p));
          const after = o.qmp_query_migrate_parameters();
          const bad =
            p['downtime-limit'] > 2_000_000 ||
            p['multifd-channels'] < 1 ||
            p['cpu-throttle-initial'] < 1 ||
            p['cpu-throttle-initial'] > 99 ||
            p['announce-max'] > 100_000;
          expect(err !== null).toBe(bad);
          if (bad) expect(after).toEqual(before);
          else for (const [k, v] of Object.entries(p)) expect(after[k]).toBe(v);
        },
      ),
    );
  });

  it('first failing check wins, in options.c order', () => {
    // cpu_throttle_initial is checked before downtime_limit and multifd_channels.
    expect(
      errorOf(() =>
        new MigrationOptions().qmp_migrate_set_parameters({
          'multifd-channels': 0,
          'downtime-limit': 2000001,
          'cpu-throttle-initial': 0,
        }),
      ),
    ).toBe("Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99");
  });

  it('accepted while a migration runs, with QEMU\'s live side effects', () => {
    const rates: number[] = [];
    const rs: MigrationRunState = {
      migration_is_running: () => true,
      has_to_dst_file: () => true,
      migration_in_postcopy: () => false,
      migration_rate_set: (l) => rates.push(l),
    };
    const o = new MigrationOptions();
    o.qmp_migrate_set_parameters({ 'max-bandwidth': 2097152, 'max-postcopy-bandwidth': 5 }, rs);
    expect(rates).toEqual([2097152]); // postcopy bandwidth only applies in postcopy
    expect(errorOf(() => o.qmp_migrate_set_parameters({ 'downtime-limit': 2000001, 'max-bandwidth': 1 }, rs))).not.toBeNull();
    expect(rates).toEqual([2097152]);
  });

  it('deprecated members warn when applied', () => {
    const warnings: string[] = [];
    const o = new MigrationOptions({ warn_report: (m) => warnings.push(m) });
    o.qmp_migrate_set_parameters({ 'compress-level': 2, 'block-incremental': true });
    expect(warnings).toEqual([
      'old compression is deprecated; use multifd compression methods instead',
      'block migration is deprecated; use blockdev-mirror with NBD instead',
    ]);
  });

  it('block-bitmap-mapping: checked both ways, stored, reported once set', () => {
    const o = new MigrationOptions();
    const good = [{ 'node-name': 'drive0', alias: 'node0', bitmaps: [{ name: 'bmap0', alias: 'b0' }] }];
    o.qmp_migrate_set_parameters({ 'block-bitmap-mapping': good });
    expect(o.qmp_query_migrate_parameters()['block-bitmap-mapping']).toEqual(good);
    expect(o.migrate_has_block_bitmap_mapping()).toBe(true);
    const cases: [unknown, string][] = [
      [[{ 'node-name': 'a', alias: '0bad', bitmaps: [] }], "The node alias '0bad' is not well-formed"],
      [
        [
          { 'node-name': 'a', alias: 'x', bitmaps: [] },
          { 'node-name': 'a', alias: 'y', bitmaps: [] },
        ],
        "The node name 'a' is mapped twice",
      ],
      [
        [
          { 'node-name': 'a', alias: 'x', bitmaps: [] },
          { 'node-name': 'b', alias: 'x', bitmaps: [] },
        ],
        "The node alias 'x' is used twice",
      ],
      [
        [
          {
            'node-name': 'a',
            alias: 'x',
            bitmaps: [
              { name: 'm', alias: 'p' },
              { name: 'n', alias: 'p' },
            ],
          },
        ],
        "The bitmap alias 'x'/'p' is used twice",
      ],
    ];
    for (const [m, msg] of cases) {
      expect(errorOf(() => o.qmp_migrate_set_parameters({ 'block-bitmap-mapping': m }))).toBe(
        `Invalid mapping given for block-bitmap-mapping: ${msg}`,
      );
    }
    expect(o.qmp_query_migrate_parameters()['block-bitmap-mapping']).toEqual(good);
  });

  it('to_uint64 wraps and keeps safe integers as numbers', () => {
    expect(to_uint64(-1)).toBe(18446744073709551615n);
    expect(to_uint64(2n ** 53n - 1n)).toBe(2 ** 53 - 1);
    expect(to_uint64(2n ** 53n)).toBe(2n ** 53n);
  });
});

describe('migrate-set-capabilities', () => {
  it('refused while a migration runs, even for events (e3)', () => {
    const o = new MigrationOptions();
    expect(setCaps(o, { xbzrle: true }, running)).toBe("There's a migration process in progress");
    expect(setCaps(o, { events: true }, running)).toBe("There's a migration process in progress");
    expect(
      setCaps(o, { events: true }, { migration_is_running: () => false, migration_in_colo_state: () => true }),
    ).toBe("There's a migration process in progress");
  });

  it('e5_postcopy (7.2/10.0 agree on these)', () => {
    const o = new MigrationOptions();
    expect(setCaps(o, { 'postcopy-preempt': true })).toBe('Postcopy preempt requires postcopy-ram');
    expect(setCaps(o, { 'postcopy-ram': true, xbzrle: false, 'x-ignore-shared': true })).toBe(
      'Postcopy is not compatible with ignore-shared',
    );
    // 7.2 accepted postcopy-ram + compress; 9.0 does too (10.0 no longer knows `compress`), so
    // the lab's own refusal comes next, naming the first refused capability in enum order.
    expect(setCaps(o, { 'postcopy-ram': true, compress: true })).toBe("Capability 'compress' is not modelled by Migration Lab yet");
  });

  it('all or nothing', () => {
    const o = new MigrationOptions();
    expect(setCaps(o, { events: true, 'switchover-ack': true })).toBe(
      "Capability 'switchover-ack' requires capability 'return-path'",
    );
    expect(o.migrate_events()).toBe(false);
    expect(setCaps(o, { events: true, 'switchover-ack': true, 'return-path': true })).toBeNull();
    expect(o.migrate_events()).toBe(true);
    expect(o.migrate_switchover_ack()).toBe(true);
  });

  const rules: [Partial<Record<MigrationCapability, boolean>>, string][] = [
    [{ 'x-colo': true }, "QEMU compiled without replication module can't enable COLO"],
    [{ 'postcopy-ram': true, multifd: true }, 'Postcopy is not yet compatible with multifd'],
    [{ 'zero-copy-send': true }, 'Zero copy only available for non-compressed non-TLS multifd migration'],
    [{ 'zero-copy-send': true, multifd: true, xbzrle: true }, 'Zero copy only available for non-compressed non-TLS multifd migration'],
    [{ 'postcopy-preempt': true, 'postcopy-ram': true, compress: true }, 'Postcopy preempt not compatible with compress'],
    [{ multifd: true, compress: true }, 'Multifd is not compatible with compress'],
    [{ 'dirty-limit': true, 'auto-converge': true }, 'dirty-limit conflicts with auto-converge either of then available currently'],
    [{ 'dirty-limit': true }, "dirty-limit requires KVM with accelerator property 'dirty-ring-size' set"],
    [{ multifd: true, xbzrle: true }, 'Multifd is not compatible with xbzrle'],
    [{ compress: true, xbzrle: true }, 'Compression is not compatible with xbzrle'],
    [{ 'mapped-ram': true, xbzrle: true }, 'Mapped-ram migration is incompatible with xbzrle'],
    [{ 'mapped-ram': true, compress: true }, 'Mapped-ram migration is incompatible with compression'],
    [{ 'mapped-ram': true, 'postcopy-ram': true }, 'Mapped-ram migration is incompatible with postcopy'],
  ];
  it.each(rules)('%o → %s', (caps, msg) => {
    const o = new MigrationOptions();
    expect(setCaps(o, caps)).toBe(msg);
    expect(o.qmp_query_migrate_capabilities().every((c) => !c.state)).toBe(true);
  });

  it('zero-copy-send passes QEMU\'s checks with multifd alone; refused once TLS or compression is on', () => {
    // QEMU 9.0 accepts it; the lab then refuses zero-copy-send as not modelled.
    expect(setCaps(new MigrationOptions(), { 'zero-copy-send': true, multifd: true })).toBe(
      "Capability 'zero-copy-send' is not modelled by Migration Lab yet",
    );
    const o = new MigrationOptions();
    o.qmp_migrate_set_parameters({ 'tls-creds': 'tls0' });
    expect(setCaps(o, { 'zero-copy-send': true, multifd: true })).toBe(
      'Zero copy only available for non-compressed non-TLS multifd migration',
    );
    // migrate_params_check() reads the current capabilities: set them as QEMU would have them.
    const z = new MigrationOptions();
    z.capabilities['zero-copy-send'] = true;
    z.capabilities.multifd = true;
    expect(errorOf(() => z.qmp_migrate_set_parameters({ 'multifd-compression': 'zlib' }))).toBe(
      'Zero copy only available for non-compressed non-TLS multifd migration',
    );
    expect(setCaps(new MigrationOptions({ host: { linux: false } }), { 'zero-copy-send': true, multifd: true })).toBe(
      'Zero copy currently only available on Linux',
    );
  });

  it('mapped-ram vs compression/TLS is judged on the parameters before the change (as 9.0)', () => {
    const o = new MigrationOptions();
    expect(setCaps(o, { 'mapped-ram': true })).toBe("Capability 'mapped-ram' is not modelled by Migration Lab yet");
    o.capabilities['mapped-ram'] = true; // as 9.0 would have it after accepting
    expect(errorOf(() => o.qmp_migrate_set_parameters({ 'tls-creds': 't' }))).toBeNull();
    expect(errorOf(() => o.qmp_migrate_set_parameters({ 'downtime-limit': 100 }))).toBe(
      'Mapped-ram only available for non-compressed non-TLS multifd migration',
    );
  });

  it('background-snapshot: host support, then every incompatible capability by name', () => {
    expect(setCaps(new MigrationOptions(), { 'background-snapshot': true })).toBeNull();
    expect(setCaps(new MigrationOptions({ host: { write_tracking: 'absent' } }), { 'background-snapshot': true })).toBe(
      'Background-snapshot is not supported by host kernel',
    );
    expect(setCaps(new MigrationOptions({ host: { write_tracking: 'available' } }), { 'background-snapshot': true })).toBe(
      'Background-snapshot is not compatible with guest memory configuration',
    );
    const incompatible = [
      'postcopy-ram',
      'dirty-bitmaps',
      'postcopy-blocktime',
      'late-block-activate',
      'return-path',
      'multifd',
      'pause-before-switchover',
      'auto-converge',
      'release-ram',
      'rdma-pin-all',
      'compress',
      'xbzrle',
      'x-colo',
      'validate-uuid',
      'zero-copy-send',
    ] as const;
    for (const c of incompatible) {
      const o = new MigrationOptions({ host: { replication: true } });
      expect(setCaps(o, { 'background-snapshot': true, [c]: true }), c).toBe(`Background-snapshot is not compatible with ${c}`);
    }
    for (const c of MigrationCapability_lookup.filter((x) => !(incompatible as readonly string[]).includes(x))) {
      if (['dirty-limit', 'switchover-ack', 'postcopy-preempt', 'background-snapshot'].includes(c)) continue;
      // QEMU accepts these with background-snapshot; the lab still refuses what it does not model.
      const lab = LAB_CAPABILITIES[c].status === 'refused' ? `Capability '${c}' is not modelled by Migration Lab yet` : null;
      expect(setCaps(new MigrationOptions(), { 'background-snapshot': true, [c]: true }), c).toBe(lab);
    }
  });

  it('multifd and postcopy-preempt must be set before incoming starts', () => {
    const rs: MigrationRunState = { migration_is_running: () => false, incomingStarted: () => true };
    expect(setCaps(new MigrationOptions(), { multifd: true }, rs)).toBe('Multifd must be set before incoming starts');
    expect(setCaps(new MigrationOptions(), { 'postcopy-ram': true, 'postcopy-preempt': true }, rs)).toBe(
      'Postcopy preempt must be set before incoming starts',
    );
    expect(setCaps(new MigrationOptions(), { events: true }, rs)).toBeNull();
  });

  it('deprecated block/compress warn, even when a later check fails', () => {
    const warnings: string[] = [];
    const o = new MigrationOptions({ warn_report: (m) => warnings.push(m) });
    expect(setCaps(o, { block: true, compress: true, xbzrle: true })).toBe('Compression is not compatible with xbzrle');
    expect(warnings).toEqual([
      'block migration is deprecated; use blockdev-mirror with NBD instead',
      'old compression method is deprecated; use multifd compression methods instead',
    ]);
  });

  it('x-colo carries QEMU\'s hint; with replication QEMU accepts it and the lab refuses it', () => {
    try {
      new MigrationOptions().qmp_migrate_set_capabilities([{ capability: 'x-colo', state: true }], idle);
      expect.unreachable();
    } catch (e) {
      expect((e as QmpError & { hint?: string }).hint).toBe('Please enable replication before COLO.\n');
    }
    expect(setCaps(new MigrationOptions({ host: { replication: true } }), { 'x-colo': true })).toBe(
      "Capability 'x-colo' is not modelled by Migration Lab yet",
    );
    expect(setCaps(new MigrationOptions({ host: { kvm_dirty_ring: true } }), { 'dirty-limit': true })).toBe(
      "Capability 'dirty-limit' is not modelled by Migration Lab yet",
    );
  });

  it('what the lab does not model is refused after all of QEMU\'s checks, first in enum order', () => {
    const refused = MigrationCapability_lookup.filter((c) => LAB_CAPABILITIES[c].status === 'refused');
    expect(refused).toEqual(['compress', 'postcopy-ram', 'zero-copy-send', 'postcopy-preempt', 'mapped-ram']);
    const o = new MigrationOptions();
    // QEMU's conflict messages still come first and unchanged
    expect(setCaps(o, { multifd: true, xbzrle: true })).toBe('Multifd is not compatible with xbzrle');
    // then the lab's, naming the first refused capability in enum order (not request order)
    expect(setCaps(o, { 'postcopy-ram': true, events: true, compress: true })).toBe("Capability 'compress' is not modelled by Migration Lab yet");
    expect(o.qmp_query_migrate_capabilities().every((c) => !c.state)).toBe(true); // all or nothing
    // turning them off is always fine, and the query still lists all 24
    expect(setCaps(o, Object.fromEntries(refused.map((c) => [c, false])))).toBeNull();
    expect(o.qmp_query_migrate_capabilities().map((c) => c.capability)).toEqual([...MigrationCapability_lookup]);
  });

  it('migrate_cap_set', () => {
    const o = new MigrationOptions();
    o.migrate_cap_set('block', true, idle);
    expect(o.migrate_block()).toBe(true);
    expect(errorOf(() => o.migrate_cap_set('block', false, running))).toBe("There's a migration process in progress");
  });
});
