/**
 * The exact commands the SSH path runs on the host. Every value is single-quoted (quote.ts);
 * vmids are checked to be digits first. Scripts are POSIX sh for busybox ash: they print their
 * parts between marker lines that carry a random nonce, so nothing a VM's name or annotation
 * holds can fake a marker.
 */
import { randomBytes } from 'node:crypto';
import { CesoError } from '../core/errors.js';
import { VMID } from './parse.js';
import { quote } from './quote.js';

export function vmid(id: string): string {
  if (!VMID.test(id)) throw new CesoError('INVALID_INPUT', `"${id}" is not a vmid`, { hint: 'Run "ceso vm list" to see the ids' });
  return quote(id);
}

export const GETALLVMS = 'vim-cmd vmsvc/getallvms';
export const DATASTORES = 'vim-cmd hostsvc/datastore/listsummary';

export type PowerVerb = 'on' | 'off' | 'reset' | 'suspend' | 'shutdown';

export const vimCmd = {
  summary: (id: string) => `vim-cmd vmsvc/get.summary ${vmid(id)}`,
  guest: (id: string) => `vim-cmd vmsvc/get.guest ${vmid(id)}`,
  snapshots: (id: string) => `vim-cmd vmsvc/snapshot.get ${vmid(id)}`,
  devices: (id: string) => `vim-cmd vmsvc/device.getdevices ${vmid(id)}`,
  powerState: (id: string) => `vim-cmd vmsvc/power.getstate ${vmid(id)}`,
  power: (verb: PowerVerb, id: string) => `vim-cmd vmsvc/power.${verb} ${vmid(id)}`,
  register: (vmxHostPath: string) => `vim-cmd solo/registervm ${quote(vmxHostPath)}`,
  destroy: (id: string) => `vim-cmd vmsvc/destroy ${vmid(id)}`,
  unregister: (id: string) => `vim-cmd vmsvc/unregister ${vmid(id)}`,
};

export const vmkfstools = {
  /** Copies a disk's descriptor and extents, thin on the destination. */
  cloneThin: (source: string, destination: string) => `vmkfstools -i ${quote(source)} ${quote(destination)} -d thin`,
  /** Grows a disk to `size` (`40G`, `512M`, `1048576K`). */
  extend: (size: string, disk: string) => {
    if (!/^\d+[KMGT]$/.test(size)) throw new CesoError('INTERNAL', `not a vmkfstools size: ${size}`);
    return `vmkfstools -X ${size} ${quote(disk)}`;
  },
};

export const files = {
  mkdir: (path: string) => `mkdir ${quote(path)}`,
  /** Writes standard input to the file (the content never appears on a command line). */
  write: (path: string) => `cat > ${quote(path)}`,
  /** Removes a folder, then fails (listing what is left) unless it is gone. */
  removeFolder: (path: string) => `rm -rf -- ${quote(path)}; if [ -e ${quote(path)} ]; then ls -A ${quote(path)}; exit 1; fi`,
};

/** Sizes in whole units where they divide, so plans read `-X 40G`. */
export function vmkfstoolsSize(kb: number): string {
  const units: Array<[string, number]> = [
    ['T', 1024 ** 3],
    ['G', 1024 ** 2],
    ['M', 1024],
  ];
  for (const [unit, size] of units) if (kb % size === 0) return `${kb / size}${unit}`;
  return `${Math.ceil(kb)}K`;
}

// ---- scripts with marked sections --------------------------------------------------------------

export function newNonce(): string {
  return `@@ceso-${randomBytes(8).toString('hex')}`;
}

export interface Section {
  label: string;
  command: string;
}

/**
 * Runs each command with stdout and stderr together and stdin closed, between a marker line
 * (`<nonce> <label>`) and its exit status (`<nonce> <label> rc <n>`).
 */
export function sectionsScript(nonce: string, sections: Section[]): string {
  return sections
    .map((section) => {
      if (!/^[\w.-]+$/.test(section.label)) throw new CesoError('INTERNAL', `bad section label ${section.label}`);
      return `echo '${nonce} ${section.label}'; ( ${section.command} ) </dev/null 2>&1; echo "${nonce} ${section.label} rc $?"`;
    })
    .join('\n');
}

export interface SectionOutput {
  output: string;
  code: number | null;
}

/** Splits a script's output into its sections, by label (for repeated labels the last wins). */
export function splitSections(nonce: string, text: string): Map<string, SectionOutput> {
  const sections = new Map<string, SectionOutput>();
  let label: string | undefined;
  let lines: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith(`${nonce} `)) {
      const rest = line.slice(nonce.length + 1).trimEnd();
      const end = /^(\S+) rc (\d+)$/.exec(rest);
      if (end !== null && label !== undefined && end[1] === label) {
        sections.set(label, { output: lines.join('\n'), code: Number(end[2]) });
        label = undefined;
      } else {
        if (label !== undefined) sections.set(label, { output: lines.join('\n'), code: null });
        label = rest;
      }
      lines = [];
    } else if (label !== undefined) {
      lines.push(line);
    }
  }
  if (label !== undefined) sections.set(label, { output: lines.join('\n'), code: null });
  return sections;
}

/**
 * `vm list` in ONE remote command: getallvms, then for every vmid on it (rows start with the
 * vmid and name a .vmx) get.summary and the ceso.* lines of the VM's .vmx, whose path the loop
 * takes from the summary's vmPathName (`[ds] dir/x.vmx` -> <volumesRoot>/ds/dir/x.vmx; `[] /abs`
 * is absolute). vim-cmd costs a hostd round trip per call, so up to `parallel` VMs are read at
 * once, each into its own file in a private temp folder (removed on exit), printed in turn as
 * sections `vm.<id>` and `vmx.<id>`.
 */
export function listScript(nonce: string, volumesRoot: string, parallel = 8): string {
  return perVmScript({ nonce, volumesRoot, tempName: 'ceso-list', parallel });
}

/**
 * The loop `vm list` and `template list` share: getallvms, then per vmid (up to `parallel` at
 * once, each into its own temp file, printed in turn) the sections `vm.<id>` (get.summary) and
 * `vmx.<id>` (the .vmx's ceso.* lines). Inside the loop `$1` is the vmid, `$s` the summary and `$x`
 * the marker lines; `perVm` lines run after them (e.g. to print more sections), `variables` are set
 * first.
 */
export function perVmScript(options: { nonce: string; volumesRoot: string; tempName: string; parallel: number; variables?: string; perVm?: string[] }): string {
  const n = quote(options.nonce);
  return [
    `n=${n}; root=${quote(options.volumesRoot.replace(/\/+$/, ''))}${options.variables === undefined ? '' : `; ${options.variables}`}`,
    `all=$(${GETALLVMS} </dev/null 2>&1); rc=$?`,
    `echo "$n getallvms"; printf '%s\\n' "$all"; echo "$n getallvms rc $rc"`,
    `t=$(mktemp -d /tmp/${options.tempName}.XXXXXX) || exit 1`,
    `trap 'rm -rf "$t"' EXIT`,
    `trap 'exit 1' HUP INT TERM`,
    `one() {`,
    `  s=$(vim-cmd vmsvc/get.summary "$1" </dev/null 2>&1); rc=$?`,
    `  echo "$n vm.$1"; printf '%s\\n' "$s"; echo "$n vm.$1 rc $rc"`,
    `  p=$(printf '%s\\n' "$s" | sed -n 's/^[[:space:]]*vmPathName = "\\(.*\\)",\\{0,1\\}[[:space:]]*$/\\1/p' | head -n 1)`,
    `  ds=\${p#\\[}; ds=\${ds%%]*}; rel=\${p#*]}; rel=\${rel# }`,
    `  if [ -n "$ds" ]; then f="$root/$ds/$rel"; else f=$rel; fi`,
    `  x=; if [ -n "$p" ] && [ -f "$f" ]; then x=$(grep -i '^[[:space:]]*ceso\\.' "$f"); fi`,
    `  echo "$n vmx.$1"; if [ -n "$x" ]; then printf '%s\\n' "$x"; fi; echo "$n vmx.$1 rc 0"`,
    ...(options.perVm ?? []),
    `}`,
    `i=0`,
    `for id in $(printf '%s\\n' "$all" | awk '/^[A-Za-z0-9][A-Za-z0-9_.-]* .*\\.vmx/ { print $1 }'); do`,
    `  one "$id" > "$t/$i" &`,
    `  i=$((i + 1)); if [ $((i % ${options.parallel})) -eq 0 ]; then wait; fi`,
    `done`,
    `wait`,
    `j=0; while [ $j -lt $i ]; do cat "$t/$j"; j=$((j + 1)); done`,
  ].join('\n');
}
