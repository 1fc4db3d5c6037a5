import type { RemoteShell } from './connection.js';

/** What every SSH operation works with: the one connection and where the datastores are mounted. */
export interface SshContext {
  shell: RemoteShell;
  /** `/vmfs/volumes` on a real host. */
  volumesRoot: string;
}
