/**
 * qmp_dispatch() (qapi/qmp-dispatch.c): request shape checks in QDict order, command
 * lookup, argument visiting, and the response dict with `id` echoed.
 */
import { QmpError, error_setg } from './error.js';
import { qdictOrder } from './qdict.js';
import { QObjectInputVisitor } from './qobject-input-visitor.js';
import { isQDict, type QDict, type QObject } from './qobject.js';
import type { SchemaRegistry } from './schema/registry.js';
import type { QapiCommand } from './schema/types.js';

/**
 * A command's handler. Each declares its own arguments' type: what the input visitor made of
 * them, checked against the command's QAPI schema first, which the type system cannot see.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- as above: the schema, not TypeScript, types `args`
export type QmpHandler<Ctx> = (args: any, ctx: Ctx) => unknown;

export interface QmpCommand<Ctx> {
  def: QapiCommand;
  fn: QmpHandler<Ctx>;
}

/** A set of commands a monitor may run (QEMU has one for negotiation, one after). */
export class QmpCommandList<Ctx> {
  private readonly cmds = new Map<string, QmpCommand<Ctx>>();

  constructor(readonly schema: SchemaRegistry) {}

  register(name: string, fn: QmpHandler<Ctx>): this {
    const def = this.schema.command(name);
    if (!def) throw new Error(`qmp_register_command: ${name} is not in the schema`);
    this.cmds.set(name, { def, fn });
    return this;
  }

  find(name: string): QmpCommand<Ctx> | undefined {
    return this.cmds.get(name);
  }

  names(): string[] {
    return [...this.cmds.keys()];
  }
}

export interface QmpResponse {
  return?: unknown;
  error?: { class: string; desc: string };
  id?: QObject;
}

export function qmp_error_response(err: QmpError): QmpResponse {
  return { error: { class: err.errorClass, desc: err.desc } };
}

/** Does the request look like a command to be run out-of-band? */
export function qmp_is_oob(req: QObject): boolean {
  return isQDict(req) && req.has('exec-oob') && !req.has('execute');
}

function qmp_dispatch_check_obj(dict: QDict, allowOob: boolean): void {
  let execKey: string | null = null;
  for (const argName of qdictOrder([...dict.keys()])) {
    const argObj = dict.get(argName)!;
    if (argName === 'execute' || (argName === 'exec-oob' && allowOob)) {
      if (typeof argObj !== 'string') {
        throw error_setg(`QMP input member '${argName}' must be a string`);
      }
      if (execKey) throw error_setg(`QMP input member '${argName}' clashes with '${execKey}'`);
      execKey = argName;
    } else if (argName === 'arguments') {
      if (!isQDict(argObj)) throw error_setg("QMP input member 'arguments' must be an object");
    } else if (argName !== 'id') {
      throw error_setg(`QMP input member '${argName}' is unexpected`);
    }
  }
  if (!execKey) throw error_setg("QMP input lacks member 'execute'");
}

export async function qmp_dispatch<Ctx>(
  cmds: QmpCommandList<Ctx>,
  request: QObject,
  allowOob: boolean,
  ctx: Ctx,
): Promise<QmpResponse> {
  let id: QObject | undefined;
  let rsp: QmpResponse;
  try {
    if (!isQDict(request)) throw error_setg('QMP input must be a JSON object');
    id = request.get('id');
    qmp_dispatch_check_obj(request, allowOob);
    const oob = !request.has('execute');
    const command = (request.get('execute') ?? request.get('exec-oob')) as string;
    const cmd = cmds.find(command);
    if (!cmd) throw new QmpError('CommandNotFound', `The command ${command} has not been found`);
    if (oob && !cmd.def.allowOob) throw error_setg(`The command ${command} does not support OOB`);
    const argsObj = request.get('arguments') ?? new Map();
    const visitor = new QObjectInputVisitor(argsObj, (n) => cmds.schema.type(n));
    const args = visitor.visitRootMembers(cmds.schema.commandMembers(cmd.def));
    const ret = await cmd.fn(args, ctx);
    rsp = { return: ret ?? {} };
  } catch (e) {
    if (!(e instanceof QmpError)) throw e;
    rsp = qmp_error_response(e);
  }
  if (id !== undefined) rsp.id = id;
  return rsp;
}
