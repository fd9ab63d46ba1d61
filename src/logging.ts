/**
 * The logger factory of both roots (server.ts, gateway-server.ts). It sits
 * beside them rather than in core/ (which does no I/O: a logger writes to
 * stdout) or api/ (the delivery loop and the scheduler log too).
 */
import { pino, type Logger } from 'pino';

export function createLogger(level: string): Logger {
  // Redaction is a second line of defence: no code path logs these on purpose.
  return pino({
    level,
    base: { service: 'courier' },
    redact: ['req.headers.authorization', 'headers.authorization', 'token', 'signingKey', '*.token'],
  });
}
