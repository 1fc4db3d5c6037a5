// A real PostgreSQL server for the shared-state tests: Debian's `postgresql` package (installed
// by scripts/setup.sh), a fresh cluster made by initdb in a temporary directory, listening on a
// free loopback port, with password (SCRAM) authentication so the tests can check that a
// password in the URL never reaches ceso's output. PostgreSQL refuses to run as root, so under
// root (as in CI) initdb and pg_ctl run as the package's `postgres` user through runuser.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface PostgresServer {
  port: number;
  user: string;
  password: string;
  /** postgres://user:password@127.0.0.1:port/DATABASE */
  url(database?: string): string;
  /** A new empty database; its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs SQL against a database as the superuser. */
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], database?: string): Promise<T[]>;
  /** The server's log so far (for a failing test's message). */
  log(): string;
  stop(): Promise<void>;
}

const USER = 'ceso';

/** /usr/lib/postgresql/<highest version>/bin */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a)) : [];
  const dir = versions.map((version) => join(root, version, 'bin')).find((candidate) => existsSync(join(candidate, 'initdb')));
  if (dir === undefined) throw new Error('PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb): run scripts/setup.sh');
  return dir;
}

/** A loopback port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const asRoot = userInfo().uid === 0;
  const dir = mkdtempSync(join(tmpdir(), 'ceso-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const password = `pw-${Math.random().toString(36).slice(2, 12)}`;
  const pwFile = join(dir, 'pwfile');
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (asRoot) {
    const { uid, gid } = postgresAccount();
    chownSync(dir, uid, gid);
    chownSync(pwFile, uid, gid);
  }
  chmodSync(dir, 0o700);

  const run = (program: string, args: string[]): void => {
    const command = asRoot ? ['runuser', '-u', 'postgres', '--', join(bin, program), ...args] : [join(bin, program), ...args];
    const result = spawnSync(command[0] as string, command.slice(1), { encoding: 'utf8', timeout: 60_000, cwd: dir });
    if (result.status !== 0) {
      throw new Error(`${program} ${args.join(' ')} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}\n${existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''}`);
    }
  };

  run('initdb', ['-D', data, '-U', USER, `--pwfile=${pwFile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--no-sync']);
  let port = 0;
  let started = false;
  for (let attempt = 0; attempt < 3 && !started; attempt++) {
    port = await freePort();
    const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100`;
    try {
      run('pg_ctl', ['-D', data, '-o', options, '-l', logFile, '-w', '-t', '60', 'start']);
      started = true;
    } catch (error) {
      // Someone took the port between freePort and the server's bind: another one.
      if (attempt === 2 || !/could not bind|Address already in use/.test(String(error))) throw error;
    }
  }

  const url = (database = 'postgres'): string => `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  const query = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<T[]> => {
    const client = new pg.Client({ connectionString: url(database), connectionTimeoutMillis: 10_000 });
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  };
  let stopped = false;
  return {
    port,
    user: USER,
    password,
    url,
    async createDatabase(name: string) {
      await query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      return url(name);
    },
    query,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function postgresAccount(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('postgres:'));
  const fields = line?.split(':');
  if (fields === undefined || fields.length < 4) throw new Error('no "postgres" user: install Debian\'s postgresql package (scripts/setup.sh)');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}
