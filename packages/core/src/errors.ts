/**
 * The one error type of Tandem. Every failure that crosses a function, process or wire
 * boundary is a TandemError with a typed code; `toTandemError` turns anything thrown into one.
 */
import { errorCodeFromWire, errorCodeToWire, type ErrorCodeName, type tandem } from '@tandem/protocol';

export const ErrorCode = {
  NOT_FOUND: 'NOT_FOUND',
  REFUSED: 'REFUSED',
  TIMEOUT: 'TIMEOUT',
  BAD_REQUEST: 'BAD_REQUEST',
  CONFLICT: 'CONFLICT',
  UNAVAILABLE: 'UNAVAILABLE',
  INTERNAL: 'INTERNAL',
  PROTOCOL_MISMATCH: 'PROTOCOL_MISMATCH',
} as const satisfies Record<ErrorCodeName, ErrorCodeName>;
export type ErrorCode = ErrorCodeName;

export class TandemError extends Error {
  override name = 'TandemError';
  readonly code: ErrorCode;
  readonly details: Record<string, string>;

  constructor(code: ErrorCode, message: string, details: Record<string, string> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  /** One readable line for an operator, with the details after the message. */
  toLine(): string {
    const extra = Object.entries(this.details)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    return extra ? `${this.message} (${extra})` : this.message;
  }
}

/** Turns any thrown value into a TandemError, keeping the original as the cause. */
export function toTandemError(err: unknown, fallback: ErrorCode = 'INTERNAL'): TandemError {
  if (err instanceof TandemError) return err;
  if (err instanceof Error) return new TandemError(fallback, err.message, {}, { cause: err });
  return new TandemError(fallback, String(err), {}, { cause: err });
}

export function errorToWire(err: TandemError): tandem.v1.Error.$Properties {
  return { code: errorCodeToWire(err.code), message: err.message, details: err.details };
}

export function errorFromWire(wire: tandem.v1.Error): TandemError {
  return new TandemError(errorCodeFromWire(wire.code), wire.message, { ...wire.details });
}
