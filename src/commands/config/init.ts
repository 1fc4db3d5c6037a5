import { readFileSync } from 'node:fs';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { defaultConfigPath, loadConfig } from '../../config/load.js';
import { readExampleConfig, starterConfig, writeStarterConfig } from '../../config/starter.js';
import { CesoError } from '../../core/errors.js';

export interface ConfigInitResult {
  configPath: string;
  /** true when --force replaced an existing file. */
  overwritten: boolean;
}

export default class ConfigInit extends BaseCommand<typeof ConfigInit> {
  static override summary = 'Write a starter configuration file';
  static override description =
    'Writes config.example.yaml — every key, commented — as the configuration file: --config, else $CESO_CONFIG, ' +
    'else ~/.ceso/config.yaml ($CESO_HOME/config.yaml). The file is created mode 0600 (its directory 0700 when ' +
    'created). An existing file is never overwritten without --force. Needs no host.';
  static override examples = [
    '<%= config.bin %> config init',
    '<%= config.bin %> config init --config ./lab.yaml',
    '<%= config.bin %> config init --force --json',
  ];

  static override flags = {
    force: Flags.boolean({ description: 'Replace an existing configuration file with the starter' }),
  };

  async run(): Promise<ConfigInitResult> {
    const path = this.flags.config ?? process.env.CESO_CONFIG ?? defaultConfigPath();
    if (this.flags.force && restricted(path)) {
      throw new CesoError('POLICY_DENIED', 'restricted mode refuses --force (rule force, value "--force")', {
        hint: 'Ask an operator to replace the configuration',
        details: { rule: 'force', value: '--force' },
      });
    }
    const { overwritten } = writeStarterConfig(path, starterConfig(readExampleConfig(this.config.root)), this.flags.force);
    this.print(
      `${overwritten ? 'Replaced' : 'Wrote'} ${path} (mode 0600).\n` +
        'Next: fill in esxi.host (or hosts:), export ESXI_PASSWORD, then\n' +
        `  ${this.config.bin} config validate${this.flags.config === undefined ? '' : ` --config ${this.flags.config}`}\n` +
        `  ${this.config.bin} host trust --yes${this.flags.config === undefined ? '' : ` --config ${this.flags.config}`}`,
    );
    return { configPath: path, overwritten };
  }
}

/** Restricted by the environment, or by the file about to be replaced. */
function restricted(path: string): boolean {
  if (process.env.CESO_MODE === 'restricted') return true;
  try {
    return loadConfig(path).file.security?.mode === 'restricted';
  } catch {
    // An unreadable or invalid file: restricted if it says so anywhere.
    try {
      return /\bmode:\s*["']?restricted/.test(readFileSync(path, 'utf8'));
    } catch {
      return false;
    }
  }
}
