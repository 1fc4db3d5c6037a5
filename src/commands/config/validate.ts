import { load as parseYaml } from 'js-yaml';
import { readFileSync } from 'node:fs';
import { BaseCommand } from '../../cli/base-command.js';
import { defaultConfigPath, loadConfig, type LoadedConfig } from '../../config/load.js';
import { configPermissionProblem, warnIfConfigShared } from '../../config/permissions.js';
import { resolveTarget } from '../../config/resolve.js';
import { CesoError, isCesoError } from '../../core/errors.js';

export interface ConfigValidateResult {
  configPath: string;
  valid: true;
  /** Every host the file defines: "default" is the top-level esxi section. */
  hosts: Array<{ name: string; address: string }>;
  /** The host used without --host; null when the file defines none. */
  defaultHost: string | null;
  mode: 'standard' | 'restricted';
  /** Non-fatal findings (a file others can read). */
  warnings: string[];
}

export default class ConfigValidate extends BaseCommand<typeof ConfigValidate> {
  static override summary = 'Check the configuration file and report every problem';
  static override description =
    'Loads the configuration file (--config, else $CESO_CONFIG, else ~/.ceso/config.yaml) and checks it against the ' +
    'schema, then resolves the selected host (--host, else defaultHost, else the top-level section) as every command ' +
    'would, including its ${VAR} references. Every problem is listed with its key path; exit 2 when there is any. ' +
    'A valid file gets a summary: the hosts, the default host and the security mode. Contacts no host.';
  static override examples = [
    '<%= config.bin %> config validate',
    '<%= config.bin %> config validate --host lab1',
    '<%= config.bin %> config validate --config ./lab.yaml --json',
  ];

  async run(): Promise<ConfigValidateResult> {
    const path = this.flags.config ?? process.env.CESO_CONFIG ?? defaultConfigPath();
    const problems: string[] = [];
    let loaded: LoadedConfig | undefined;
    try {
      loaded = loadConfig(this.flags.config);
    } catch (error) {
      if (!isCesoError(error)) throw error;
      problems.push(...problemsOf(error));
      // Schema problems stop the loader before the ${VAR}s are checked: add them here.
      if (typeof error.details?.file === 'string') problems.push(...unsetVariables(error.details.file, this.flags.host));
    }
    if (loaded !== undefined && !loaded.exists) {
      throw new CesoError('CONFIG_NOT_FOUND', `no configuration at ${loaded.path}`, {
        hint: `Write a starter with ${this.config.bin} config init, or point --config / CESO_CONFIG at your file`,
      });
    }
    warnIfConfigShared(path);
    if (loaded !== undefined) {
      try {
        resolveTarget(loaded, { host: this.flags.host });
      } catch (error) {
        if (!isCesoError(error)) throw error;
        problems.push(...problemsOf(error));
      }
    }
    if (problems.length > 0 || loaded === undefined) {
      const unique = [...new Set(problems)];
      throw new CesoError('CONFIG_INVALID', unique.join('\n'), {
        hint: 'Fix the keys named above; config.example.yaml documents every key',
        details: { file: path, problems: unique },
      });
    }

    const { file } = loaded;
    const hosts = [
      ...(file.esxi === undefined ? [] : [{ name: 'default', address: file.esxi.host }]),
      ...Object.entries(file.hosts ?? {}).map(([name, entry]) => ({ name, address: entry.esxi.host })),
    ];
    const defaultHost = file.defaultHost ?? (file.esxi === undefined ? null : 'default');
    const mode = process.env.CESO_MODE === 'restricted' ? 'restricted' : (file.security?.mode ?? 'standard');
    const permission = configPermissionProblem(path);
    const warnings = permission === null ? [] : [permission];
    this.print(
      [
        `${path} is valid.`,
        `  Hosts         ${hosts.length === 0 ? '(none: CESO_HOST must name one)' : hosts.map((host) => `${host.name} (${host.address})`).join(', ')}`,
        `  Default host  ${defaultHost ?? '(none)'}`,
        `  Mode          ${mode}`,
      ].join('\n'),
    );
    return { configPath: path, valid: true, hosts, defaultHost, mode, warnings };
  }
}

function problemsOf(error: CesoError): string[] {
  const listed = error.details?.problems;
  if (Array.isArray(listed) && listed.every((item) => typeof item === 'string')) return listed as string[];
  return [error.message];
}

/**
 * When the schema fails, the loader stops before the selected host's `${VAR}`s are checked:
 * they are found here the same way (the variables of the top-level sections and of the selected
 * host only), so one run reports every problem.
 */
function unsetVariables(path: string, hostFlag: string | undefined): string[] {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch {
    return [];
  }
  const defaultHost = raw !== null && typeof raw === 'object' ? (raw as { defaultHost?: unknown }).defaultHost : undefined;
  const name = hostFlag ?? (typeof defaultHost === 'string' ? defaultHost : 'default');
  const found: string[] = [];
  const walk = (value: unknown, keys: Array<string | number>): void => {
    if (typeof value === 'string') {
      for (const match of value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
        const variable = match[1] as string;
        const keyPath = keys.join('.');
        const applies = !keyPath.startsWith('hosts.') || keyPath.startsWith(`hosts.${name}.`);
        if (applies && process.env[variable] === undefined) found.push(`${path}: ${keyPath}: environment variable ${variable} is not set`);
      }
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => walk(item, [...keys, index]));
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) walk(item, [...keys, key]);
    }
  };
  walk(raw, []);
  return found;
}
