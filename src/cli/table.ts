export interface Column<T> {
  header: string;
  value: (row: T) => string | number | boolean | null;
}

/** A plain aligned table for people; `-` stands for unknown values. */
export function renderTable<T>(rows: readonly T[], columns: ReadonlyArray<Column<T>>): string {
  const cells = rows.map((row) => columns.map((column) => display(column.value(row))));
  const widths = columns.map((column, index) => Math.max(column.header.length, ...cells.map((line) => (line[index] ?? '').length)));
  const format = (line: string[]): string => line.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join('  ').trimEnd();
  return [format(columns.map((column) => column.header)), ...cells.map(format)].join('\n');
}

function display(value: string | number | boolean | null): string {
  if (value === null || value === '') return '-';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return String(value);
}

/** Key: value lines for one object, aligned. */
export function renderFields(fields: ReadonlyArray<[string, string | number | boolean | null]>): string {
  const width = Math.max(...fields.map(([key]) => key.length));
  return fields.map(([key, value]) => `${`${key}:`.padEnd(width + 2)}${display(value)}`).join('\n');
}
