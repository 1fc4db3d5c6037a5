import pino, { type Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Keys whose values never reach a log line, wherever they sit in the logged object. */
const REDACT = [
  'password',
  'cookie',
  'Cookie',
  'secret',
  'token',
  'privateKey',
  'passphrase',
  '*.password',
  '*.cookie',
  '*.secret',
  '*.token',
  '*.privateKey',
  '*.passphrase',
  'headers.Cookie',
  'headers["set-cookie"]',
];

let instance: Logger | undefined;
let level: LogLevel = 'warn';

export function configureLogger(requested: LogLevel): void {
  level = requested;
  if (instance !== undefined) instance.level = requested;
}

/** Logs go to stderr (fd 2) so stdout carries only the command's result. */
export function logger(): Logger {
  instance ??= pino(
    { level, base: null, redact: { paths: REDACT, censor: '[redacted]' } },
    pino.destination({ fd: 2, sync: true }),
  );
  return instance;
}
