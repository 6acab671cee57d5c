// Every error the control plane reports, as a class with a stable code and an HTTP status.
// The API sends { error: { code, message } }; the CLI prints "vsw: <message>" and exits 1
// (2 for usage errors). Codes are part of the API: do not rename them.

export class VswError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(message: string, code = 'E_INTERNAL', status = 500) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Malformed or contradictory input (bad CIDR, IP outside the subnet, unknown mode...). */
export class InvalidArgumentError extends VswError {
  constructor(message: string) { super(message, 'E_INVALID_ARGUMENT', 400); }
}

/** A named object that does not exist. */
export class NotFoundError extends VswError {
  constructor(message: string) { super(message, 'E_NOT_FOUND', 404); }
}

/** The request clashes with existing state (name taken, subnet overlaps, in use...). */
export class ConflictError extends VswError {
  constructor(message: string) { super(message, 'E_CONFLICT', 409); }
}

/** A pool ran out (no free address, no free port id). */
export class ExhaustedError extends VswError {
  constructor(message: string) { super(message, 'E_EXHAUSTED', 409); }
}

/** A system command or syscall failed (ip, nsenter, open of a TAP...). */
export class SystemError extends VswError {
  constructor(message: string) { super(message, 'E_SYSTEM', 500); }
}

/** The daemon could not be reached (no socket, refused, not running). */
export class DaemonUnreachableError extends VswError {
  constructor(message: string) { super(message, 'E_DAEMON_UNREACHABLE', 503); }
}

/** Rebuild a VswError from the API's JSON error body (client side). */
export function errorFromJson(status: number, body: unknown): VswError {
  const e = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
  const message = e?.message ?? `daemon answered HTTP ${status}`;
  return new VswError(message, e?.code ?? 'E_INTERNAL', status);
}
