/** Where a new VM goes over SSH: the datastores, port groups and MAC addresses the host has. */
import { CesoError } from '../../core/errors.js';
import { DATASTORES, newNonce, sectionsScript, splitSections } from '../commands.js';
import type { SshContext } from '../context.js';
import { parseDatastores, parseMacLines, parsePortgroups, type DatastoreSummary } from '../parse.js';
import { quote } from '../quote.js';
import { checkOutput } from '../run.js';
import { networkNotFound, pickDatastore } from '../../core/provisioning.js';

export interface SshPlacement {
  datastores: DatastoreSummary[];
  /** null when the host cannot list them (no esxcli): not checked then. */
  networks: string[] | null;
  /** MACs named in every .vmx on the datastores. */
  macsInUse: Set<string>;
}

export async function readPlacement(context: SshContext): Promise<SshPlacement> {
  const nonce = newNonce();
  const root = context.volumesRoot.replace(/\/+$/, '');
  const result = await context.shell.exec(
    sectionsScript(nonce, [
      { label: 'datastores', command: DATASTORES },
      { label: 'portgroups', command: 'esxcli network vswitch standard portgroup list' },
      { label: 'macs', command: `grep -ihE '^[[:space:]]*ethernet[0-9]+\\.(generated)?address[[:space:]]*=' ${quote(root)}/*/*/*.vmx 2>/dev/null; true` },
    ]),
  );
  const sections = splitSections(nonce, result.stdout);
  const datastores = sections.get('datastores');
  if (datastores === undefined) {
    checkOutput(result, 'sh', { what: 'read the datastores' });
    throw new CesoError('HOST_FAULT', 'read the datastores: the host printed nothing');
  }
  checkOutput({ stdout: datastores.output, stderr: '', code: datastores.code }, DATASTORES, { what: 'read the datastores' });
  const portgroups = sections.get('portgroups');
  return {
    datastores: parseDatastores(datastores.output),
    networks: portgroups !== undefined && portgroups.code === 0 ? parsePortgroups(portgroups.output) : null,
    macsInUse: parseMacLines(sections.get('macs')?.output ?? ''),
  };
}

export function findDatastore(placement: SshPlacement, name: string): DatastoreSummary {
  return pickDatastore(placement.datastores, name);
}

export function checkNetwork(placement: SshPlacement, name: string): string {
  if (placement.networks !== null && !placement.networks.includes(name)) {
    throw networkNotFound(name, placement.networks);
  }
  return name;
}
