/**
 * A reader for the way vim-cmd prints vSphere data objects (hostd's vmodl pretty printer):
 *
 *   (vim.vm.Summary) {
 *      vm = 'vim.VirtualMachine:10',
 *      config = (vim.vm.Summary.ConfigSummary) {
 *         name = "web1",
 *         numCpu = 2,
 *      },
 *      net = (vim.vm.GuestInfo.NicInfo) [ ... ],
 *      faultMessage = <unset>
 *   }
 *
 * Quirks handled: members end in ",", ", " or nothing (older and newer hosts differ); strings are
 * printed raw, so a quote inside a string is not escaped: a string ends at the quote that is
 * followed by the end of the line (after an optional comma), or, inside a one-line array
 * (`(string) [ "a", "b" ]`), by a comma or the closing bracket; a string that does not end on
 * its line continues on the next (multi-line annotations). `<unset>` and `null` read as null.
 */

export class VmodlRef {
  constructor(
    readonly type: string,
    readonly value: string,
  ) {}
}

export type VmodlValue = string | number | boolean | null | VmodlRef | VmodlObject | VmodlValue[];
export interface VmodlObject {
  _type: string;
  [member: string]: VmodlValue;
}

class Reader {
  position = 0;
  constructor(readonly text: string) {}

  peek(offset = 0): string {
    return this.text[this.position + offset] ?? '';
  }

  startsWith(token: string): boolean {
    return this.text.startsWith(token, this.position);
  }

  skipBlanks(includeCommas = false): void {
    while (this.position < this.text.length) {
      const char = this.text[this.position] as string;
      if (char === ' ' || char === '\t' || char === '\n' || char === '\r' || (includeCommas && char === ',')) this.position += 1;
      else break;
    }
  }

  atEnd(): boolean {
    return this.position >= this.text.length;
  }

  /** Skips to the start of the next line (recovery from text the grammar does not know). */
  skipLine(): void {
    const next = this.text.indexOf('\n', this.position);
    this.position = next === -1 ? this.text.length : next + 1;
  }
}

/** Reads the first dump in the text: from the first line that starts with "(" (banners before it are skipped). */
export function parseVmodl(text: string): VmodlValue {
  const start = text.search(/^\s*\(/m);
  if (start === -1) return text.trim() === '<unset>' ? null : text.trim();
  return readValue(new Reader(text.slice(start)), false);
}

/** Reads one value from the very start of the text. */
export function readVmodl(text: string): VmodlValue {
  return readValue(new Reader(text), false);
}

function readValue(reader: Reader, inlineArray: boolean): VmodlValue {
  reader.skipBlanks();
  if (reader.peek() === '(') {
    const close = reader.text.indexOf(')', reader.position);
    const type = reader.text.slice(reader.position + 1, close === -1 ? undefined : close);
    reader.position = close === -1 ? reader.text.length : close + 1;
    while (reader.peek() === ' ' || reader.peek() === '\t') reader.position += 1;
    if (reader.peek() === '{') {
      reader.position += 1;
      return readObject(reader, type);
    }
    if (reader.peek() === '[') {
      reader.position += 1;
      return readArray(reader);
    }
    if (reader.startsWith('null')) {
      reader.position += 4;
      return null;
    }
    return readValue(reader, inlineArray);
  }
  if (reader.peek() === '"') return readString(reader, inlineArray);
  if (reader.peek() === "'") {
    const close = reader.text.indexOf("'", reader.position + 1);
    const body = reader.text.slice(reader.position + 1, close === -1 ? undefined : close);
    reader.position = close === -1 ? reader.text.length : close + 1;
    const match = /^(?:vim\.|vmodl\.)?(.+?):(.*)$/.exec(body);
    return match ? new VmodlRef(match[1] as string, match[2] as string) : body;
  }
  if (reader.startsWith('<unset>')) {
    reader.position += '<unset>'.length;
    return null;
  }
  const match = /^[^,\n\]}]*/.exec(reader.text.slice(reader.position)) as RegExpExecArray;
  reader.position += match[0].length;
  const token = match[0].trim();
  if (token === 'true') return true;
  if (token === 'false') return false;
  if (token === 'null') return null;
  if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(token)) return Number(token);
  return token;
}

function readString(reader: Reader, inlineArray: boolean): string {
  const open = reader.position;
  const text = reader.text;
  let search = open + 1;
  // A closing quote is followed by the end of its line (after an optional comma); inside a
  // one-line array also by a comma or "]".
  const ending = inlineArray ? /^[ \t]*(,|\]|\r?\n|$)/ : /^[ \t]*,?[ \t]*(\r?\n|$)/;
  for (;;) {
    const quote = text.indexOf('"', search);
    if (quote === -1) {
      reader.position = text.length;
      return text.slice(open + 1);
    }
    const after = text.slice(quote + 1, text.indexOf('\n', quote + 1) === -1 ? undefined : text.indexOf('\n', quote + 1) + 1);
    if (ending.test(after)) {
      reader.position = quote + 1;
      return text.slice(open + 1, quote);
    }
    search = quote + 1;
  }
}

function readObject(reader: Reader, type: string): VmodlObject {
  const object: VmodlObject = { _type: type };
  for (;;) {
    reader.skipBlanks(true);
    if (reader.atEnd()) return object;
    if (reader.peek() === '}') {
      reader.position += 1;
      return object;
    }
    const member = /^([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*/.exec(reader.text.slice(reader.position));
    if (member === null) {
      reader.skipLine();
      continue;
    }
    reader.position += member[0].length;
    object[member[1] as string] = readValue(reader, false);
  }
}

function readArray(reader: Reader): VmodlValue[] {
  const items: VmodlValue[] = [];
  // `[ "a", "b" ]` on one line, or one element per line.
  const lineEnd = reader.text.indexOf('\n', reader.position);
  const inline = reader.text.slice(reader.position, lineEnd === -1 ? undefined : lineEnd).trim() !== '';
  for (;;) {
    reader.skipBlanks(true);
    if (reader.atEnd()) return items;
    if (reader.peek() === ']') {
      reader.position += 1;
      return items;
    }
    const before = reader.position;
    items.push(readValue(reader, inline));
    if (reader.position === before) reader.skipLine();
  }
}

/** Follows a dotted path through objects (`config.name`); undefined when absent. */
export function pick(value: VmodlValue | undefined, path: string): VmodlValue | undefined {
  let current: VmodlValue | undefined = value;
  for (const part of path.split('.')) {
    if (current === null || current === undefined || typeof current !== 'object' || Array.isArray(current) || current instanceof VmodlRef) return undefined;
    current = (current as VmodlObject)[part];
  }
  return current;
}

export function pickString(value: VmodlValue | undefined, path: string): string | null {
  const found = pick(value, path);
  if (typeof found === 'string') return found;
  if (typeof found === 'number' || typeof found === 'boolean') return String(found);
  return null;
}

export function pickNumber(value: VmodlValue | undefined, path: string): number | null {
  const found = pick(value, path);
  if (typeof found === 'number') return found;
  if (typeof found === 'string' && /^-?\d+$/.test(found)) return Number(found);
  return null;
}

export function pickBoolean(value: VmodlValue | undefined, path: string): boolean | null {
  const found = pick(value, path);
  if (typeof found === 'boolean') return found;
  if (found === 'true' || found === 'false') return found === 'true';
  return null;
}

export function pickArray(value: VmodlValue | undefined, path: string): VmodlValue[] {
  const found = pick(value, path);
  return Array.isArray(found) ? found : [];
}

export function typeName(value: VmodlValue | undefined): string {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof VmodlRef) ? value._type : '';
}
