/**
 * errno values (Linux) and glibc's strerror() texts, for messages QEMU builds with
 * strerror(): "Unable to write to socket: Broken pipe", "Could not open '%s': ...".
 */

export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ETXTBSY = 26;
export const EFBIG = 27;
export const ENOSPC = 28;
export const ESPIPE = 29;
export const EROFS = 30;
export const EPIPE = 32;
export const ERANGE = 34;
export const ENAMETOOLONG = 36;
export const ENOSYS = 38;
export const ELOOP = 40;
export const ENOTSUP = 95;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ECONNRESET = 104;
export const ETIMEDOUT = 110;
export const ECONNREFUSED = 111;
export const EHOSTUNREACH = 113;
export const EDQUOT = 122;

const TEXT: Record<number, string> = {
  [EPERM]: 'Operation not permitted',
  [ENOENT]: 'No such file or directory',
  [EINTR]: 'Interrupted system call',
  [EIO]: 'Input/output error',
  [ENXIO]: 'No such device or address',
  [EBADF]: 'Bad file descriptor',
  [EAGAIN]: 'Resource temporarily unavailable',
  [ENOMEM]: 'Cannot allocate memory',
  [EACCES]: 'Permission denied',
  [EBUSY]: 'Device or resource busy',
  [EEXIST]: 'File exists',
  [ENODEV]: 'No such device',
  [ENOTDIR]: 'Not a directory',
  [EISDIR]: 'Is a directory',
  [EINVAL]: 'Invalid argument',
  [ENFILE]: 'Too many open files in system',
  [EMFILE]: 'Too many open files',
  [ETXTBSY]: 'Text file busy',
  [EFBIG]: 'File too large',
  [ENOSPC]: 'No space left on device',
  [ESPIPE]: 'Illegal seek',
  [EROFS]: 'Read-only file system',
  [EPIPE]: 'Broken pipe',
  [ERANGE]: 'Numerical result out of range',
  [ENAMETOOLONG]: 'File name too long',
  [ENOSYS]: 'Function not implemented',
  [ELOOP]: 'Too many levels of symbolic links',
  [ENOTSUP]: 'Operation not supported',
  [EADDRINUSE]: 'Address already in use',
  [EADDRNOTAVAIL]: 'Cannot assign requested address',
  [ECONNRESET]: 'Connection reset by peer',
  [ETIMEDOUT]: 'Connection timed out',
  [ECONNREFUSED]: 'Connection refused',
  [EHOSTUNREACH]: 'No route to host',
  [EDQUOT]: 'Disk quota exceeded',
};

const BY_CODE: Record<string, number> = {
  EPERM,
  ENOENT,
  EINTR,
  EIO,
  ENXIO,
  EBADF,
  EAGAIN,
  ENOMEM,
  EACCES,
  EBUSY,
  EEXIST,
  ENODEV,
  ENOTDIR,
  EISDIR,
  EINVAL,
  ENFILE,
  EMFILE,
  ETXTBSY,
  EFBIG,
  ENOSPC,
  ESPIPE,
  EROFS,
  EPIPE,
  ERANGE,
  ENAMETOOLONG,
  ENOSYS,
  ELOOP,
  ENOTSUP,
  EADDRINUSE,
  EADDRNOTAVAIL,
  ECONNRESET,
  ETIMEDOUT,
  ECONNREFUSED,
  EHOSTUNREACH,
  EDQUOT,
};

/** strerror(errnum): glibc's wording. */
export function strerror(errnum: number): string {
  return TEXT[errnum] ?? `Unknown error ${errnum}`;
}

/** errno of a Node system error (its `code`), or undefined. */
export function errno_of(e: unknown): number | undefined {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === undefined ? undefined : BY_CODE[code];
}

/** strerror() of a Node system error; its own message when the code is not known. */
export function strerror_of(e: unknown): string {
  const n = errno_of(e);
  if (n !== undefined) return strerror(n);
  return (e as Error | null)?.message ?? String(e);
}
