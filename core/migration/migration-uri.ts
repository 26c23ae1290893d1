/**
 * The address half of migration/migration.c (9.0): migrate_uri_parse(), the `channels`
 * argument checked the way QEMU's QAPI visitor checks its MigrationAddress union, the
 * preliminary uri/channels checks shared by qmp_migrate() and
 * qemu_start_incoming_migration(), and migration_channels_and_transport_compatible().
 *
 * 9.0 parses before migrate_init(): every error here comes without a state change or
 * event (7.2 reported an unknown protocol after setup→failed, with another text).
 */
import { error_setg, QmpError } from '../qmp/error.js';
import { GHashTableModel } from '../qmp/ghash.js';
import { qdictOrder } from '../qmp/qdict.js';
import {
  inet_parse,
  socket_parse,
  type FdSocketAddress,
  type InetSocketAddress,
  type SocketAddress,
  type UnixSocketAddress,
  type VsockSocketAddress,
} from '../util/qemu-sockets.js';
import { file_parse_offset, type FileMigrationArgs } from './file.js';

export type { FdSocketAddress, FileMigrationArgs, InetSocketAddress, SocketAddress, UnixSocketAddress, VsockSocketAddress };

/** QAPI MigrationExecCommand. */
export interface MigrationExecCommand {
  args: string[];
}

/** QAPI MigrationAddress: a flat union on `transport` (socket is itself flat on `type`). */
export type MigrationAddress =
  | ({ transport: 'socket' } & SocketAddress)
  | ({ transport: 'exec' } & MigrationExecCommand)
  | ({ transport: 'rdma' } & InetSocketAddress)
  | ({ transport: 'file' } & FileMigrationArgs);

export type MigrationChannelType = 'main';

/** QAPI MigrationChannel. */
export interface MigrationChannel {
  'channel-type': MigrationChannelType;
  addr: MigrationAddress;
}

/**
 * Where real QEMU 9.0 does not return an error but dies: the lab reports `desc` (the error
 * QEMU had set just before) and says what QEMU would have done in `qemu_outcome`.
 */
export class QemuWouldAbort extends QmpError {
  constructor(
    desc: string,
    readonly qemu_outcome: string,
  ) {
    super('GenericError', desc);
  }
}

/** The SocketAddress part of a socket MigrationAddress. */
export function migration_address_socket(addr: MigrationAddress & { transport: 'socket' }): SocketAddress {
  const { transport: _t, ...saddr } = addr;
  return saddr;
}

/** The InetSocketAddress of an rdma MigrationAddress. */
export function migration_address_rdma(addr: MigrationAddress & { transport: 'rdma' }): InetSocketAddress {
  const { transport: _t, ...iaddr } = addr;
  return iaddr;
}

/**
 * migrate_uri_parse(): exec:, rdma:, tcp:/unix:/vsock:/fd:, file:, else "unknown
 * migration protocol: %s". A malformed rdma: address makes real 9.0 abort (it frees an
 * InetSocketAddress embedded in the MigrationAddress: "free(): invalid pointer").
 */
export function migrate_uri_parse(uri: string): MigrationChannel {
  let addr: MigrationAddress;
  if (uri.startsWith('exec:')) {
    addr = { transport: 'exec', args: ['/bin/sh', '-c', uri.slice('exec:'.length)] };
  } else if (uri.startsWith('rdma:')) {
    try {
      addr = { transport: 'rdma', ...inet_parse(uri.slice('rdma:'.length)) };
    } catch (e) {
      if (!(e instanceof QmpError)) throw e;
      throw new QemuWouldAbort(e.desc, 'QEMU 9.0 aborts here: free(): invalid pointer (SIGABRT)');
    }
  } else if (uri.startsWith('tcp:') || uri.startsWith('unix:') || uri.startsWith('vsock:') || uri.startsWith('fd:')) {
    addr = { transport: 'socket', ...socket_parse(uri) };
  } else if (uri.startsWith('file:')) {
    addr = { transport: 'file', ...file_parse_offset(uri.slice('file:'.length)) };
  } else {
    throw error_setg(`unknown migration protocol: ${uri}`);
  }
  return { 'channel-type': 'main', addr };
}

/* ---------- the channels argument ---------- */

/** The checks of QEMU's input visitor for one struct level; returns the visited members. */
class UnionVisitor {
  private readonly unvisited = new GHashTableModel();

  constructor(
    private readonly obj: Record<string, unknown>,
    private readonly prefix: string,
  ) {
    for (const k of qdictOrder(Object.keys(obj))) this.unvisited.insert(k);
  }

  private full(name: string): string {
    return `${this.prefix}.${name}`;
  }

  enum<T extends string>(name: string, values: readonly T[]): T {
    const v = this.obj[name];
    this.unvisited.remove(name);
    if (v === undefined) throw error_setg(`Parameter '${this.full(name)}' is missing`);
    if (typeof v !== 'string') throw error_setg(`Invalid parameter type for '${this.full(name)}', expected: string`);
    // qapi_enum_parse() names the member alone
    if (!values.includes(v as T)) throw error_setg(`Parameter '${name}' does not accept value '${v}'`);
    return v as T;
  }

  /** A member of the chosen branch, marked visited; a required one must be there. */
  private member(name: string, optional: boolean): unknown {
    const v = this.obj[name];
    this.unvisited.remove(name);
    if (v === undefined && !optional) throw error_setg(`Parameter '${this.full(name)}' is missing`);
    return v;
  }

  /** visit_type_str() */
  str(name: string): string {
    const v = this.member(name, false);
    if (typeof v !== 'string') throw error_setg(`Invalid parameter type for '${this.full(name)}', expected: string`);
    return v;
  }

  /** visit_type_bool() of an optional member (undefined when absent). */
  opt_bool(name: string): boolean | undefined {
    const v = this.member(name, true);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw error_setg(`Invalid parameter type for '${this.full(name)}', expected: boolean`);
    return v;
  }

  /** visit_type_uint16() of an optional member. */
  opt_uint16(name: string): number | undefined {
    const v = this.member(name, true);
    if (v === undefined) return undefined;
    const full = this.full(name);
    if (typeof v !== 'number' && typeof v !== 'bigint') throw error_setg(`Invalid parameter type for '${full}', expected: integer`);
    const n = BigInt(v);
    if (n < 0n || n > 65535n) throw error_setg(`Parameter '${full}' expects uint16_t`);
    return Number(n);
  }

  /** visit_type_uint64(): negative input wraps, as QEMU's visitor stores it. */
  uint64(name: string): bigint {
    const v = this.member(name, false);
    if (typeof v !== 'number' && typeof v !== 'bigint') throw error_setg(`Invalid parameter type for '${this.full(name)}', expected: integer`);
    return BigInt.asUintN(64, BigInt(v));
  }

  /** visit_type_strList() */
  strList(name: string): string[] {
    const v = this.member(name, false);
    const full = this.full(name);
    if (!Array.isArray(v)) throw error_setg(`Invalid parameter type for '${full}', expected: array`);
    return v.map((s, i) => {
      if (typeof s !== 'string') throw error_setg(`Invalid parameter type for '${full}[${i}]', expected: string`);
      return s;
    });
  }

  visited(name: string): void {
    this.unvisited.remove(name);
  }

  /** visit_check_struct(): the first member nobody visited is "unexpected". */
  check(): void {
    for (const key of this.unvisited) throw error_setg(`Parameter '${this.full(key)}' is unexpected`);
  }
}

/** An optional member, set only when the input had it (QEMU's has_* false otherwise). */
function set_optional<T, K extends keyof T>(o: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) o[key] = value;
}

/** visit_type_InetSocketAddress_members() */
function visit_InetSocketAddress_members(v: UnionVisitor): InetSocketAddress {
  const a: InetSocketAddress = { host: v.str('host'), port: v.str('port') };
  set_optional(a, 'numeric', v.opt_bool('numeric'));
  set_optional(a, 'to', v.opt_uint16('to'));
  set_optional(a, 'ipv4', v.opt_bool('ipv4'));
  set_optional(a, 'ipv6', v.opt_bool('ipv6'));
  set_optional(a, 'keep-alive', v.opt_bool('keep-alive'));
  set_optional(a, 'mptcp', v.opt_bool('mptcp'));
  return a;
}

/** visit_type_SocketAddress_members(): the branch of `type`. */
function visit_SocketAddress_members(v: UnionVisitor): SocketAddress {
  const type = v.enum('type', ['inet', 'unix', 'vsock', 'fd'] as const);
  switch (type) {
    case 'inet':
      return { type, ...visit_InetSocketAddress_members(v) };
    case 'unix': {
      const a: UnixSocketAddress = { path: v.str('path') };
      set_optional(a, 'abstract', v.opt_bool('abstract'));
      set_optional(a, 'tight', v.opt_bool('tight'));
      return { type, ...a };
    }
    case 'vsock':
      return { type, cid: v.str('cid'), port: v.str('port') };
    case 'fd':
      return { type, str: v.str('str') };
  }
}

/**
 * visit_type_MigrationAddress(): the union's checks that a flattened schema cannot make
 * (members missing from the chosen branch, members of another branch), with QEMU's names
 * ("Parameter 'channels[0].addr.port' is missing").
 */
export function visit_MigrationAddress(obj: unknown, name = 'channels[0].addr'): MigrationAddress {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw error_setg(`Invalid parameter type for '${name}', expected: object`);
  }
  const v = new UnionVisitor(obj as Record<string, unknown>, name);
  const transport = v.enum('transport', ['socket', 'exec', 'rdma', 'file'] as const);
  let addr: MigrationAddress;
  switch (transport) {
    case 'socket':
      addr = { transport, ...visit_SocketAddress_members(v) };
      break;
    case 'exec':
      addr = { transport, args: v.strList('args') };
      break;
    case 'rdma':
      addr = { transport, ...visit_InetSocketAddress_members(v) };
      break;
    case 'file':
      addr = { transport, filename: v.str('filename'), offset: v.uint64('offset') };
      break;
  }
  v.check();
  return addr;
}

/** visit_type_MigrationChannel(). */
export function visit_MigrationChannel(obj: unknown, name = 'channels[0]'): MigrationChannel {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw error_setg(`Invalid parameter type for '${name}', expected: object`);
  }
  const o = obj as Record<string, unknown>;
  const v = new UnionVisitor(o, name);
  const channelType = v.enum('channel-type', ['main'] as const);
  if (o.addr === undefined || o.addr === null) throw error_setg(`Parameter '${name}.addr' is missing`);
  const addr = visit_MigrationAddress(o.addr, `${name}.addr`);
  v.visited('addr');
  v.check();
  return { 'channel-type': channelType, addr };
}

/** visit_type_MigrationChannelList() for the `channels` argument. */
export function visit_MigrationChannelList(list: readonly unknown[], name = 'channels'): MigrationChannel[] {
  return list.map((c, i) => visit_MigrationChannel(c, `${name}[${i}]`));
}

/**
 * The first checks of qmp_migrate() and qemu_start_incoming_migration() (9.0): exactly
 * one of uri/channels (an empty list counts as none), one channel only, then the URI
 * parsed. Returns the address the transport dispatch uses.
 */
export function migration_address_parse(args: { uri?: string; channels?: readonly unknown[] }): MigrationAddress {
  const channels = args.channels && args.channels.length ? visit_MigrationChannelList(args.channels) : undefined;
  if ((args.uri === undefined) === (channels === undefined)) {
    throw error_setg("need either 'uri' or 'channels' argument");
  }
  if (channels) {
    if (channels.length > 1) throw error_setg('Channel list has more than one entries');
    return channels[0].addr;
  }
  return migrate_uri_parse(args.uri!).addr;
}

/* ---------- migration_channels_and_transport_compatible() ---------- */

/** The capabilities these checks read (MigrationOptions has them). */
export interface TransportCapabilities {
  migrate_mapped_ram(): boolean;
  migrate_multifd(): boolean;
  migrate_postcopy_preempt(): boolean;
}

export function migration_needs_multiple_sockets(o: TransportCapabilities): boolean {
  return o.migrate_multifd() || o.migrate_postcopy_preempt();
}

export function transport_supports_multi_channels(addr: MigrationAddress, o: TransportCapabilities): boolean {
  if (addr.transport === 'socket') return addr.type === 'inet' || addr.type === 'unix' || addr.type === 'vsock';
  if (addr.transport === 'file') return o.migrate_mapped_ram();
  return false;
}

export function migration_needs_seekable_channel(o: TransportCapabilities): boolean {
  return o.migrate_mapped_ram();
}

export function transport_supports_seeking(addr: MigrationAddress): boolean {
  return addr.transport === 'file';
}

/** migration_channels_and_transport_compatible(): throws QEMU's text when not. */
export function migration_channels_and_transport_compatible(addr: MigrationAddress, o: TransportCapabilities): void {
  if (migration_needs_seekable_channel(o) && !transport_supports_seeking(addr)) {
    throw error_setg('Migration requires seekable transport (e.g. file)');
  }
  if (migration_needs_multiple_sockets(o) && !transport_supports_multi_channels(addr, o)) {
    throw error_setg('Migration requires multi-channel URIs (e.g. tcp)');
  }
}
