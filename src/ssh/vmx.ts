/**
 * .vmx files: one `key = "value"` pair per line (`^(.+?)\s*=\s*"(.*)"\s*$`). Inside a value a
 * byte that cannot stand in a quoted one-line value is written `|XX` (two hex digits): `"` is
 * `|22`, `|` is `|7C`, a newline `|0A`. Keys are case-insensitive, as on ESXi; they keep the
 * order and spelling of their first appearance. Lines that are not pairs are dropped.
 */

const LINE = /^(.+?)\s*=\s*"(.*)"\s*$/;

export class VmxFile {
  private readonly entries = new Map<string, { key: string; value: string }>();

  static parse(text: string): VmxFile {
    const file = new VmxFile();
    for (const raw of text.split('\n')) {
      const match = LINE.exec(raw.replace(/\r$/, ''));
      if (match === null) continue;
      const key = (match[1] as string).trim();
      if (key === '' || key.startsWith('#')) continue;
      file.set(key, decodeVmxValue(match[2] as string));
    }
    return file;
  }

  get(key: string): string | undefined {
    return this.entries.get(key.toLowerCase())?.value;
  }

  has(key: string): boolean {
    return this.entries.has(key.toLowerCase());
  }

  /** Sets a key; an existing key (any case) keeps its place and spelling. */
  set(key: string, value: string): this {
    const lower = key.toLowerCase();
    const existing = this.entries.get(lower);
    if (existing !== undefined) existing.value = value;
    else this.entries.set(lower, { key, value });
    return this;
  }

  delete(key: string): this {
    this.entries.delete(key.toLowerCase());
    return this;
  }

  /** Removes every key the predicate picks (given the key as spelled in the file). */
  deleteWhere(predicate: (key: string) => boolean): this {
    for (const [lower, entry] of [...this.entries]) if (predicate(entry.key)) this.entries.delete(lower);
    return this;
  }

  keys(): string[] {
    return [...this.entries.values()].map((entry) => entry.key);
  }

  /** Pairs as spelled in the file, in file order. */
  toMap(): Map<string, string> {
    return new Map([...this.entries.values()].map((entry) => [entry.key, entry.value]));
  }

  render(): string {
    return [...this.entries.values()].map((entry) => `${entry.key} = "${encodeVmxValue(entry.value)}"\n`).join('');
  }
}

export function encodeVmxValue(value: string): string {
  let out = '';
  for (const char of value) {
    const code = char.codePointAt(0) as number;
    out += char === '"' || char === '|' || code < 0x20 || code === 0x7f ? `|${code.toString(16).toUpperCase().padStart(2, '0')}` : char;
  }
  return out;
}

/** Every `|XX` with two hex digits becomes that byte (UTF-8 sequences reassembled); the rest is kept. */
export function decodeVmxValue(value: string): string {
  if (!value.includes('|')) return value;
  const bytes: number[] = [];
  const source = Buffer.from(value, 'utf8');
  for (let index = 0; index < source.length; index++) {
    const byte = source[index] as number;
    if (byte === 0x7c && index + 2 < source.length && isHex(source[index + 1]) && isHex(source[index + 2])) {
      bytes.push(parseInt(String.fromCharCode(source[index + 1] as number, source[index + 2] as number), 16));
      index += 2;
    } else {
      bytes.push(byte);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function isHex(byte: number | undefined): boolean {
  return byte !== undefined && ((byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66));
}

/** `56 4d 12 ... 9a-bc ...` (the .vmx form) to `564d12..-....` (the API's form); null when not a uuid. */
export function uuidFromVmx(value: string | undefined): string | null {
  if (value === undefined) return null;
  const hex = value.replace(/[\s-]/g, '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) return null;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
