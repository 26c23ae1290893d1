/**
 * migration/vmstate.c of QEMU 9.0, the part the lab's sections use: VMStateDescription and
 * VMStateField (include/migration/vmstate.h), the field kinds the `none` machine's devices
 * and the configuration section need (VMSTATE_UINT8 / _UINT32 / _INT64 / _BUFFER /
 * _UNUSED), and vmstate_save_state() / vmstate_load_state() with their subsections. The
 * save side describes each field in the VM description's JSON (vmdesc) as 9.0 does.
 */
import {
  json_writer_end_array,
  json_writer_end_object,
  json_writer_int64,
  json_writer_start_array,
  json_writer_start_object,
  json_writer_str,
  type JSONWriter,
} from '../qmp/json-writer.js';
import { QEMUFile, need, qemu_file_get_error, qemu_file_set_error, qemu_get_be32, qemu_get_be64, qemu_get_buffer, qemu_get_byte, qemu_put_be32, qemu_put_be64, qemu_put_buffer, qemu_put_byte } from './qemu-file.js';
import { QEMU_VM_SUBSECTION } from './savevm-h.js';
import { EINVAL, ENOENT } from '../util/errno.js';

/**
 * One VMStateField: how to write and read element i of it. `type` is the VMStateInfo name
 * the VM description shows; `n_elems` > 1 makes an array (described once, "array_len").
 */
export interface VMStateField<O> {
  name: string;
  type: string;
  /** Only present in streams of this version and later (VMSTATE_*_V). */
  version_id?: number;
  n_elems?(o: O): number;
  put(f: QEMUFile, o: O, i: number): void;
  /** Read element i; 0 or a negative errno. */
  get(f: QEMUFile, o: O, i: number): Promise<number>;
}

export interface VMStateDescription<O> {
  name: string;
  version_id: number;
  minimum_version_id: number;
  fields: VMStateField<O>[];
  subsections?: VMStateDescription<O>[];
  needed?(o: O): boolean;
  pre_save?(o: O): number;
  pre_load?(o: O): number;
  post_load?(o: O, version_id: number): number;
}

/** VMSTATE_UINT8 / _UINT32 / _INT64 over a property of O. */
export function vmstate_uint8<O>(name: string, key: keyof O & string, version_id = 0): VMStateField<O> {
  return {
    name,
    type: 'uint8',
    version_id,
    put: (f, o) => qemu_put_byte(f, Number(o[key]) & 0xff),
    get: async (f, o) => {
      await need(f, 1);
      (o as Record<string, unknown>)[key] = qemu_get_byte(f);
      return 0;
    },
  };
}

export function vmstate_uint32<O>(name: string, key: keyof O & string, version_id = 0): VMStateField<O> {
  return {
    name,
    type: 'uint32',
    version_id,
    put: (f, o) => qemu_put_be32(f, Number(o[key]) >>> 0),
    get: async (f, o) => {
      await need(f, 4);
      (o as Record<string, unknown>)[key] = qemu_get_be32(f);
      return 0;
    },
  };
}

export function vmstate_int64<O>(name: string, key: keyof O & string, version_id = 0): VMStateField<O> {
  return {
    name,
    type: 'int64',
    version_id,
    put: (f, o) => qemu_put_be64(f, BigInt(o[key] as bigint)),
    get: async (f, o) => {
      await need(f, 8);
      (o as Record<string, unknown>)[key] = BigInt.asIntN(64, qemu_get_be64(f));
      return 0;
    },
  };
}

/** VMSTATE_BUFFER: a fixed-size byte array property. */
export function vmstate_buffer<O>(name: string, key: keyof O & string): VMStateField<O> {
  return {
    name,
    type: 'buffer',
    put: (f, o) => qemu_put_buffer(f, o[key] as Uint8Array),
    get: async (f, o) => {
      const b = o[key] as Uint8Array;
      await need(f, b.length);
      qemu_get_buffer(f, b, 0, b.length);
      return 0;
    },
  };
}

/** VMSTATE_UNUSED(size): zeros out, skipped in. */
export function vmstate_unused<O>(size: number): VMStateField<O> {
  const zeros = new Uint8Array(size);
  return {
    name: 'unused',
    type: 'unused_buffer',
    put: (f) => qemu_put_buffer(f, zeros),
    get: async (f) => {
      await need(f, size);
      qemu_get_buffer(f, new Uint8Array(size), 0, size);
      return 0;
    },
  };
}

function vmstate_n_elems<O>(field: VMStateField<O>, o: O): number {
  return field.n_elems ? field.n_elems(o) : 1;
}

/** vmstate_save_needed() */
export function vmstate_save_needed<O>(vmsd: VMStateDescription<O>, o: O): boolean {
  return !vmsd.needed || vmsd.needed(o);
}

/**
 * vmstate_save_state(): the fields (each described once in the JSON: name, array_len,
 * type, and the bytes its first element took), then the needed subsections.
 */
export function vmstate_save_state<O>(f: QEMUFile, vmsd: VMStateDescription<O>, o: O, vmdesc: JSONWriter | null): number {
  if (vmsd.pre_save) {
    const ret = vmsd.pre_save(o);
    if (ret) return ret;
  }
  const version_id = vmsd.version_id;
  if (vmdesc) {
    json_writer_str(vmdesc, 'vmsd_name', vmsd.name);
    json_writer_int64(vmdesc, 'version', version_id);
    json_writer_start_array(vmdesc, 'fields');
  }
  for (const field of vmsd.fields) {
    if ((field.version_id ?? 0) > version_id) continue;
    const n_elems = vmstate_n_elems(field, o);
    let vmdesc_loop = vmdesc;
    for (let i = 0; i < n_elems; i++) {
      if (vmdesc_loop) {
        json_writer_start_object(vmdesc_loop, null);
        json_writer_str(vmdesc_loop, 'name', field.name);
        if (n_elems > 1) json_writer_int64(vmdesc_loop, 'array_len', n_elems);
        json_writer_str(vmdesc_loop, 'type', field.type);
      }
      const old_offset = f.transferred();
      field.put(f, o, i);
      if (vmdesc_loop) {
        json_writer_int64(vmdesc_loop, 'size', f.transferred() - old_offset);
        json_writer_end_object(vmdesc_loop);
      }
      /* Compressed arrays only care about the first element */
      vmdesc_loop = null;
    }
  }
  if (vmdesc) json_writer_end_array(vmdesc);
  return vmstate_subsection_save(f, vmsd, o, vmdesc);
}

/** vmstate_subsection_save(): byte 0x05, counted name, be32 version, the state. */
function vmstate_subsection_save<O>(f: QEMUFile, vmsd: VMStateDescription<O>, o: O, vmdesc: JSONWriter | null): number {
  let subsection_found = false;
  for (const sub of vmsd.subsections ?? []) {
    if (!sub.needed || !sub.needed(o)) continue;
    if (vmdesc) {
      /* Only create subsection array when we have any */
      if (!subsection_found) json_writer_start_array(vmdesc, 'subsections');
      json_writer_start_object(vmdesc, null);
    }
    subsection_found = true;
    qemu_put_byte(f, QEMU_VM_SUBSECTION);
    qemu_put_byte(f, sub.name.length);
    qemu_put_buffer(f, Buffer.from(sub.name, 'latin1'));
    qemu_put_be32(f, sub.version_id);
    const ret = vmstate_save_state(f, sub, o, vmdesc);
    if (ret) return ret;
    if (vmdesc) json_writer_end_object(vmdesc);
  }
  if (vmdesc && subsection_found) json_writer_end_array(vmdesc);
  return 0;
}

/** vmstate_load_state(): version checks, fields, subsections, post_load. */
export async function vmstate_load_state<O>(
  f: QEMUFile,
  vmsd: VMStateDescription<O>,
  o: O,
  version_id: number,
  error_report: (msg: string) => void,
): Promise<number> {
  if (version_id > vmsd.version_id) {
    error_report(`${vmsd.name}: incoming version_id ${version_id} is too new for local version_id ${vmsd.version_id}`);
    return -EINVAL;
  }
  if (version_id < vmsd.minimum_version_id) {
    error_report(
      `${vmsd.name}: incoming version_id ${version_id} is too old for local minimum version_id  ${vmsd.minimum_version_id}`,
    );
    return -EINVAL;
  }
  if (vmsd.pre_load) {
    const ret = vmsd.pre_load(o);
    if (ret) return ret;
  }
  for (const field of vmsd.fields) {
    if ((field.version_id ?? 0) > version_id) continue;
    const n_elems = vmstate_n_elems(field, o);
    for (let i = 0; i < n_elems; i++) {
      let ret = await field.get(f, o, i);
      if (ret >= 0) ret = qemu_file_get_error(f);
      if (ret < 0) {
        qemu_file_set_error(f, ret);
        error_report(`Failed to load ${vmsd.name}:${field.name}`);
        return ret;
      }
    }
  }
  const ret = await vmstate_subsection_load(f, vmsd, o, error_report);
  if (ret !== 0) {
    qemu_file_set_error(f, ret);
    return ret;
  }
  return vmsd.post_load ? vmsd.post_load(o, version_id) : 0;
}

/** vmstate_subsection_load(): while the next byte is 0x05 and names one of ours. */
async function vmstate_subsection_load<O>(
  f: QEMUFile,
  vmsd: VMStateDescription<O>,
  o: O,
  error_report: (msg: string) => void,
): Promise<number> {
  for (;;) {
    await need(f, 1);
    if (f.peek_byte(0) !== QEMU_VM_SUBSECTION) return 0;
    await need(f, 2);
    const len = f.peek_byte(1);
    if (len < vmsd.name.length + 1) return 0; /* subsection name has to be "section_name/a" */
    await need(f, 2 + len);
    if (f.available() < 2 + len) return 0; /* (peek fail) */
    const idstr = f.buf.toString('latin1', f.buf_index + 2, f.buf_index + 2 + len);
    if (!idstr.startsWith(vmsd.name)) return 0; /* it doesn't have a valid subsection name */
    const sub = (vmsd.subsections ?? []).find((s) => s.name === idstr);
    if (!sub) return -ENOENT;
    f.skip(2 + len);
    await need(f, 4);
    const version_id = qemu_get_be32(f);
    const ret = await vmstate_load_state(f, sub, o, version_id, error_report);
    if (ret) return ret;
  }
}
