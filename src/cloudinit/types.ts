/** Public input and output shapes of the cloud-init builders. */

export interface GuestIdentity {
  /** Unique per VM and per (re)configuration: cloud-init re-runs network and per-instance modules only for a NEW instance-id. */
  instanceId: string;
  /** One DNS label; lowercased. */
  hostname: string;
  /** Optional DNS domain; fqdn = hostname.domain. */
  domain?: string;
}

export interface NetworkRequest {
  /** The NIC's MAC as read back from the created VM; normalised to lowercase. */
  mac: string;
  /** `192.168.1.100/24` or `2001:db8::10/64`; absent = DHCP. */
  ipCidr?: string;
  /** Must lie inside the --ip subnet. Needs ipCidr. */
  gateway?: string;
  /** Nameserver IPs. */
  dns?: string[];
  /** Default: [domain] when a domain is given. */
  searchDomains?: string[];
}

export interface UserDataRequest {
  /** authorized_keys lines for the user. */
  sshKeys: string[];
  /**
   * The text of a --user-data file: a `#cloud-config` YAML mapping is merged over the generated
   * document; any other kind cloud-init accepts (a script, #include, #cloud-boothook, MIME
   * multipart) follows the generated document as further parts of a MIME multipart.
   */
  extraUserData?: string;
  /** Default 'ubuntu' (the Ubuntu images' default user). */
  user?: string;
}

/** User data passed through verbatim (any cloud-init part type), e.g. a clone keeping its source's user data. */
export interface RawUserData {
  raw: string;
}

export interface NetplanEthernet {
  match: { macaddress: string };
  'set-name': string;
  dhcp4: boolean;
  dhcp6?: boolean;
  addresses?: string[];
  routes?: Array<{ to: '0.0.0.0/0' | '::/0'; via: string }>;
  nameservers?: { addresses?: string[]; search?: string[] };
}

export interface NetworkConfigV2 {
  version: 2;
  ethernets: Record<string, NetplanEthernet>;
}

export interface MetadataDocument {
  'instance-id': string;
  'local-hostname': string;
  network: NetworkConfigV2;
  redact?: string[];
}

export interface MetadataOptions {
  /**
   * Ask cloud-init to blank guestinfo.userdata/vendordata inside the guest after reading them
   * (`redact:`). Off by default: the .vmx copy stays either way, and other tools may read them.
   */
  redact?: boolean;
}
