// Turns the contract into JSON Schema documents (draft 2020-12). Run at build time only
// (scripts/build-schemas.mjs) and by tests: zod's JSON Schema generator never loads in the CLI,
// `ceso schema` reads the files this writes.
import * as z from 'zod/mini';
import { CONTRACT, publishedSchema, type ContractEntry } from './registry.js';
import { errorSchema } from './schemas.js';
import { schemaId, type SchemaIndex } from './lookup.js';

export type JsonSchema = Record<string, unknown>;

function toJsonSchema(schema: z.ZodMiniType, title: string, description: string): JsonSchema {
  const generated = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'output', unrepresentable: 'throw', cycles: 'ref', reused: 'inline' }) as JsonSchema;
  const { $schema, ...rest } = generated;
  // The schema's own description (e.g. the dry-run/outcome union's) stays on its node when it has one.
  return { $schema, title, ...(rest['description'] === undefined ? { description } : {}), ...rest };
}

/** Every file of schema/: `<id>.json` per command, `error.json`, and `index.json` listing them. */
export function generateSchemaFiles(): Record<string, JsonSchema> {
  const files: Record<string, JsonSchema> = {};
  const index: SchemaIndex = { commands: [], error: 'error.json' };
  for (const [command, entry] of Object.entries(CONTRACT) as Array<[string, ContractEntry]>) {
    const id = schemaId(command);
    files[`${id}.json`] = toJsonSchema(publishedSchema(entry), `ceso ${command} --json`, `${entry.summary}. On failure the output is error.json instead.`);
    index.commands.push({ command, id, summary: entry.summary });
  }
  files['error.json'] = toJsonSchema(errorSchema, 'ceso --json error', 'Every failure of every command with --json');
  files['index.json'] = { $comment: 'Generated from src/contract by npm run build; do not edit.', ...index };
  return files;
}
