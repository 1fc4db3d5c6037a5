import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { trustHost, type HostTrustResult } from '../../core/trust.js';
import { probeCertificate } from '../../esxi/soap/probe.js';
import { probeSshHostKey } from '../../ssh/host-key-probe.js';

export type { HostTrustResult } from '../../core/trust.js';

export default class HostTrust extends BaseCommand<typeof HostTrust> {
  static override summary = 'Show a host’s certificate and SSH host key, and pin them into the config';
  static override description =
    'Connects to the host’s API endpoint with a bare TLS handshake and to its SSH endpoint with a bare key exchange — ' +
    'nothing is verified and no credential is sent — and shows the certificate’s SHA-256 and SHA-1 thumbprints, subject, ' +
    'issuer and validity, and the SSH host key’s SHA256 fingerprint. Compare them with the host’s own, then pass --yes ' +
    'to pin them into the configuration file (esxi.thumbprint and ssh.hostKey of the host’s section), keeping its ' +
    'comments and layout and leaving it mode 0600. With the host given only by CESO_HOST and no file, a new file is ' +
    'written. A pin that differs from what the host shows now (a changed certificate or key: exactly what a pin ' +
    'protects against) is never replaced without --replace. An unreachable SSH endpoint does not stop the certificate ' +
    'from being pinned.';
  static override needsPassword = false;

  static override examples = [
    '<%= config.bin %> host trust',
    '<%= config.bin %> host trust --host lab1 --yes',
    'CESO_HOST=192.168.1.10 CESO_PASSWORD=… <%= config.bin %> host trust --yes',
    '<%= config.bin %> host trust --host lab1 --yes --replace',
    '<%= config.bin %> host trust --json',
  ];

  static override flags = {
    yes: Flags.boolean({ description: 'Pin what was shown into the configuration file' }),
    replace: Flags.boolean({
      description: 'With --yes: replace a pin that differs from what the host shows now (after a certificate renewal or reinstall)',
      dependsOn: ['yes'],
    }),
  };

  async run(): Promise<HostTrustResult> {
    return trustHost(
      this.target(),
      { yes: this.flags.yes, replace: this.flags.replace, host: this.flags.host, config: this.flags.config, bin: this.config.bin },
      { certificate: probeCertificate, sshHostKey: probeSshHostKey },
      (text) => this.print(text),
    );
  }
}
