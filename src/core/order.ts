/**
 * Orders for what ceso lists. None uses the locale (localeCompare, Intl.Collator): the first
 * locale-aware comparison in a process loads ICU's collation data, which costs more than sorting
 * a thousand VMs, and the output would then depend on the user's locale.
 */

/** Case-insensitive first ("api" < "Web"), then by code unit so that the order is total. */
export function compareText(a: string, b: string): number {
  const lowerA = a.toLowerCase();
  const lowerB = b.toLowerCase();
  if (lowerA !== lowerB) return lowerA < lowerB ? -1 : 1;
  return a === b ? 0 : a < b ? -1 : 1;
}

/** Like compareText, with runs of digits compared as numbers: vm-9 before vm-10, 6 before 11. */
export function compareNatural(a: string, b: string): number {
  const partsA = a.match(DIGITS_OR_NOT) ?? [];
  const partsB = b.match(DIGITS_OR_NOT) ?? [];
  for (let index = 0; index < Math.min(partsA.length, partsB.length); index += 1) {
    const partA = partsA[index] as string;
    const partB = partsB[index] as string;
    if (partA === partB) continue;
    if (isDigits(partA) && isDigits(partB)) {
      const byValue = compareDigitRuns(partA, partB);
      if (byValue !== 0) return byValue;
      continue;
    }
    return compareText(partA, partB);
  }
  return partsA.length - partsB.length || compareText(a, b);
}

/** VMs by name, then by id (two VMs may share a name). */
export function byNameThenId(a: { name: string; id: string }, b: { name: string; id: string }): number {
  return compareText(a.name, b.name) || compareNatural(a.id, b.id);
}

const DIGITS_OR_NOT = /\d+|\D+/g;

function isDigits(part: string): boolean {
  const first = part.charCodeAt(0);
  return first >= 48 && first <= 57;
}

/** Compares digit strings of any length as numbers (no precision loss past 2^53). */
function compareDigitRuns(a: string, b: string): number {
  const trimmedA = a.replace(/^0+(?=\d)/, '');
  const trimmedB = b.replace(/^0+(?=\d)/, '');
  if (trimmedA.length !== trimmedB.length) return trimmedA.length - trimmedB.length;
  return trimmedA === trimmedB ? 0 : trimmedA < trimmedB ? -1 : 1;
}
