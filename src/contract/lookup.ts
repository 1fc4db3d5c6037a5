// Finding a command's generated schema (schema/*.json, shipped with the package). No zod here:
// `ceso schema` reads files instead of generating them at run time.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CesoError } from '../core/errors.js';

export interface SchemaIndexEntry {
  /** The command as typed: "vm list". */
  command: string;
  /** The file's name without .json: "vm-list". */
  id: string;
  summary: string;
}

export interface SchemaIndex {
  commands: SchemaIndexEntry[];
  error: string;
}

/** "vm list", "vm:list", "vm-list" and " VM  List " all name vm-list. */
export function schemaId(command: string): string {
  return command.trim().toLowerCase().split(/[\s:]+/).join('-');
}

export const SCHEMA_DIR = 'schema';

async function readJson<T>(root: string, file: string): Promise<T> {
  const path = join(root, SCHEMA_DIR, file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new CesoError('INTERNAL', `cannot read ${path}: ${(error as Error).message}`, {
      hint: 'The schema files are written by npm run build and shipped in the package; rebuild or reinstall ceso',
      cause: error,
    });
  }
  return JSON.parse(text) as T;
}

export function readSchemaIndex(root: string): Promise<SchemaIndex> {
  return readJson<SchemaIndex>(root, 'index.json');
}

export function readSchema(root: string, file: string): Promise<Record<string, unknown>> {
  return readJson<Record<string, unknown>>(root, file);
}
