/**
 * The QObject input visitor (qapi/qobject-input-visitor.c + qapi/qapi-visit-core.c):
 * checks a command's arguments against the schema and converts them to plain values,
 * failing with the exact messages QEMU's visitor produces, in the order it produces them
 * (members in schema order, then "is unexpected" for leftovers).
 *
 * Output values: structs become plain objects, enums strings, integers `number` when they
 * are safe integers and `bigint` otherwise, uint64/size wrap negative input as QEMU does.
 */
import { error_setg } from './error.js';
import { GHashTableModel } from './ghash.js';
import { qdictOrder } from './qdict.js';
import { INT64_MAX, INT64_MIN, UINT64_MAX, isQDict, type QDict, type QObject } from './qobject.js';
import type { QapiMember, QapiTypeDef, QapiTypeRef } from './schema/types.js';

interface StackObject {
  name: string | null;
  obj: QDict | QObject[];
  /** QDict: keys not visited yet, in a GHashTable as QEMU keeps them. */
  unvisited?: GHashTableModel;
  /** QList: index of the element being visited. */
  index: number;
}

const QERR_INVALID_PARAMETER_TYPE = (name: string, expected: string) =>
  error_setg(`Invalid parameter type for '${name}', expected: ${expected}`);
const QERR_INVALID_PARAMETER_VALUE = (name: string, expected: string) =>
  error_setg(`Parameter '${name}' expects ${expected}`);
const QERR_MISSING_PARAMETER = (name: string) => error_setg(`Parameter '${name}' is missing`);

const INT_LIMITS: Record<string, [bigint, bigint, string]> = {
  int8: [-128n, 127n, 'int8_t'],
  int16: [-32768n, 32767n, 'int16_t'],
  int32: [-2147483648n, 2147483647n, 'int32_t'],
};
const UINT_LIMITS: Record<string, [bigint, string]> = {
  uint8: [255n, 'uint8_t'],
  uint16: [65535n, 'uint16_t'],
  uint32: [4294967295n, 'uint32_t'],
};

export type TypeLookup = (name: string) => QapiTypeDef | undefined;

export class QObjectInputVisitor {
  private readonly stack: StackObject[] = [];

  constructor(
    private readonly root: QObject,
    private readonly lookup: TypeLookup,
  ) {}

  /** Visit `members` of the root dict (a command's arguments), then check for leftovers. */
  visitRootMembers(members: readonly QapiMember[]): Record<string, unknown> {
    this.startStruct(null);
    const out = this.visitMembers(members);
    this.checkStruct();
    this.stack.pop();
    return out;
  }

  private fullName(name: string | null, n = 0): string {
    let err = '';
    let nm = name;
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const so = this.stack[i];
      if (n) {
        n--;
      } else if (isQDict(so.obj)) {
        err = '.' + (nm ?? '<anonymous>') + err;
      } else {
        err = `[${so.index}]` + err;
      }
      nm = so.name;
    }
    if (nm !== null) return nm + err;
    if (err.startsWith('.')) return err.slice(1);
    return err || '<anonymous>';
  }

  private tryGetObject(name: string | null, consume: boolean): QObject | undefined {
    const tos = this.stack[this.stack.length - 1];
    if (!tos) return this.root;
    if (isQDict(tos.obj)) {
      const ret = tos.obj.get(name!);
      if (consume && ret !== undefined) tos.unvisited?.remove(name!);
      return ret;
    }
    const list = tos.obj;
    if (consume) tos.index++;
    return list[consume ? tos.index : tos.index + 1];
  }

  private getObject(name: string | null): QObject {
    const obj = this.tryGetObject(name, true);
    if (obj === undefined) throw QERR_MISSING_PARAMETER(this.fullName(name));
    return obj;
  }

  private startStruct(name: string | null): void {
    const obj = this.getObject(name);
    if (!isQDict(obj)) throw QERR_INVALID_PARAMETER_TYPE(this.fullName(name), 'object');
    const unvisited = new GHashTableModel();
    for (const k of qdictOrder([...obj.keys()])) unvisited.insert(k); // qobject_input_push()
    this.stack.push({ name, obj, unvisited, index: -1 });
  }

  private checkStruct(): void {
    const tos = this.stack[this.stack.length - 1];
    for (const key of tos.unvisited!) {
      throw error_setg(`Parameter '${this.fullName(key)}' is unexpected`);
    }
  }

  private visitMembers(members: readonly QapiMember[]): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const m of members) {
      if (m.optional && this.tryGetObject(m.name, false) === undefined) continue;
      out[m.name] = this.visitType(m.name, m.type);
    }
    return out;
  }

  private visitType(name: string | null, type: QapiTypeRef): unknown {
    if (typeof type !== 'string') return this.visitList(name, type.array);
    switch (type) {
      case 'str':
        return this.typeStr(name);
      case 'bool': {
        const v = this.getObject(name);
        if (typeof v !== 'boolean') throw QERR_INVALID_PARAMETER_TYPE(this.fullName(name), 'boolean');
        return v;
      }
      case 'int':
      case 'int64':
        return toJs(this.typeInt64(name));
      case 'int8':
      case 'int16':
      case 'int32': {
        const v = this.typeInt64(name);
        const [min, max, cname] = INT_LIMITS[type];
        if (v < min || v > max) throw QERR_INVALID_PARAMETER_VALUE(name ?? 'null', cname);
        return toJs(v);
      }
      case 'uint64':
      case 'size':
        return toJs(this.typeUint64(name));
      case 'uint8':
      case 'uint16':
      case 'uint32': {
        const v = this.typeUint64(name);
        const [max, cname] = UINT_LIMITS[type];
        if (v > max) throw QERR_INVALID_PARAMETER_VALUE(name ?? 'null', cname);
        return toJs(v);
      }
      case 'number': {
        const v = this.getObject(name);
        if (typeof v === 'bigint') return Number(v);
        if (typeof v !== 'number') throw QERR_INVALID_PARAMETER_TYPE(this.fullName(name), 'number');
        return v;
      }
      case 'any':
        return this.getObject(name);
      case 'null': {
        const v = this.getObject(name);
        if (v !== null) throw QERR_INVALID_PARAMETER_TYPE(this.fullName(name), 'null');
        return null;
      }
    }
    const def = this.lookup(type);
    if (!def) throw new Error(`schema: unknown type ${type}`);
    switch (def.kind) {
      case 'enum': {
        const s = this.typeStr(name);
        if (!def.values.includes(s)) {
          throw error_setg(`Parameter '${name ?? 'null'}' does not accept value '${s}'`);
        }
        return s;
      }
      case 'struct': {
        this.startStruct(name);
        const out = this.visitMembers(def.members);
        this.checkStruct();
        this.stack.pop();
        return out;
      }
      case 'alternate': {
        const v = this.tryGetObject(name, false);
        if (v === undefined) throw QERR_MISSING_PARAMETER(this.fullName(name));
        const branch = def.branches.find((b) => matchesJsonType(b, v, this.lookup));
        if (branch === undefined) throw QERR_INVALID_PARAMETER_TYPE(name ?? 'null', def.name);
        return this.visitType(name, branch);
      }
    }
  }

  private visitList(name: string | null, elem: QapiTypeRef): unknown[] {
    const obj = this.getObject(name);
    if (!Array.isArray(obj)) throw QERR_INVALID_PARAMETER_TYPE(this.fullName(name), 'array');
    this.stack.push({ name, obj, index: -1 });
    const out: unknown[] = [];
    for (let i = 0; i < obj.length; i++) out.push(this.visitType(null, elem));
    this.stack.pop();
    return out;
  }

  private typeStr(name: string | null): string {
    const v = this.getObject(name);
    if (typeof v !== 'string') throw QERR_INVALID_PARAMETER_TYPE(this.fullName(name), 'string');
    return v;
  }

  private typeInt64(name: string | null): bigint {
    const v = this.getObject(name);
    if (typeof v !== 'bigint' || v < INT64_MIN || v > INT64_MAX) {
      throw QERR_INVALID_PARAMETER_TYPE(this.fullName(name), 'integer');
    }
    return v;
  }

  private typeUint64(name: string | null): bigint {
    const v = this.getObject(name);
    if (typeof v !== 'bigint' || v < INT64_MIN || v > UINT64_MAX) {
      throw QERR_INVALID_PARAMETER_VALUE(this.fullName(name), 'uint64');
    }
    // "Need to accept negative values for backward compatibility": stored as uint64.
    return v < 0n ? v + UINT64_MAX + 1n : v;
  }
}

/** The QType an alternate branch accepts (the generated visitor switches on qobject_type). */
function matchesJsonType(type: QapiTypeRef, v: QObject, lookup: TypeLookup): boolean {
  if (typeof type !== 'string') return Array.isArray(v);
  switch (type) {
    case 'str':
      return typeof v === 'string';
    case 'null':
      return v === null;
    case 'bool':
      return typeof v === 'boolean';
    case 'number':
      return typeof v === 'number' || typeof v === 'bigint';
    case 'any':
      return true;
  }
  if (/^u?int(8|16|32|64)?$|^size$/.test(type)) return typeof v === 'number' || typeof v === 'bigint';
  const def = lookup(type);
  if (def?.kind === 'enum') return typeof v === 'string';
  if (def?.kind === 'struct') return isQDict(v);
  return false;
}

function toJs(v: bigint): number | bigint {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v;
}
