// `--help` of every command the built CLI ships (read from oclif.manifest.json, which
// `npm run build` writes), and the top-level help: usage, a description, examples, the global
// flags. Needs no host.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../support/cli.js';

interface ManifestCommand {
  id: string;
  summary?: string;
  description?: string;
  examples?: unknown[];
  hidden?: boolean;
}

const manifest = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8')) as { commands: Record<string, ManifestCommand> };
const commands = Object.values(manifest.commands).filter((command) => command.hidden !== true);
const pjson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { oclif: { topics: Record<string, { description: string }> } };
const GLOBAL_FLAGS = ['--json', '--config=<value>', '--host=<value>', '--via=<option>', '--log-level=<option>'];

/** oclif wraps help at the terminal width: compare words, not line breaks. */
const flat = (text: string): string => text.replace(/\s+/g, ' ');

describe('--help of every command', () => {
  it('finds the commands in the manifest', () => {
    expect(commands.length).toBeGreaterThanOrEqual(9);
    expect(commands.map((command) => command.id)).toEqual(expect.arrayContaining(['vm:list', 'host:trust', 'config:init', 'config:validate']));
  });

  it.each(commands.map((command) => [command.id.replaceAll(':', ' '), command] as const))('ceso %s --help', async (words, command) => {
    const result = await runCli([...words.split(' '), '--help'], { env: { CESO_HOME: '/nonexistent-ceso-home' } });
    expect(result.code, result.stderr).toBe(0);
    const help = result.stdout;
    expect(help).toContain('USAGE');
    expect(help).toContain(`$ ceso ${words}`);

    const summary = command.summary ?? command.description?.split('\n')[0] ?? '';
    expect(summary.trim(), `${command.id} has no summary or description`).not.toBe('');
    expect(flat(help)).toContain(flat(summary));

    expect(command.examples?.length ?? 0, `${command.id} has no static examples`).toBeGreaterThan(0);
    expect(help).toContain('EXAMPLES');
    expect(help).toContain('GLOBAL FLAGS');
    for (const flag of GLOBAL_FLAGS) expect(help, flag).toContain(flag);
    expect(help).not.toContain('<%=');
  });
});

describe('ceso --help', () => {
  it('lists every topic and the top-level commands', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    const help = result.stdout;
    expect(help).toContain('USAGE');
    const topics = help.slice(help.indexOf('TOPICS'), help.indexOf('COMMANDS'));
    // nested topics (vm:snapshot) are listed under their parent, not here
    for (const [topic, { description }] of Object.entries(pjson.oclif.topics).filter(([name]) => !name.includes(':'))) {
      expect(topics).toMatch(new RegExp(`^ {2}${topic} +${description.slice(0, 20)}`, 'm'));
    }
    const listed = help.slice(help.indexOf('COMMANDS'));
    for (const command of commands.filter((entry) => !entry.id.includes(':'))) expect(listed).toMatch(new RegExp(`^ {2}${command.id} `, 'm'));
    expect(listed).toMatch(/^ {2}autocomplete /m);
  });

  it('lists a topic’s commands and nested topics under the topic', async () => {
    const topics = Object.keys(pjson.oclif.topics);
    for (const topic of topics) {
      const result = await runCli([...topic.split(':'), '--help']);
      expect(result.code).toBe(0);
      // a command of a nested topic (vm:snapshot:create) shows under that topic; the parent lists the topic
      const depth = topic.split(':').length + 1;
      for (const command of commands.filter((entry) => entry.id.startsWith(`${topic}:`) && entry.id.split(':').length === depth)) {
        expect(result.stdout).toContain(command.id.replaceAll(':', ' '));
      }
      for (const nested of topics.filter((other) => other.startsWith(`${topic}:`) && other.split(':').length === depth)) {
        expect(result.stdout).toMatch(new RegExp(`^ {2}${nested.replaceAll(':', ' ')} +${pjson.oclif.topics[nested]!.description.slice(0, 20)}`, 'm'));
      }
    }
  });

  it('ships shell completion (oclif autocomplete plugin)', async () => {
    const home = mkdtempSync(join(tmpdir(), 'ceso-autocomplete-'));
    try {
      const env = { HOME: home, XDG_CACHE_HOME: join(home, '.cache') };
      const help = await runCli(['autocomplete', '--help'], { env });
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('$ ceso autocomplete bash');
      const instructions = await runCli(['autocomplete', 'bash'], { env });
      expect(instructions.code, instructions.stderr).toBe(0);
      expect(instructions.stdout).toContain('ceso autocomplete script bash');
      const script = await runCli(['autocomplete', 'script', 'bash'], { env });
      expect(script.stdout).toContain(`CESO_AC_BASH_SETUP_PATH=${join(home, '.cache/ceso/autocomplete/bash_setup')}`);
      const functions = readFileSync(join(home, '.cache/ceso/autocomplete/functions/bash/ceso.bash'), 'utf8');
      for (const command of commands) expect(functions).toContain(`\n${command.id} --json`);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
