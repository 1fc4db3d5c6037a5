import type { Logger } from 'pino';

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

type LogMethod = (objectOrMessage: object | string, message?: string) => void;
export interface Log {
  error: LogMethod;
  warn: LogMethod;
  info: LogMethod;
  debug: LogMethod;
}

let instance: Promise<Logger> | undefined;
let level: LogLevel = 'warn';

export function configureLogger(requested: LogLevel): void {
  level = requested;
  void instance?.then((logger) => {
    logger.level = requested;
  });
}

function enabled(wanted: LogLevel): boolean {
  return LOG_LEVELS.indexOf(wanted) <= LOG_LEVELS.indexOf(level);
}

/**
 * pino, loaded and made on the first message that passes the level: a quiet run (the default
 * level is warn) never loads it. Messages chain on one promise, so they keep their order.
 */
function pinoLogger(): Promise<Logger> {
  instance ??= import('pino').then(({ default: pino }) =>
    pino({ level, base: null, redact: { paths: REDACT, censor: '[redacted]' } }, pino.destination({ fd: 2, sync: true })),
  );
  return instance;
}

function method(wanted: 'error' | 'warn' | 'info' | 'debug'): LogMethod {
  return (objectOrMessage, message) => {
    if (!enabled(wanted)) return;
    void pinoLogger().then((logger) => {
      if (typeof objectOrMessage === 'string') logger[wanted](objectOrMessage);
      else logger[wanted](objectOrMessage, message);
    });
  };
}

const facade: Log = { error: method('error'), warn: method('warn'), info: method('info'), debug: method('debug') };

/** Logs go to stderr (fd 2) so stdout carries only the command's result. */
export function logger(): Log {
  return facade;
}
