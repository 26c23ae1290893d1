/**
 * QMP errors as QEMU reports them: an ErrorClass and a human-readable desc
 * (qapi/error.json; nearly everything is GenericError).
 */
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
