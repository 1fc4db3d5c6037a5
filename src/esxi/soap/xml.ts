import { XMLParser } from 'fast-xml-parser';

/** A managed object reference, written `<name type="VirtualMachine">vm-42</name>`. */
export class MoRef {
  constructor(
    readonly type: string,
    readonly value: string,
  ) {}

  toString(): string {
    return `${this.type}:${this.value}`;
  }
}

/** A value that must carry `xsi:type` (polymorphic data objects, `xsd:string` option values). */
export class Typed {
  constructor(
    readonly xsiType: string,
    readonly value: XmlValue,
  ) {}
}

export type XmlValue = string | number | boolean | MoRef | Typed | XmlObject | XmlValue[] | undefined | null;
export interface XmlObject {
  [field: string]: XmlValue;
}

const ENVELOPE_OPEN =
  '<?xml version="1.0" encoding="UTF-8"?>' +
  '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" ' +
  'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' +
  '<soapenv:Body>';
const ENVELOPE_CLOSE = '</soapenv:Body></soapenv:Envelope>';

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Builds the SOAP envelope of one method call. Field order of `args` must follow the WSDL sequence. */
export function encodeCall(method: string, self: MoRef, args: XmlObject): string {
  const parts: string[] = [ENVELOPE_OPEN, `<${method} xmlns="urn:vim25">`];
  encodeField(parts, '_this', self);
  for (const [name, value] of Object.entries(args)) encodeField(parts, name, value);
  parts.push(`</${method}>`, ENVELOPE_CLOSE);
  return parts.join('');
}

function encodeField(out: string[], name: string, value: XmlValue, xsiType?: string): void {
  if (value === undefined || value === null) return;
  if (Array.isArray(value)) {
    for (const item of value) encodeField(out, name, item, xsiType);
    return;
  }
  const typeAttr = xsiType === undefined ? '' : ` xsi:type="${xsiType}"`;
  if (value instanceof Typed) {
    encodeField(out, name, value.value, value.xsiType);
    return;
  }
  if (value instanceof MoRef) {
    out.push(`<${name}${typeAttr} type="${escapeXml(value.type)}">${escapeXml(value.value)}</${name}>`);
    return;
  }
  if (typeof value === 'object') {
    out.push(`<${name}${typeAttr}>`);
    for (const [field, item] of Object.entries(value)) encodeField(out, field, item);
    out.push(`</${name}>`);
    return;
  }
  out.push(`<${name}${typeAttr}>${escapeXml(String(value))}</${name}>`);
}

/**
 * Decoded SOAP data: strings stay strings (callers convert), managed object references become
 * MoRef, `ArrayOf*` values become arrays, and a data object's xsi:type is kept as `_type`.
 * A field that holds a list on the wire is a single value when only one element came back:
 * read list fields through `asArray`.
 */
export type Decoded = string | MoRef | Decoded[] | DecodedObject;
export interface DecodedObject {
  _type?: string;
  [field: string]: Decoded | undefined;
}

const parser = new XMLParser({
  // Go-based hosts repeat namespace declarations on every value; skipping them halves parse time.
  ignoreAttributes: (name: string) => name.startsWith('xmlns'),
  attributeNamePrefix: '@',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  // Entities are decoded by decodeText, only in the few strings that hold one.
  processEntities: false,
});

const ENTITY = /&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g;
const NAMED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

export function decodeText(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(ENTITY, (_match, entity: string) => {
    if (entity.startsWith('#x')) return String.fromCodePoint(Number.parseInt(entity.slice(2), 16));
    if (entity.startsWith('#')) return String.fromCodePoint(Number.parseInt(entity.slice(1), 10));
    return NAMED[entity] ?? _match;
  });
}

/**
 * Namespace declarations repeated on every value and `xsd:*` types of primitive values carry
 * nothing the decoder uses, yet are half of a large property-collector answer. Anchored right
 * after a tag name, so text content (which cannot hold `<`) is never touched.
 */
const REDUNDANT_MARKUP = /(<[A-Za-z_][\w.:-]*)(?: xmlns:[\w.-]+="http:\/\/www\.w3\.org\/2001\/XMLSchema-instance")?(?: [\w.-]+:type="xsd:\w+")?(?=[\s/>])/g;

/** Parses a SOAP response and returns the decoded `soapenv:Body` element's single child. */
export function decodeBody(xml: string): { name: string; value: DecodedObject } {
  const doc = parser.parse(xml.replace(REDUNDANT_MARKUP, '$1')) as Record<string, unknown>;
  const envelope = childByLocalName(doc, 'Envelope');
  const body = envelope === undefined ? undefined : childByLocalName(envelope, 'Body');
  if (body === undefined || typeof body !== 'object' || body === null) {
    throw new Error('the response is not a SOAP envelope');
  }
  for (const [key, raw] of Object.entries(body as Record<string, unknown>)) {
    if (key.startsWith('@')) continue;
    const decoded = decodeNode(Array.isArray(raw) ? raw[0] : raw);
    return { name: localName(key), value: typeof decoded === 'object' && !Array.isArray(decoded) && !(decoded instanceof MoRef) ? decoded : { value: decoded } };
  }
  throw new Error('the SOAP body is empty');
}

function childByLocalName(node: unknown, name: string): unknown {
  if (node === null || typeof node !== 'object') return undefined;
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (localName(key) === name) return value;
  }
  return undefined;
}

function localName(qualified: string): string {
  const colon = qualified.indexOf(':');
  return colon === -1 ? qualified : qualified.slice(colon + 1);
}

function decodeNode(node: unknown): Decoded {
  if (node === null || node === undefined) return '';
  if (typeof node !== 'object') return decodeText(String(node));
  const record = node as Record<string, unknown>;
  const xsiType = schemaTypeOf(record);
  const morefType = record['@type'] as string | undefined;
  const text = record['#text'];

  if (xsiType !== undefined && xsiType.startsWith('ArrayOf')) {
    const items: Decoded[] = [];
    for (const [key, value] of Object.entries(record)) {
      if (key.startsWith('@') || key === '#text') continue;
      for (const item of Array.isArray(value) ? value : [value]) items.push(decodeNode(item));
    }
    return items;
  }
  if (morefType !== undefined && (xsiType === undefined || xsiType === 'ManagedObjectReference')) {
    return new MoRef(decodeText(morefType), text === undefined ? '' : decodeText(String(text)));
  }

  const fields = Object.keys(record).filter((key) => !key.startsWith('@') && key !== '#text');
  if (fields.length === 0) return text === undefined ? '' : decodeText(String(text));

  const result: DecodedObject = {};
  if (xsiType !== undefined) result._type = localName(xsiType);
  for (const key of fields) {
    const value = record[key];
    result[localName(key)] = Array.isArray(value) ? value.map(decodeNode) : decodeNode(value);
  }
  return result;
}

/**
 * The xsi:type of an element. Hosts bind the XML Schema instance namespace to different prefixes
 * (`xsi:type` from ESXi, `XMLSchema-instance:type` from Go's encoder), so any namespaced `type`
 * attribute counts; the unprefixed `type` is a managed object reference's.
 */
function schemaTypeOf(record: Record<string, unknown>): string | undefined {
  for (const key of Object.keys(record)) {
    if (key.startsWith('@') && key.endsWith(':type') && !key.startsWith('@xmlns')) return record[key] as string;
  }
  return undefined;
}

/** The elements of a list field, whether the wire carried zero, one or many. */
export function asArray<T = Decoded>(value: Decoded | undefined): T[] {
  if (value === undefined || value === '') return [];
  return (Array.isArray(value) ? value : [value]) as T[];
}

export function asObject(value: Decoded | undefined): DecodedObject {
  return value !== undefined && typeof value === 'object' && !Array.isArray(value) && !(value instanceof MoRef) ? value : {};
}

export function asString(value: Decoded | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function asNumber(value: Decoded | undefined): number | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const number = Number(value);
  return Number.isFinite(number) ? number : undefined;
}

export function asBoolean(value: Decoded | undefined): boolean | undefined {
  if (value === 'true') return true;
  if (value === 'false') return false;
  return undefined;
}

export function asMoRef(value: Decoded | undefined): MoRef | undefined {
  return value instanceof MoRef ? value : undefined;
}
