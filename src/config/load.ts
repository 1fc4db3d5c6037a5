import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load as parseYaml } from 'js-yaml';
import type { core } from 'zod/mini';
import { CesoError } from '../core/errors.js';
import { cesoHome } from './home.js';
import { warnIfConfigShared } from './permissions.js';
import { configFileSchema, type ConfigFile } from './schema.js';

export interface LoadedConfig {
  path: string;
  /** false when no file exists at the default location (an explicit path must exist). */
  exists: boolean;
  file: ConfigFile;
  /** `${VAR}` references whose variable is unset, by key path; reported only for the host in use. */
  unsetVariables: Array<{ path: string; variable: string }>;
}

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(cesoHome(env), 'config.yaml');
}

export function loadConfig(explicitPath: string | undefined, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const chosen = explicitPath ?? env.CESO_CONFIG;
  const path = chosen ?? defaultConfigPath(env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && chosen === undefined) return { path, exists: false, file: {}, unsetVariables: [] };
    throw new CesoError('CONFIG_INVALID', `${path}: cannot read the configuration file (${code ?? String(error)})`, {
      hint:
        code === 'ENOENT'
          ? 'Check the path given with --config or CESO_CONFIG, or copy config.example.yaml there'
          : 'Check the file permissions',
    });
  }

  warnIfConfigShared(path);

  let raw: unknown;
  try {
    raw = parseYaml(text, { filename: path }) ?? {};
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new CesoError('CONFIG_INVALID', `${path}: not valid YAML: ${reason}`, {
      hint: 'Fix the YAML syntax; config.example.yaml shows every key',
    });
  }

  const unsetVariables: LoadedConfig['unsetVariables'] = [];
  const interpolated = interpolate(raw, [], env, unsetVariables);
  const parsed = configFileSchema.safeParse(interpolated, { reportInput: true });
  if (!parsed.success) throw configError(path, parsed.error);
  return { path, exists: true, file: parsed.data, unsetVariables };
}

const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

function interpolate(
  value: unknown,
  path: Array<string | number>,
  env: NodeJS.ProcessEnv,
  unset: LoadedConfig['unsetVariables'],
): unknown {
  if (typeof value === 'string') {
    return value.replace(VARIABLE, (_match, name: string) => {
      const replacement = env[name];
      if (replacement === undefined) {
        unset.push({ path: path.join('.'), variable: name });
        return '';
      }
      return replacement;
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => interpolate(item, [...path, index], env, unset));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, interpolate(item, [...path, key], env, unset)]),
    );
  }
  return value;
}

function configError(path: string, error: core.$ZodError): CesoError {
  const problems = error.issues.map((issue) => {
    const keyPath = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    return `${path}: ${keyPath}: ${describeIssue(issue)}`;
  });
  return new CesoError('CONFIG_INVALID', problems.join('\n'), {
    hint: 'Fix the keys named above; config.example.yaml documents every key',
    details: { file: path, problems },
  });
}

/** zod/mini carries no message catalogue: each kind of issue is phrased here. */
function describeIssue(issue: core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_type': {
      const received = (issue as { input?: unknown }).input;
      return received === undefined ? `missing, expected ${issue.expected}` : `expected ${issue.expected}, got ${typeName(received)}`;
    }
    case 'too_small':
      return issue.origin === 'string' ? 'expected a non-empty string' : `expected ${issue.inclusive ? 'at least' : 'more than'} ${String(issue.minimum)}`;
    case 'too_big':
      return `expected ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'invalid_format':
      return issue.message !== 'Invalid input' ? issue.message : `expected a ${issue.format}`;
    default:
      return issue.code === 'custom' ? issue.message : `invalid (${issue.code})`;
  }
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  // Never echo the value itself: it may be a password.
  return typeof value === 'object' ? 'a mapping' : `a ${typeof value}`;
}
