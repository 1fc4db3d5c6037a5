import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CachedSession {
  cookie: string;
  /** The host's static ServiceContent references, so a warm call needs no RetrieveServiceContent. */
  serviceContent: Record<string, string>;
  apiType: string;
  apiVersion: string;
  savedAt: string;
}

/**
 * Session cookies kept across invocations, as govc does. The file name hashes host, user and
 * the password, so a wrong password never finds (and rides on) another credential's session.
 */
export class SessionCache {
  constructor(private readonly directory: string) {}

  static keyFor(host: string, port: number, user: string, password: string): string {
    const credential = createHash('sha256').update(password).digest('hex');
    return createHash('sha256').update(`${host}\0${port}\0${user}\0${credential}`).digest('hex').slice(0, 40);
  }

  private path(key: string): string {
    return join(this.directory, `${key}.json`);
  }

  load(key: string): CachedSession | undefined {
    try {
      const parsed = JSON.parse(readFileSync(this.path(key), 'utf8')) as Partial<CachedSession>;
      if (typeof parsed.cookie !== 'string' || typeof parsed.serviceContent !== 'object' || parsed.serviceContent === null) return undefined;
      return parsed as CachedSession;
    } catch {
      return undefined;
    }
  }

  save(key: string, session: CachedSession): void {
    try {
      this.ensureDirectory();
      const target = this.path(key);
      const temporary = `${target}.${process.pid}.tmp`;
      writeFileSync(temporary, JSON.stringify(session), { mode: 0o600 });
      renameSync(temporary, target);
    } catch {
      // A cache that cannot be written costs a login next time, nothing more.
    }
  }

  forget(key: string): void {
    rmSync(this.path(key), { force: true });
  }

  private ensureDirectory(): void {
    mkdirSync(this.directory, { recursive: true, mode: 0o700 });
    if ((statSync(this.directory).mode & 0o077) !== 0) chmodSync(this.directory, 0o700);
  }
}
