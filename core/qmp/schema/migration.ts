/**
 * qapi/migration.json as of QEMU 9.0 (the parts the lab implements).
 *
 * 9.0 still carries what 9.1 removed: the deprecated `compress` and `block` capabilities,
 * the compress-* / decompress-threads / block-incremental parameters, `migrate`'s `blk` and
 * `inc`; it already has `mapped-ram` and `zero-page-detection`, and not yet
 * `postcopy-recover-setup`, `direct-io`, `exit-on-error` (all 9.1).
 * `multifd-compression` lists zstd: distribution builds have CONFIG_ZSTD.
 */
import type { QapiMember, QapiModule } from './types.js';

/** MigrationStatus, 9.0 order (postcopy-recover-setup only from 9.1). */
export const MigrationStatus_lookup = [
  'none',
  'setup',
  'cancelling',
  'cancelled',
  'active',
  'postcopy-active',
  'postcopy-paused',
  'postcopy-recover',
  'completed',
  'failed',
  'colo',
  'pre-switchover',
  'device',
  'wait-unplug',
] as const;
export type MigrationStatus = (typeof MigrationStatus_lookup)[number];

/** MigrationCapability, 9.0 order: 7.2's list plus switchover-ack, dirty-limit, mapped-ram. */
export const MigrationCapability_lookup = [
  'xbzrle',
  'rdma-pin-all',
  'auto-converge',
  'zero-blocks',
  'compress', // deprecated (8.2), removed 9.1
  'events',
  'postcopy-ram',
  'x-colo',
  'release-ram',
  'block', // deprecated (8.2), removed 9.1
  'return-path',
  'pause-before-switchover',
  'multifd',
  'dirty-bitmaps',
  'postcopy-blocktime',
  'late-block-activate',
  'x-ignore-shared',
  'validate-uuid',
  'background-snapshot',
  'zero-copy-send',
  'postcopy-preempt',
  'switchover-ack',
  'dirty-limit',
  'mapped-ram',
] as const;
export type MigrationCapability = (typeof MigrationCapability_lookup)[number];

/**
 * 'zstd' is `'if': 'CONFIG_ZSTD'` in qapi/migration.json: the lab answers as a QEMU built
 * without it (Node 20's zlib has no zstd), so the value does not parse.
 */
export const MultiFDCompression_lookup = ['none', 'zlib'] as const;
export type MultiFDCompression = (typeof MultiFDCompression_lookup)[number];

export const MigMode_lookup = ['normal', 'cpr-reboot'] as const;
export type MigMode = (typeof MigMode_lookup)[number];

export const ZeroPageDetection_lookup = ['none', 'legacy', 'multifd'] as const;
export type ZeroPageDetection = (typeof ZeroPageDetection_lookup)[number];

/** MigrationParameter: the names HMP's migrate_set_parameter accepts (qapi_enum_parse). */
export const MigrationParameter_lookup = [
  'announce-initial',
  'announce-max',
  'announce-rounds',
  'announce-step',
  'compress-level',
  'compress-threads',
  'decompress-threads',
  'compress-wait-thread',
  'throttle-trigger-threshold',
  'cpu-throttle-initial',
  'cpu-throttle-increment',
  'cpu-throttle-tailslow',
  'tls-creds',
  'tls-hostname',
  'tls-authz',
  'max-bandwidth',
  'avail-switchover-bandwidth',
  'downtime-limit',
  'x-checkpoint-delay',
  'block-incremental',
  'multifd-channels',
  'xbzrle-cache-size',
  'max-postcopy-bandwidth',
  'max-cpu-throttle',
  'multifd-compression',
  'multifd-zlib-level',
  'multifd-zstd-level',
  'block-bitmap-mapping',
  'x-vcpu-dirty-limit-period',
  'vcpu-dirty-limit',
  'mode',
  'zero-page-detection',
] as const;
export type MigrationParameter = (typeof MigrationParameter_lookup)[number];

const opt = (name: string, type: QapiMember['type']): QapiMember => ({ name, type, optional: true });

/**
 * MigrationParameters (output) and MigrateSetParameters (input) share members and order;
 * only the tls-* types differ ('str' vs 'StrOrNull').
 */
function parameterMembers(tls: 'str' | 'StrOrNull'): QapiMember[] {
  return [
    opt('announce-initial', 'size'),
    opt('announce-max', 'size'),
    opt('announce-rounds', 'size'),
    opt('announce-step', 'size'),
    opt('compress-level', 'uint8'),
    opt('compress-threads', 'uint8'),
    opt('compress-wait-thread', 'bool'),
    opt('decompress-threads', 'uint8'),
    opt('throttle-trigger-threshold', 'uint8'),
    opt('cpu-throttle-initial', 'uint8'),
    opt('cpu-throttle-increment', 'uint8'),
    opt('cpu-throttle-tailslow', 'bool'),
    opt('tls-creds', tls),
    opt('tls-hostname', tls),
    opt('tls-authz', tls),
    opt('max-bandwidth', 'size'),
    opt('avail-switchover-bandwidth', 'size'),
    opt('downtime-limit', 'uint64'),
    opt('x-checkpoint-delay', 'uint32'),
    opt('block-incremental', 'bool'),
    opt('multifd-channels', 'uint8'),
    opt('xbzrle-cache-size', 'size'),
    opt('max-postcopy-bandwidth', 'size'),
    opt('max-cpu-throttle', 'uint8'),
    opt('multifd-compression', 'MultiFDCompression'),
    opt('multifd-zlib-level', 'uint8'),
    opt('multifd-zstd-level', 'uint8'),
    opt('block-bitmap-mapping', { array: 'BitmapMigrationNodeAlias' }),
    opt('x-vcpu-dirty-limit-period', 'uint64'),
    opt('vcpu-dirty-limit', 'uint64'),
    opt('mode', 'MigMode'),
    opt('zero-page-detection', 'ZeroPageDetection'),
  ];
}

export const migrationSchema: QapiModule = {
  types: [
    // qapi/common.json in QEMU; declared here because only migration uses it in the lab.
    { kind: 'alternate', name: 'StrOrNull', branches: ['str', 'null'] },
    { kind: 'enum', name: 'MigrationStatus', values: MigrationStatus_lookup },
    { kind: 'enum', name: 'MigrationCapability', values: MigrationCapability_lookup },
    {
      kind: 'struct',
      name: 'MigrationCapabilityStatus',
      members: [
        { name: 'capability', type: 'MigrationCapability' },
        { name: 'state', type: 'bool' },
      ],
    },
    { kind: 'enum', name: 'MultiFDCompression', values: MultiFDCompression_lookup },
    { kind: 'enum', name: 'MigMode', values: MigMode_lookup },
    { kind: 'enum', name: 'ZeroPageDetection', values: ZeroPageDetection_lookup },
    {
      kind: 'struct',
      name: 'BitmapMigrationBitmapAliasTransform',
      members: [opt('persistent', 'bool')],
    },
    {
      kind: 'struct',
      name: 'BitmapMigrationBitmapAlias',
      members: [
        { name: 'name', type: 'str' },
        { name: 'alias', type: 'str' },
        opt('transform', 'BitmapMigrationBitmapAliasTransform'),
      ],
    },
    {
      kind: 'struct',
      name: 'BitmapMigrationNodeAlias',
      members: [
        { name: 'node-name', type: 'str' },
        { name: 'alias', type: 'str' },
        { name: 'bitmaps', type: { array: 'BitmapMigrationBitmapAlias' } },
      ],
    },
    { kind: 'enum', name: 'MigrationParameter', values: MigrationParameter_lookup },
    { kind: 'struct', name: 'MigrateSetParameters', members: parameterMembers('StrOrNull') },
    { kind: 'struct', name: 'MigrationParameters', members: parameterMembers('str') },
    { kind: 'enum', name: 'MigrationAddressType', values: ['socket', 'exec', 'rdma', 'file'] },
    { kind: 'enum', name: 'SocketAddressType', values: ['inet', 'unix', 'vsock', 'fd'] },
    { kind: 'enum', name: 'MigrationChannelType', values: ['main'] },
    /*
     * MigrationAddress is a flat union on `transport` (socket: SocketAddress, itself a flat
     * union on `type`; exec: MigrationExecCommand; rdma: InetSocketAddress; file:
     * FileMigrationArgs). The lab's visitor has no unions, so this is the base plus every
     * branch member, all optional: types are checked, but a member missing from (or foreign
     * to) the chosen branch must be caught by whoever interprets the address.
     */
    {
      kind: 'struct',
      name: 'MigrationAddress',
      members: [
        { name: 'transport', type: 'MigrationAddressType' },
        opt('type', 'SocketAddressType'), // socket
        opt('host', 'str'), // socket/inet, rdma
        opt('port', 'str'), // socket/inet, socket/vsock, rdma
        opt('numeric', 'bool'),
        opt('to', 'uint16'),
        opt('ipv4', 'bool'),
        opt('ipv6', 'bool'),
        opt('keep-alive', 'bool'),
        opt('mptcp', 'bool'),
        opt('path', 'str'), // socket/unix
        opt('abstract', 'bool'),
        opt('tight', 'bool'),
        opt('cid', 'str'), // socket/vsock
        opt('str', 'str'), // socket/fd
        opt('args', { array: 'str' }), // exec
        opt('filename', 'str'), // file
        opt('offset', 'uint64'),
      ],
    },
    {
      kind: 'struct',
      name: 'MigrationChannel',
      members: [
        { name: 'channel-type', type: 'MigrationChannelType' },
        { name: 'addr', type: 'MigrationAddress' },
      ],
    },
  ],
  commands: [
    { name: 'query-migrate' },
    {
      name: 'migrate-set-capabilities',
      data: [{ name: 'capabilities', type: { array: 'MigrationCapabilityStatus' } }],
    },
    { name: 'query-migrate-capabilities' },
    { name: 'migrate-set-parameters', data: 'MigrateSetParameters' },
    { name: 'query-migrate-parameters' },
    { name: 'migrate-start-postcopy' },
    { name: 'migrate_cancel' },
    { name: 'migrate-continue', data: [{ name: 'state', type: 'MigrationStatus' }] },
    {
      name: 'migrate',
      data: [
        opt('uri', 'str'),
        opt('channels', { array: 'MigrationChannel' }),
        opt('blk', 'bool'), // deprecated, removed 9.1
        opt('inc', 'bool'), // deprecated, removed 9.1
        opt('detach', 'bool'),
        opt('resume', 'bool'),
      ],
    },
    {
      name: 'migrate-incoming',
      data: [opt('uri', 'str'), opt('channels', { array: 'MigrationChannel' })],
    },
    { name: 'migrate-recover', data: [{ name: 'uri', type: 'str' }], allowOob: true },
    { name: 'migrate-pause', allowOob: true },
    { name: 'query-migrationthreads' },
  ],
  events: [
    { name: 'MIGRATION', data: [{ name: 'status', type: 'MigrationStatus' }] },
    { name: 'MIGRATION_PASS', data: [{ name: 'pass', type: 'int' }] },
  ],
};
