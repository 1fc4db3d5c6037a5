/**
 * A small XML tree reader for OVF descriptors (a few KB, read once): elements with their
 * attributes and text, names by local part (`ovf:href` -> `href`, `rasd:ResourceType` ->
 * `ResourceType`), and each element's span in the source so an item can be cut out of the text
 * the host is sent. No DTDs (an OVF has none); malformed input throws with the offset.
 */
import { decodeText } from '../esxi/soap/xml.js';

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
  /** [start, end) of the element in the source text. */
  start: number;
  end: number;
}

function localName(name: string): string {
  const colon = name.indexOf(':');
  return colon < 0 ? name : name.slice(colon + 1);
}

const NAME = /[^\s/>=<"']+/y;
const ATTRIBUTE = /\s*([^\s/>=<"']+)\s*=\s*(?:"([^"]*)"|'([^']*)')/y;

export function parseXml(text: string): XmlElement {
  let position = 0;
  const fail = (what: string): never => {
    throw new Error(`${what} at offset ${position}`);
  };
  const skipMisc = (): void => {
    for (;;) {
      while (position < text.length && /\s/.test(text[position]!)) position += 1;
      if (text.startsWith('<?', position)) {
        const end = text.indexOf('?>', position);
        if (end < 0) fail('unterminated processing instruction');
        position = end + 2;
      } else if (text.startsWith('<!--', position)) {
        const end = text.indexOf('-->', position);
        if (end < 0) fail('unterminated comment');
        position = end + 3;
      } else if (text.startsWith('<!DOCTYPE', position) || text.startsWith('<!ENTITY', position)) {
        fail('a DOCTYPE is not allowed in an OVF descriptor');
      } else return;
    }
  };
  const readElement = (depth: number): XmlElement => {
    if (depth > 128) fail('elements nested too deeply');
    const start = position;
    if (text[position] !== '<') fail('expected an element');
    position += 1;
    NAME.lastIndex = position;
    const match = NAME.exec(text);
    if (match === null) fail('expected an element name');
    const qualified = match![0];
    position = NAME.lastIndex;
    const attributes: Record<string, string> = {};
    for (;;) {
      ATTRIBUTE.lastIndex = position;
      const attribute = ATTRIBUTE.exec(text);
      if (attribute === null) break;
      const value = decodeText(attribute[2] ?? attribute[3] ?? '');
      attributes[attribute[1]!] = value;
      attributes[localName(attribute[1]!)] ??= value;
      position = ATTRIBUTE.lastIndex;
    }
    while (/\s/.test(text[position] ?? '')) position += 1;
    const element: XmlElement = { name: localName(qualified), attributes, children: [], text: '', start, end: start };
    if (text.startsWith('/>', position)) {
      position += 2;
      element.end = position;
      return element;
    }
    if (text[position] !== '>') fail(`malformed tag <${qualified}`);
    position += 1;
    const texts: string[] = [];
    for (;;) {
      const next = text.indexOf('<', position);
      if (next < 0) fail(`<${qualified}> is not closed`);
      texts.push(text.slice(position, next));
      position = next;
      if (text.startsWith('</', position)) {
        const close = text.indexOf('>', position);
        if (close < 0) fail('unterminated closing tag');
        const closing = text.slice(position + 2, close).trim();
        if (closing !== qualified) fail(`</${closing}> closes <${qualified}>`);
        position = close + 1;
        break;
      }
      if (text.startsWith('<!--', position)) {
        const end = text.indexOf('-->', position);
        if (end < 0) fail('unterminated comment');
        position = end + 3;
      } else if (text.startsWith('<![CDATA[', position)) {
        const end = text.indexOf(']]>', position);
        if (end < 0) fail('unterminated CDATA');
        texts.push(text.slice(position + 9, end));
        position = end + 3;
      } else if (text.startsWith('<?', position)) {
        const end = text.indexOf('?>', position);
        if (end < 0) fail('unterminated processing instruction');
        position = end + 2;
      } else {
        element.children.push(readElement(depth + 1));
      }
    }
    element.text = decodeText(texts.join('')).trim();
    element.end = position;
    return element;
  };
  if (text.charCodeAt(0) === 0xfeff) position = 1;
  skipMisc();
  const root = readElement(0);
  skipMisc();
  if (position < text.length) fail('content after the root element');
  return root;
}

export function child(element: XmlElement | undefined, name: string): XmlElement | undefined {
  return element?.children.find((item) => item.name === name);
}

export function children(element: XmlElement | undefined, name: string): XmlElement[] {
  return element?.children.filter((item) => item.name === name) ?? [];
}

export function childText(element: XmlElement | undefined, name: string): string | undefined {
  return child(element, name)?.text;
}
