// Quoting and paths for the remote shell, checked by a real POSIX shell (dash here; ESXi's is
// busybox ash): hostile values arrive literally and run nothing.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { files, vimCmd, vmid, vmkfstools, vmkfstoolsSize } from '../../src/ssh/commands.js';
import { folderOf, hostPath, isSafeDatastoreName, isSafeFolder, vmxFileToDatastorePath } from '../../src/ssh/paths.js';
import { quote } from '../../src/ssh/quote.js';

const work = mkdtempSync(join(tmpdir(), 'ceso-quote-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const marker = join(work, 'pwned');
const HOSTILE = [
  `x'; touch ${marker}; '`,
  `$(touch ${marker})`,
  `\`touch ${marker}\``,
  `a"b'c\\d $HOME * ? [x] ( ) ; & | < > ~ #`,
  "it's",
  "''",
  "'",
  '\n; touch nope\n',
  'SSD Home',
  'datastore (1)',
];

/** Runs `printf '%s' <quoted>` in /bin/sh and returns what the program received. */
function throughShell(value: string): string {
  return execFileSync('/bin/sh', ['-c', `printf '%s' ${quote(value)}`], { encoding: 'utf8', cwd: work });
}

describe('quote', () => {
  it('single-quotes every argument, a quote becoming a closed, escaped and reopened quote', () => {
    expect(quote('web1')).toBe("'web1'");
    expect(quote("it's")).toBe("'it'\\''s'");
    expect(quote('')).toBe("''");
  });

  it.each(HOSTILE)('passes %j to the program literally and runs nothing', (value) => {
    expect(throughShell(value)).toBe(value);
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses NUL, which no argument can carry', () => {
    expect(() => quote('a\0b')).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });
});

describe('commands', () => {
  it('quotes every value and checks vmids before building', () => {
    expect(vimCmd.power('on', '12')).toBe("vim-cmd vmsvc/power.on '12'");
    expect(vimCmd.register('/vmfs/volumes/datastore (1)/web 1/web 1.vmx')).toBe("vim-cmd solo/registervm '/vmfs/volumes/datastore (1)/web 1/web 1.vmx'");
    expect(vmkfstools.cloneThin('/vmfs/volumes/SSD Home/a/a.vmdk', "/vmfs/volumes/SSD Home/it's/it's.vmdk")).toBe(
      "vmkfstools -i '/vmfs/volumes/SSD Home/a/a.vmdk' '/vmfs/volumes/SSD Home/it'\\''s/it'\\''s.vmdk' -d thin",
    );
    expect(vmkfstools.extend('40G', '/x/y.vmdk')).toBe("vmkfstools -X 40G '/x/y.vmdk'");
    for (const bad of ['12; reboot', '$(id)', '`id`', "1'", '', '-1']) expect(() => vmid(bad)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    expect(vmid('vm-12')).toBe("'vm-12'");
  });

  it('makes, writes and removes a folder whose name would break naive quoting', () => {
    const folder = join(work, "SSD Home (1) it's $(touch pwned) `touch pwned`");
    const sh = (command: string, input?: string): string => execFileSync('/bin/sh', ['-c', command], { encoding: 'utf8', cwd: work, ...(input === undefined ? {} : { input }) });
    sh(files.mkdir(folder));
    expect(existsSync(folder)).toBe(true);
    sh(files.write(join(folder, 'x.vmx')), 'displayName = "x"\n');
    expect(execFileSync('cat', [join(folder, 'x.vmx')], { encoding: 'utf8' })).toBe('displayName = "x"\n');
    sh(files.removeFolder(folder));
    expect(existsSync(folder)).toBe(false);
    expect(existsSync(marker)).toBe(false);
  });

  it('sizes vmkfstools -X in whole units', () => {
    expect(vmkfstoolsSize(40 * 1024 * 1024)).toBe('40G');
    expect(vmkfstoolsSize(1536 * 1024)).toBe('1536M');
    expect(vmkfstoolsSize(1025)).toBe('1025K');
    expect(vmkfstoolsSize(2 * 1024 ** 3)).toBe('2T');
  });
});

describe('datastore paths', () => {
  it('maps [ds] dir/file to <volumesRoot>/<ds>/dir/file, [] paths to themselves', () => {
    expect(hostPath('/vmfs/volumes', '[SSD Home] web 1/web 1.vmx')).toBe('/vmfs/volumes/SSD Home/web 1/web 1.vmx');
    expect(hostPath('/tmp/v/', '[datastore (1)] a/b.vmdk')).toBe('/tmp/v/datastore (1)/a/b.vmdk');
    expect(hostPath('/vmfs/volumes', '[] /var/run/crx/infra/vCLS/vCLS.vmx')).toBe('/var/run/crx/infra/vCLS/vCLS.vmx');
  });

  it('resolves .vmx file names relative to the .vmx, absolute under /vmfs/volumes, or datastore paths', () => {
    expect(vmxFileToDatastorePath('web1.vmdk', '[SSD Home] web1/web1.vmx')).toBe('[SSD Home] web1/web1.vmdk');
    expect(vmxFileToDatastorePath('/vmfs/volumes/datastore (1)/t/t.vmdk', '[SSD Home] web1/web1.vmx')).toBe('[datastore (1)] t/t.vmdk');
    expect(vmxFileToDatastorePath('[ds2] t/t.vmdk', '[ds] a/a.vmx')).toBe('[ds2] t/t.vmdk');
    expect(vmxFileToDatastorePath('/etc/passwd', '[ds] a/a.vmx')).toBeNull();
  });

  it('removes only real sub-folders of a datastore', () => {
    expect(folderOf('[datastore (1)] web 1/web 1.vmx')).toBe('[datastore (1)] web 1');
    expect(folderOf('[ds] web1.vmx')).toBeNull();
    expect(folderOf('[] /var/run/x/x.vmx')).toBeNull();
    expect(folderOf('[ds] ../../etc/x.vmx')).toBeNull();
    expect(folderOf('[ds] a/./x.vmx')).toBeNull();
    expect(isSafeFolder('a/b')).toBe(true);
    expect(isSafeDatastoreName('SSD Home')).toBe(true);
    expect(isSafeDatastoreName('datastore (1)')).toBe(true);
    for (const bad of ['', '.', '..', 'a/b', 'a]b', 'a\nb']) expect(isSafeDatastoreName(bad)).toBe(false);
  });
});
