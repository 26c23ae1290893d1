/**
 * QMP errors as QEMU reports them: an ErrorClass and a human-readable desc
 * (qapi/error.json; nearly everything is GenericError).
 */
import { strerror } from '../util/errno.js';

export type QapiErrorClass =
  | 'GenericError'
  | 'CommandNotFound'
  | 'DeviceNotActive'
  | 'DeviceNotFound'
  | 'KVMMissingCap';

export class QmpError extends Error {
  constructor(
    readonly errorClass: QapiErrorClass,
    readonly desc: string,
  ) {
    super(desc);
    this.name = 'QmpError';
  }
}

/** error_setg(): a GenericError with a formatted message. */
export function error_setg(desc: string): QmpError {
  return new QmpError('GenericError', desc);
}

/** error_setg_errno(): `fmt: strerror(errno)`; no suffix for errno 0 (code ''). */
export function error_setg_errno(code: string, fmt: string): QmpError {
  return error_setg(code ? `${fmt}: ${strerror(code)}` : fmt);
}
