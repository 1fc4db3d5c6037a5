/**
 * The kinds of user data cloud-init accepts, told apart by their first line as cloud-init's
 * `type_from_starts_with` does, and the MIME type each one travels as inside a multipart.
 */
import { invalidInput } from '../core/errors.js';
import { isMimeMessage, parseMultipart, type UserDataPart } from './mime.js';

/** Longest prefix first: `#include-once` before `#include`, `#cloud-config-archive` before `#cloud-config`. */
const STARTS_WITH: ReadonlyArray<readonly [string, string]> = [
  ['#include-once', 'text/x-include-once-url'],
  ['#include', 'text/x-include-url'],
  ['#cloud-config-archive', 'text/cloud-config-archive'],
  ['#cloud-config', 'text/cloud-config'],
  ['#cloud-boothook', 'text/cloud-boothook'],
  ['#part-handler', 'text/part-handler'],
  ['## template: jinja', 'text/jinja2'],
  ['#!', 'text/x-shellscript'],
];

export const CLOUD_CONFIG_TYPE = 'text/cloud-config';
export const SHELL_SCRIPT_TYPE = 'text/x-shellscript';

/** The MIME type of a single (not multipart) user-data document, or undefined when cloud-init would ignore it. */
export function partTypeOf(text: string): string | undefined {
  const start = text.replace(/^\uFEFF/, '');
  for (const [prefix, type] of STARTS_WITH) {
    if (start.startsWith(prefix)) return type;
  }
  return undefined;
}

const ACCEPTED = "'#cloud-config', '#!' (a script), '#include', '#cloud-boothook', '## template: jinja' or a MIME multipart message (MIME-Version header)";

/**
 * A --user-data file as the parts cloud-init will see: one part for a single document, the
 * message's parts for MIME multipart. Parts cloud-init would drop (unknown first line) are refused.
 */
export function userDataParts(text: string, source = '--user-data'): UserDataPart[] {
  if (text.trim() === '') throw invalidInput(`${source} is empty`, `Give a file that starts with ${ACCEPTED}`);
  if (isMimeMessage(text)) {
    const parts = parseMultipart(text, source).filter((part) => part.content.trim() !== '');
    if (parts.length === 0) throw invalidInput(`${source} is a MIME message with no non-empty part`);
    return parts.map((part, index) => {
      if (part.type !== 'text/plain' && part.type !== 'text/x-not-multipart') return part;
      // cloud-init types untyped parts by their first line too
      const type = partTypeOf(part.content);
      if (type === undefined) throw unknownKind(part.content, `part ${index + 1} of ${source}`);
      return { ...part, type };
    });
  }
  const type = partTypeOf(text);
  if (type === undefined) throw unknownKind(text, source);
  return [{ type, content: text }];
}

function unknownKind(text: string, source: string): Error {
  const first = (text.split('\n')[0] ?? '').slice(0, 40);
  return invalidInput(`${source} starts with '${first}', which cloud-init does not recognise (it would ignore it)`, `Start it with ${ACCEPTED}`);
}
