// The snapshot rules both paths share (src/core/snapshots.ts) and the SSH path's snapshot
// commands and get.snapshotinfo reader.
import { describe, expect, it } from 'vitest';
import { CesoError } from '../../src/core/errors.js';
import {
  assertNameFree,
  buildTree,
  checkCreateFlags,
  currentSnapshot,
  filesOwnedBy,
  flatten,
  resolveSnapshot,
  snapshotLeftovers,
  subtreeIds,
  validateSnapshotDescription,
  validateSnapshotName,
  withStrayRemoved,
  type RawSnapshot,
  type SnapshotDiskModel,
} from '../../src/core/snapshots.js';
import { parseSnapshotInfo, snapshotCmd } from '../../src/ssh/ops/snapshots.js';
import { errorOf, expectInvalid } from '../support/errors.js';

const raw = (id: string, name: string, state: string, children: RawSnapshot[] = []): RawSnapshot => ({
  id,
  name,
  description: id === '1' ? 'first' : '',
  createdAt: '2026-01-02T03:04:05.678901Z',
  state,
  quiesced: false,
  children,
});

// base (1) -> warm (2) -> leaf (3); base -> other (4); and a second "warm" (5) under other.
const TREE = buildTree({ name: 'web1', id: 'vm-7' }, [raw('1', 'base', 'poweredOff', [raw('2', 'warm', 'poweredOn', [raw('3', 'leaf', 'suspended')]), raw('4', 'other', 'poweredOff', [raw('5', 'warm', 'poweredOff')])])], '3');

describe('the snapshot tree', () => {
  it('gives every node its path, whole-second time, power state and whether it holds memory', () => {
    const nodes = flatten(TREE.snapshots);
    expect(nodes.map((node) => node.path)).toEqual(['base', 'base/warm', 'base/warm/leaf', 'base/other', 'base/other/warm']);
    expect(nodes.map((node) => node.memory)).toEqual([false, true, true, false, false]);
    expect(nodes[0]).toMatchObject({ id: '1', description: 'first', createdAt: '2026-01-02T03:04:05.000Z', powerState: 'poweredOff', quiesced: false });
    expect(nodes[1]?.description).toBeNull();
    expect(TREE.current).toBe('3');
    expect(buildTree({ name: 'x', id: '1' }, [raw('1', 'a', 'poweredOff')], '9').current).toBeNull();
    expect(buildTree({ name: 'x', id: '1' }, [{ ...raw('1', 'a', 'weird'), createdAt: 'not a time' }], null).snapshots[0]).toMatchObject({ powerState: null, memory: false, createdAt: 'not a time' });
  });

  it('names a snapshot by name, by path or by id', () => {
    expect(resolveSnapshot(TREE, 'leaf').id).toBe('3');
    expect(resolveSnapshot(TREE, 'base/other/warm').id).toBe('5');
    expect(resolveSnapshot(TREE, '4').name).toBe('other');
    expect(subtreeIds(resolveSnapshot(TREE, 'base/warm'))).toEqual(['2', '3']);
  });

  it('an ambiguous name is AMBIGUOUS listing every match; a name that is another one’s id too', () => {
    const error = errorOf(() => resolveSnapshot(TREE, 'warm'));
    expect(error.code).toBe('AMBIGUOUS');
    expect(error.exitCode).toBe(4);
    expect(error.message).toContain('base/warm (id 2), base/other/warm (id 5)');
    expect(error.details).toMatchObject({ matches: [{ id: '2', path: 'base/warm' }, { id: '5', path: 'base/other/warm' }] });
    const clash = buildTree({ name: 'x', id: '1' }, [raw('1', '2', 'poweredOff'), raw('2', 'b', 'poweredOff')], null);
    expect(errorOf(() => resolveSnapshot(clash, '2')).code).toBe('AMBIGUOUS');
    expect(resolveSnapshot(clash, 'b').id).toBe('2');
  });

  it('an unknown snapshot, or a VM without any, is SNAPSHOT_NOT_FOUND (exit 3)', () => {
    const unknown = errorOf(() => resolveSnapshot(TREE, 'nope'));
    expect(unknown.code).toBe('SNAPSHOT_NOT_FOUND');
    expect(unknown.exitCode).toBe(3);
    expect(unknown.hint).toContain('base/warm/leaf (id 3)');
    expect(errorOf(() => resolveSnapshot(TREE, 'base/nope')).code).toBe('SNAPSHOT_NOT_FOUND');
    const empty = buildTree({ name: 'x', id: '1' }, [], null);
    expect(errorOf(() => resolveSnapshot(empty, 'a')).message).toBe('x has no snapshots');
    expect(errorOf(() => currentSnapshot(empty)).code).toBe('SNAPSHOT_NOT_FOUND');
    expect(currentSnapshot(TREE).name).toBe('leaf');
    expect(errorOf(() => currentSnapshot({ ...TREE, current: null })).message).toContain('does not say which snapshot');
  });
});

describe('new snapshots', () => {
  it('names: 1 to 80 characters, no "/", no control characters or outer blanks, not only digits', () => {
    expect(validateSnapshotName('before upgrade (2)')).toBe('before upgrade (2)');
    expect(validateSnapshotName("it's $(fine)")).toBe("it's $(fine)");
    expectInvalid(() => validateSnapshotName(''), '1 to 80');
    expectInvalid(() => validateSnapshotName('x'.repeat(81)), '1 to 80');
    expectInvalid(() => validateSnapshotName('a/b'), '"/"');
    expectInvalid(() => validateSnapshotName('a\nb'), 'control');
    expectInvalid(() => validateSnapshotName(' a'), 'blank');
    expectInvalid(() => validateSnapshotName('42'), 'digits');
    expect(validateSnapshotDescription('one line')).toBe('one line');
    expectInvalid(() => validateSnapshotDescription('two\nlines'), 'control');
    expectInvalid(() => validateSnapshotDescription('x'.repeat(1025)), '1024');
  });

  it('a name the VM has is SNAPSHOT_EXISTS (exit 4), naming the one it has', () => {
    const error = errorOf(() => assertNameFree(TREE, 'leaf'));
    expect(error.code).toBe('SNAPSHOT_EXISTS');
    expect(error.exitCode).toBe(4);
    expect(error.details).toMatchObject({ existing: [{ id: '3', path: 'base/warm/leaf' }] });
    expect(() => assertNameFree(TREE, 'new')).not.toThrow();
  });

  it('--quiesce needs Tools running (TOOLS_NOT_RUNNING naming the fix); --memory of a stopped VM warns; not both', () => {
    const vm = { name: 'web1' };
    expectInvalid(() => checkCreateFlags(vm, { memory: true, quiesce: true }, 'poweredOn', 'guestToolsRunning'), 'exclude each other');
    const off = errorOf(() => checkCreateFlags(vm, { memory: false, quiesce: true }, 'poweredOff', 'guestToolsNotRunning'));
    expect(off).toMatchObject({ code: 'TOOLS_NOT_RUNNING', details: { powerState: 'poweredOff' } });
    expect(off.exitCode).toBe(4);
    expect(off.hint).toContain('drop --quiesce');
    const noTools = errorOf(() => checkCreateFlags(vm, { memory: false, quiesce: true }, 'poweredOn', 'guestToolsNotRunning'));
    expect(noTools.message).toContain('guestToolsNotRunning');
    expect(noTools.hint).toContain('open-vm-tools');
    expect(checkCreateFlags(vm, { memory: false, quiesce: true }, 'poweredOn', 'guestToolsRunning')).toEqual([]);
    expect(checkCreateFlags(vm, { memory: true, quiesce: false }, 'poweredOff', null)[0]).toContain('saves no running state');
    expect(checkCreateFlags(vm, { memory: true, quiesce: false }, 'poweredOn', null)).toEqual([]);
  });

  it('a failed create removes the snapshot the host made anyway, or says it could not', async () => {
    const failure = new CesoError('HOST_FAULT', 'snapshot web1: FileLocked: locked');
    expect(await withStrayRemoved(failure, async () => [])).toBe(failure);
    const removed = await withStrayRemoved(failure, async () => [{ id: '9', name: 'x', path: 'x' }]);
    expect(removed).toMatchObject({ code: 'HOST_FAULT', details: { strayRemoved: [{ id: '9' }] } });
    expect(removed.hint).toContain('removed again');
    const unchecked = await withStrayRemoved(failure, async () => {
      throw new Error('connection lost');
    });
    expect(unchecked.hint).toContain('connection lost');
    expect(unchecked.details).toMatchObject({ strayUnchecked: 'connection lost' });
  });
});

describe('the files a snapshot owns', () => {
  const d = (name: string): string => `[ds] vm/${name}`;
  const B = d('vm.vmdk');
  const D1 = d('vm-000001.vmdk');
  const D2 = d('vm-000002.vmdk');
  const D3 = d('vm-000003.vmdk');
  // S1 (top B) -> S2 (top D1) -> running on D2.
  const line: SnapshotDiskModel = {
    current: [[B, D1, D2]],
    snapshots: new Map([
      ['1', { chains: [[B]], stateFiles: [d('vm-Snapshot1.vmsn')] }],
      ['2', { chains: [[B, D1]], stateFiles: [d('vm-Snapshot2.vmsn'), d('vm-Snapshot2.vmem')] }],
    ]),
  };

  it('the latest snapshot: its state files and the running delta merged into its top', () => {
    expect(filesOwnedBy(line, ['2'])).toEqual([D2, d('vm-Snapshot2.vmem'), d('vm-Snapshot2.vmsn')].sort());
  });

  it('the first of two: the delta taken after it, merged into the base', () => {
    expect(filesOwnedBy(line, ['1'])).toEqual([D1, d('vm-Snapshot1.vmsn')].sort());
  });

  it('with its children, or all of them: every delta', () => {
    expect(filesOwnedBy(line, ['1', '2'])).toEqual([D1, D2, d('vm-Snapshot1.vmsn'), d('vm-Snapshot2.vmem'), d('vm-Snapshot2.vmsn')].sort());
  });

  it('a branch left by a revert: its own delta; with two branches after a snapshot nothing is merged', () => {
    // Reverted to S1 and running on D3 (child of B); S2's top D1 is used by nobody else.
    const branched: SnapshotDiskModel = { current: [[B, D3]], snapshots: line.snapshots };
    expect(filesOwnedBy(branched, ['2'])).toEqual([D1, d('vm-Snapshot2.vmem'), d('vm-Snapshot2.vmsn')].sort());
    expect(filesOwnedBy(branched, ['1'])).toEqual([d('vm-Snapshot1.vmsn')]);
  });

  it('a snapshot the host does not describe: only what is known', () => {
    const unknown: SnapshotDiskModel = { current: [[B, D1, D2]], snapshots: new Map([['1', { chains: [[B]], stateFiles: [] }], ['2', { chains: null, stateFiles: [d('x.vmsn')] }]]) };
    expect(filesOwnedBy(unknown, ['2'])).toEqual([d('x.vmsn')]);
    expect(filesOwnedBy(unknown, ['1'])).toEqual([D1]);
  });

  it('leftovers: owned files (and their extents) still there; once none is left, any delta off the chain and any state file', () => {
    const listing = [B, d('vm-flat.vmdk'), D1, d('vm-000001-sesparse.vmdk'), d('vm.vmx')];
    expect(snapshotLeftovers({ owned: [D2], listing, current: [[B, D1]], snapshotsLeft: 1 })).toEqual([]);
    expect(snapshotLeftovers({ owned: [D1], listing, current: [[B]], snapshotsLeft: 1 })).toEqual([D1, d('vm-000001-sesparse.vmdk')].sort());
    expect(snapshotLeftovers({ owned: [], listing: [...listing, d('old-Snapshot4.vmem')], current: [[B]], snapshotsLeft: 0 })).toEqual([d('old-Snapshot4.vmem'), D1, d('vm-000001-sesparse.vmdk')].sort());
    expect(snapshotLeftovers({ owned: [], listing, current: [[B, D1]], snapshotsLeft: 0 })).toEqual([]);
  });
});

describe('snapshots over SSH', () => {
  it('quotes every argument of the vim-cmd commands', () => {
    expect(snapshotCmd.create('12', "it's", 'a $(b)', true, false)).toBe("vim-cmd vmsvc/snapshot.create '12' 'it'\\''s' 'a $(b)' '1' '0'");
    expect(snapshotCmd.revert('12', '3', true)).toBe("vim-cmd vmsvc/snapshot.revert '12' '3' '1'");
    expect(snapshotCmd.remove('12', '3', false)).toBe("vim-cmd vmsvc/snapshot.remove '12' '3' '0'");
    expect(snapshotCmd.removeAll('12')).toBe("vim-cmd vmsvc/snapshot.removeall '12'");
    expect(snapshotCmd.get('12')).toBe("vim-cmd vmsvc/snapshot.get '12'");
    expect(() => snapshotCmd.get("1'; reboot")).toThrow(CesoError);
  });

  it('reads get.snapshotinfo (where the host has it): the current snapshot and who was quiesced', () => {
    const dump = `(vim.vm.SnapshotInfo) {
   currentSnapshot = 'vim.vm.Snapshot:12-snapshot-2',
   rootSnapshotList = (vim.vm.SnapshotTree) [
      (vim.vm.SnapshotTree) {
         snapshot = 'vim.vm.Snapshot:12-snapshot-1',
         vm = 'vim.VirtualMachine:12',
         name = "base",
         description = "",
         id = 1,
         createTime = "2015-02-23T18:12:50.123Z",
         state = "poweredOff",
         quiesced = false,
         backupManifest = <unset>,
         childSnapshotList = (vim.vm.SnapshotTree) [
            (vim.vm.SnapshotTree) {
               snapshot = 'vim.vm.Snapshot:12-snapshot-2',
               vm = 'vim.VirtualMachine:12',
               name = "calm",
               description = "quiet",
               id = 2,
               createTime = "2015-02-23T18:20:00Z",
               state = "poweredOff",
               quiesced = true,
               backupManifest = <unset>,
               childSnapshotList = <unset>,
               replaySupported = false
            }
         ],
         replaySupported = false
      }
   ]
}
`;
    const info = parseSnapshotInfo({ output: dump, code: 0 });
    expect(info.current).toBe('2');
    expect([...info.quiesced]).toEqual([
      ['1', false],
      ['2', true],
    ]);
    expect(parseSnapshotInfo({ output: "Invalid command 'vmsvc/get.snapshotinfo'", code: 1 })).toEqual({ current: null, quiesced: new Map() });
    expect(parseSnapshotInfo(undefined).current).toBeNull();
  });
});

