/** The guestinfo.metadata document: instance-id, local-hostname and the network config. */
import { invalidInput } from '../core/errors.js';
import { buildNetworkConfig } from './network.js';
import type { GuestIdentity, MetadataDocument, MetadataOptions, NetworkRequest } from './types.js';
import { normalizeDomain, normalizeFqdn, normalizeHostname } from './validate.js';
import { dumpYaml } from './yaml.js';

export interface NormalizedIdentity {
  instanceId: string;
  hostname: string;
  domain?: string;
  /** hostname.domain, or the hostname alone without a domain. */
  fqdn: string;
}

export function normalizeIdentity(identity: GuestIdentity): NormalizedIdentity {
  const instanceId = identity.instanceId.trim();
  if (instanceId === '' || /\s/.test(instanceId)) {
    throw invalidInput(`Invalid instance-id '${identity.instanceId}': it must be non-empty and contain no whitespace`);
  }
  const hostname = normalizeHostname(identity.hostname);
  if (identity.domain === undefined || identity.domain.trim() === '') return { instanceId, hostname, fqdn: hostname };
  const domain = normalizeDomain(identity.domain);
  return { instanceId, hostname, domain, fqdn: normalizeFqdn(hostname, domain) };
}

/**
 * `local-hostname` is the fqdn when a domain is given (cloud-init splits it into hostname and
 * domain), so the name is right even when user data sets no hostname (e.g. raw user data).
 */
export function buildMetadata(identity: GuestIdentity, network: NetworkRequest, options: MetadataOptions = {}): MetadataDocument {
  const id = normalizeIdentity(identity);
  const document: MetadataDocument = {
    'instance-id': id.instanceId,
    'local-hostname': id.fqdn,
    network: buildNetworkConfig(network, id.domain),
  };
  if (options.redact === true) document.redact = ['userdata', 'vendordata'];
  return document;
}

/** Metadata as YAML (cloud-init accepts JSON or YAML; YAML reads better in plans). MACs are double-quoted. */
export function renderMetadata(document: MetadataDocument): string {
  return dumpYaml(document);
}
