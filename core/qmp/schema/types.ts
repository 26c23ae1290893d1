/**
 * The QAPI schema as data: the same shapes as QEMU's qapi/*.json, declared once and used
 * by the input visitor (argument validation with QEMU's messages), by `query-commands`,
 * and by the console's completion.
 *
 * Built-in type names are QAPI's: str, int, int8..int64, uint8..uint64, size, bool,
 * number, any, null. Anything else names an enum, struct or alternate declared in a
 * schema module, and `[T]` (written `{ array: T }`) is a list of T.
 */
export type QapiBuiltin =
  | 'str'
  | 'int'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'size'
  | 'bool'
  | 'number'
  | 'any'
  | 'null';

export type QapiTypeRef = string | { array: QapiTypeRef };

export interface QapiMember {
  name: string;
  type: QapiTypeRef;
  optional?: boolean;
}

export interface QapiEnum {
  kind: 'enum';
  name: string;
  values: readonly string[];
}

export interface QapiStruct {
  kind: 'struct';
  name: string;
  members: readonly QapiMember[];
}

/** An alternate: the branch is chosen by the JSON type of the value (e.g. StrOrNull). */
export interface QapiAlternate {
  kind: 'alternate';
  name: string;
  branches: readonly QapiTypeRef[];
}

export type QapiTypeDef = QapiEnum | QapiStruct | QapiAlternate;

export interface QapiCommand {
  name: string;
  /** Members of the implicit argument struct, or the name of a struct used as `data`. */
  data?: readonly QapiMember[] | string;
  /** Whether the command may be sent with exec-oob. */
  allowOob?: boolean;
}

export interface QapiEvent {
  name: string;
  data?: readonly QapiMember[];
}

export interface QapiModule {
  types?: readonly QapiTypeDef[];
  commands?: readonly QapiCommand[];
  events?: readonly QapiEvent[];
}
