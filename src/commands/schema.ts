import { Args } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { renderTable } from '../cli/table.js';
import { CesoError } from '../core/errors.js';
import type { SchemaResult } from '../contract/registry.js';
import { readSchema, readSchemaIndex, schemaId } from '../contract/lookup.js';

export default class Schema extends BaseCommand<typeof Schema> {
  static override summary = 'Print the JSON Schema of a command’s --json output';
  static override description =
    'Every command’s --json result, and the error envelope every command prints on failure, is published as a ' +
    'JSON Schema (draft 2020-12). Without an argument, lists the commands that have one; with a command ' +
    '("vm list", "vm-list" or "vm:list"), prints its result schema and the shared error schema. Needs no host.';
  static override examples = [
    '<%= config.bin %> schema',
    '<%= config.bin %> schema vm list',
    '<%= config.bin %> schema vm-create --json',
  ];
  static override strict = false;

  static override args = {
    command: Args.string({ description: 'The command, e.g. "vm list" (words may also be joined by - or :)', required: false }),
  };

  async run(): Promise<SchemaResult> {
    const { argv } = await this.parse(Schema);
    const words = (argv as string[]).filter((word) => word.trim() !== '');
    const index = await readSchemaIndex(this.config.root);
    if (words.length === 0) {
      this.print(renderTable(index.commands, [
        { header: 'COMMAND', value: (entry) => entry.command },
        { header: 'OUTPUT', value: (entry) => entry.summary },
      ]));
      this.print(`\nEvery failure prints the error schema (ceso schema <command> shows both).`);
      return { commands: index.commands };
    }
    const wanted = schemaId(words.join(' '));
    const entry = index.commands.find((candidate) => candidate.id === wanted);
    if (entry === undefined) {
      const known = index.commands.map((candidate) => candidate.command);
      throw new CesoError('INVALID_INPUT', `no schema for "${words.join(' ')}"`, {
        hint: `Commands with a schema: ${known.join(', ')}`,
        details: { commands: known },
      });
    }
    const [result, error] = await Promise.all([readSchema(this.config.root, `${entry.id}.json`), readSchema(this.config.root, index.error)]);
    const output = { ...entry, result, error };
    this.print(JSON.stringify(output, null, 2));
    return output;
  }
}
