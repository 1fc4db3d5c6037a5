/**
 * Edits of the configuration file that change only the lines they touch: comments, blank lines,
 * key order, indentation and the alignment of trailing comments all stay as the operator wrote
 * them. The `yaml` package's parser locates the nodes (with their source offsets); the new text is
 * spliced into the original, never re-serialized. Every edit is checked by parsing the result:
 * the data must equal the old data with the edits applied, else nothing is written.
 */
import { isDeepStrictEqual } from 'node:util';
import { isMap, isScalar, parseDocument, type Document, type Pair, type YAMLMap } from 'yaml';
import { CesoError } from '../core/errors.js';

export { writePrivateFile } from './permissions.js';

export type YamlScalar = string | number | boolean;
export type YamlValue = YamlScalar | { [key: string]: YamlValue };

export interface YamlEdit {
  /** Keys from the top of the document, e.g. ["hosts", "lab1", "esxi", "thumbprint"]. */
  path: string[];
  /** A scalar, or a mapping (written as a new section) when the key does not exist yet. */
  value: YamlValue;
}

/** Applies the edits in order and returns the new text; the text is otherwise unchanged. */
export function applyYamlEdits(text: string, edits: YamlEdit[]): string {
  let result = text;
  for (const edit of edits) result = applyOne(result, edit);
  const before = parse(text).toJS() as unknown;
  const expected = edits.reduce<unknown>((data, edit) => setIn(data, edit.path, edit.value), structuredClone(before ?? {}));
  const after = parse(result).toJS() as unknown;
  if (!isDeepStrictEqual(after, expected)) {
    throw new CesoError('INTERNAL', `editing the configuration would change more than ${edits.map((edit) => edit.path.join('.')).join(', ')}; nothing was written`, {
      hint: 'This is a bug in ceso: make the change by hand and report the file layout that caused it',
    });
  }
  return result;
}

/** The value at path as written in the file (no `${VAR}` interpolation); undefined when absent. */
export function readYamlValue(text: string, path: string[]): unknown {
  let data = parse(text).toJS() as unknown;
  for (const key of path) {
    if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
    data = (data as Record<string, unknown>)[key];
  }
  return data;
}

function parse(text: string): Document.Parsed {
  const document = parseDocument(text);
  const problem = document.errors[0];
  if (problem !== undefined) {
    throw new CesoError('CONFIG_INVALID', `not valid YAML: ${problem.message.split('\n')[0] ?? problem.message}`, {
      hint: 'Fix the YAML syntax first (ceso config validate shows the problems)',
    });
  }
  return document;
}

function setIn(data: unknown, path: string[], value: YamlValue): unknown {
  const [key, ...rest] = path;
  if (key === undefined) return value;
  const object = data !== null && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
  return { ...object, [key]: setIn(object[key], rest, value) };
}

function applyOne(text: string, edit: YamlEdit): string {
  if (edit.path.length === 0) throw new Error('applyYamlEdits: empty path');
  const document = parse(text);
  const layout = new Layout(text);
  const root = document.contents;
  if (root === null || (isScalar(root) && root.value === null)) {
    // Only comments (or nothing): the new keys go at the end.
    return layout.append(layout.block(edit.path, edit.value, 0));
  }
  if (!isMap(root)) throw notAMapping(edit.path, 0);

  let map = root as YAMLMap;
  for (let depth = 0; depth < edit.path.length; depth += 1) {
    const key = edit.path[depth] as string;
    const rest = edit.path.slice(depth);
    const pair = map.items.find((item) => isScalar(item.key) && String(item.key.value) === key) as Pair<unknown, unknown> | undefined;
    if (pair === undefined) return layout.insertIntoMap(map, rest, edit.value);
    const last = depth === edit.path.length - 1;
    const node = pair.value;
    if (isMap(node)) {
      if (last) throw new CesoError('CONFIG_INVALID', `${edit.path.join('.')} is a mapping, not a single value; nothing was written`);
      map = node as YAMLMap;
      continue;
    }
    if (!isScalar(node) && node !== null) throw notAMapping(edit.path, depth + 1);
    const range = isScalar(node) ? (node.range as [number, number, number] | null | undefined) : undefined;
    const isNull = node === null || (node as { value: unknown }).value === null;
    const empty = isNull && (range === undefined || range === null || range[0] === range[1]);
    if (!isNull && !last) throw notAMapping(edit.path, depth + 1);
    if (last && typeof edit.value !== 'object') {
      if (empty) return layout.insertAfterKey(pair, ` ${layout.scalar(edit.value)}`);
      return layout.replace(range as [number, number, number], layout.scalar(edit.value));
    }
    if (!empty) {
      // `key: ~` or `key: null` written out: the new mapping replaces the word.
      return layout.replace(range as [number, number, number], layout.flowValue(edit.path.slice(depth + 1), edit.value));
    }
    // `key:` with nothing after it (perhaps commented-out lines below): a block under it.
    const indent = layout.column((pair.key as { range: [number, number, number] }).range[0]) + layout.unit;
    return layout.insertAfterKey(pair, layout.eol + layout.block(edit.path.slice(depth + 1), edit.value, indent).join(layout.eol));
  }
  throw new Error('unreachable');
}

function notAMapping(path: string[], depth: number): CesoError {
  const where = depth === 0 ? 'the top of the file' : path.slice(0, depth).join('.');
  return new CesoError('CONFIG_INVALID', `cannot set ${path.join('.')}: ${where} is not a mapping; nothing was written`, {
    hint: 'Fix the file by hand (config.example.yaml shows the layout)',
  });
}

/** Knows how the file is written (line ends, indentation) and splices new text into it. */
class Layout {
  readonly eol: string;
  readonly unit: number;

  constructor(private readonly text: string) {
    this.eol = text.includes('\r\n') ? '\r\n' : '\n';
    const indents = text
      .split(/\r?\n/)
      .filter((line) => /^ +[^\s#]/.test(line))
      .map((line) => line.length - line.trimStart().length);
    this.unit = indents.length > 0 ? Math.min(...indents) : 2;
  }

  column(offset: number): number {
    return offset - (this.text.lastIndexOf('\n', offset - 1) + 1);
  }

  scalar(value: YamlScalar): string {
    return typeof value === 'string' ? JSON.stringify(value) : String(value);
  }

  key(name: string): string {
    return /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name) ? name : JSON.stringify(name);
  }

  /** `a:` / `  b: "v"` lines at an indentation, for block context. */
  block(path: string[], value: YamlValue, indent: number): string[] {
    const pad = ' '.repeat(indent);
    const [first, ...rest] = path;
    if (first === undefined) {
      if (typeof value !== 'object') throw new Error('block: a scalar needs a key');
      return Object.entries(value).flatMap(([key, item]) => this.block([key], item, indent));
    }
    if (rest.length === 0 && typeof value !== 'object') return [`${pad}${this.key(first)}: ${this.scalar(value)}`];
    return [`${pad}${this.key(first)}:`, ...this.block(rest, value, indent + this.unit)];
  }

  /** The same in flow style: `{b: "v"}`. */
  flowValue(path: string[], value: YamlValue): string {
    const [first, ...rest] = path;
    if (first === undefined) {
      if (typeof value !== 'object') return this.scalar(value);
      return `{${Object.entries(value).map(([key, item]) => `${this.key(key)}: ${this.flowValue([], item)}`).join(', ')}}`;
    }
    return `{${this.key(first)}: ${this.flowValue(rest, value)}}`;
  }

  replace(range: [number, number, number], replacement: string): string {
    return this.text.slice(0, range[0]) + replacement + this.text.slice(range[1]);
  }

  append(lines: string[]): string {
    const base = this.text === '' || this.text.endsWith('\n') ? this.text : this.text + this.eol;
    return base + lines.join(this.eol) + this.eol;
  }

  /** Right after `key:` on its line. */
  insertAfterKey(pair: Pair<unknown, unknown>, addition: string): string {
    const keyEnd = (pair.key as { range: [number, number, number] }).range[1];
    const colon = this.text.indexOf(':', keyEnd);
    const lineEnd = this.lineEnd(colon + 1);
    // Keep a trailing comment on the key's line where it was: insert before the line end.
    const comment = this.text.slice(colon + 1, lineEnd);
    if (addition.startsWith(' ') && /\S/.test(comment)) {
      // `key:   # note` with a scalar: the value goes between the colon and the comment.
      return this.text.slice(0, colon + 1) + addition + this.text.slice(colon + 1);
    }
    return this.text.slice(0, lineEnd) + addition + this.text.slice(lineEnd);
  }

  /** A new key (and the rest of the path under it) as the map's last entry. */
  insertIntoMap(map: YAMLMap, path: string[], value: YamlValue): string {
    const lastPair = map.items.at(-1) as Pair<unknown, unknown> | undefined;
    const range = map.range as [number, number, number];
    if (map.flow === true) {
      const [first, ...rest] = path;
      const entry = `${this.key(first as string)}: ${this.flowValue(rest, value)}`;
      if (lastPair === undefined) {
        const open = this.text.indexOf('{', range[0]);
        return this.text.slice(0, open + 1) + entry + this.text.slice(open + 1);
      }
      const end = this.endOf(lastPair);
      return this.text.slice(0, end) + `, ${entry}` + this.text.slice(end);
    }
    if (lastPair === undefined) return this.append(this.block(path, value, 0));
    const indent = this.column((lastPair.key as { range: [number, number, number] }).range[0]);
    const end = this.endOf(lastPair);
    let at = end > 0 && this.text[end - 1] === '\n' ? end - (this.text[end - 2] === '\r' ? 2 : 1) : this.lineEnd(end);
    // Comment lines indented under the last entry belong to it (commented-out keys): after them.
    for (;;) {
      const next = this.text.indexOf('\n', at);
      if (next < 0) break;
      const lineEnd = this.lineEnd(next + 1);
      const line = this.text.slice(next + 1, lineEnd);
      const match = /^( +)#/.exec(line);
      if (match === null || (match[1] as string).length <= indent) break;
      at = lineEnd;
    }
    return this.text.slice(0, at) + this.eol + this.block(path, value, indent).join(this.eol) + this.text.slice(at);
  }

  private endOf(pair: Pair<unknown, unknown>): number {
    const node = (pair.value ?? pair.key) as { range?: [number, number, number] | null } | null;
    const keyRange = (pair.key as { range: [number, number, number] }).range;
    return Math.max(node?.range?.[1] ?? keyRange[1], keyRange[1]);
  }

  private lineEnd(offset: number): number {
    const newline = this.text.indexOf('\n', offset);
    if (newline < 0) return this.text.length;
    return this.text[newline - 1] === '\r' ? newline - 1 : newline;
  }
}
