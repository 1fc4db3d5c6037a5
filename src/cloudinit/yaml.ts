/**
 * YAML helpers shared by the cloud-init builders.
 *
 * cloud-init reads YAML with PyYAML (YAML 1.1), so user-supplied documents are loaded with the
 * YAML 1.1 schema (`0644` is octal, `yes` is a boolean, `<<` merges) and documents are dumped with
 * js-yaml's DUMP_SCHEMA, which quotes every string a YAML 1.1 or 1.2 reader could mistake for
 * another type.
 */
import { dump, loadAll, visit, SCALAR_STYLE, YAML11_SCHEMA } from 'js-yaml';

export type YamlMapping = Record<string, unknown>;

export function isMapping(value: unknown): value is YamlMapping {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Keys whose string values are always written double-quoted (MAC addresses: `00:50:56:12:34:56` is a YAML 1.1 sexagesimal integer). */
const ALWAYS_QUOTED_KEYS = new Set(['macaddress']);

export function dumpYaml(value: unknown): string {
  return dump(value, {
    lineWidth: -1,
    noRefs: true,
    transform: (documents) =>
      visit(documents, (node) => {
        if (node.kind !== 'mapping') return;
        for (const item of node.items) {
          if (
            item.key.kind === 'scalar' &&
            ALWAYS_QUOTED_KEYS.has(item.key.value) &&
            item.value.kind === 'scalar' &&
            item.value.tag === 'tag:yaml.org,2002:str'
          ) {
            item.value.style = SCALAR_STYLE.DOUBLE_QUOTED;
          }
        }
      }),
  });
}

/**
 * Loads one YAML 1.1 document the way cloud-init would see it. An empty or comment-only source is
 * `null`. Throws js-yaml's error on a syntax error, a duplicated key or several documents.
 */
export function loadYaml(text: string): unknown {
  const documents = loadAll(text, { schema: YAML11_SCHEMA });
  if (documents.length > 1) throw new Error('expected a single YAML document, but found several');
  return documents[0] ?? null;
}

/** First line of a js-yaml error message, for error messages shown to users. */
export function yamlErrorSummary(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}
