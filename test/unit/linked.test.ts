import { describe, expect, it } from 'vitest';
import { assertNoDependents, assertSnapshotsFree, dependentsOf } from '../../src/core/linked.js';
import { isLinkedBase, linkedDiskKB, nextLinkedBaseName } from '../../src/core/provisioning.js';
import { createRequestFrom } from '../../src/core/requests.js';
import { CesoError } from '../../src/core/errors.js';
import type { SnapshotNode } from '../../src/core/snapshots.js';

const GB = 1024 * 1024;

function node(id: string, name: string, children: SnapshotNode[] = []): SnapshotNode {
  return { id, name, path: name, description: null, createdAt: null, powerState: 'poweredOff', memory: false, quiesced: false, children };
}

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof CesoError ? error.code : 'other';
  }
  return undefined;
}

describe('linked clone rules', () => {
  it('names base snapshots ceso-linked-base, then -2, -3', () => {
    expect(nextLinkedBaseName([])).toBe('ceso-linked-base');
    expect(nextLinkedBaseName(['ceso-linked-base', 'x'])).toBe('ceso-linked-base-2');
    expect(nextLinkedBaseName(['ceso-linked-base', 'ceso-linked-base-2'])).toBe('ceso-linked-base-3');
    expect(isLinkedBase('ceso-linked-base-12')).toBe(true);
    expect(isLinkedBase('ceso-linked-baseline')).toBe(false);
  });

  it('keeps the parent size, ignores a default --disk and refuses a bigger one (exit 4, naming --add-disk)', () => {
    expect(linkedDiskKB(40, 10 * GB, { fromDefaults: true, role: 'template' })).toBe(10 * GB);
    expect(linkedDiskKB(10, 10 * GB, { fromDefaults: false, role: 'template' })).toBe(10 * GB);
    try {
      linkedDiskKB(30, 10 * GB, { fromDefaults: false, role: 'template' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(CesoError);
      expect((error as CesoError).code).toBe('CONFLICT');
      expect((error as CesoError).hint).toContain('--add-disk 20');
    }
    expect(codeOf(() => linkedDiskKB(5, 10 * GB, { fromDefaults: false, role: 'template' }))).toBe('INVALID_INPUT');
  });

  it('parses --linked and --add-disk', () => {
    const { request } = createRequestFrom('web1', { template: 't', linked: true, 'add-disk': ['5', '0.5'] }, {});
    expect(request.linked).toBe(true);
    expect(request.addDisksKB).toEqual([5 * GB, 512 * 1024]);
    expect(codeOf(() => createRequestFrom('web1', { template: 't', 'add-disk': ['0'] }, {}))).toBe('INVALID_INPUT');
  });

  it('finds the VMs whose disks hang from a folder, by backing parent or by marker', () => {
    const template = { id: '1', vmxPath: '[ds1] tpl/tpl.vmx' };
    const dependents = dependentsOf(template, [
      { name: 'tpl', id: '1', parents: ['[ds1] tpl/tpl.vmdk'], markers: {} },
      { name: 'b', id: '3', parents: [], markers: { 'ceso.parentDisk': '[ds1] tpl/tpl.vmdk' } },
      { name: 'a', id: '2', parents: ['[ds1] tpl/tpl.vmdk'], markers: new Map() },
      { name: 'c', id: '4', parents: ['[ds1] tplx/tplx.vmdk'], markers: {} },
    ]);
    expect(dependents.map((item) => item.name)).toEqual(['a', 'b']);
    expect(codeOf(() => assertNoDependents({ name: 'tpl' }, dependents))).toBe('HAS_DEPENDENTS');
    expect(codeOf(() => assertNoDependents({ name: 'tpl' }, []))).toBeUndefined();
  });

  it('refuses removing a base snapshot or one above it while children exist, allows others', () => {
    const roots = [node('1', 'before', [node('2', 'ceso-linked-base', [node('3', 'after')])])];
    const dependents = [{ name: 'a', id: '9', parent: '[ds1] tpl/tpl.vmdk' }];
    expect(codeOf(() => assertSnapshotsFree({ name: 'tpl' }, roots, ['2'], dependents))).toBe('HAS_DEPENDENTS');
    expect(codeOf(() => assertSnapshotsFree({ name: 'tpl' }, roots, ['1'], dependents))).toBe('HAS_DEPENDENTS');
    expect(codeOf(() => assertSnapshotsFree({ name: 'tpl' }, roots, ['3'], dependents))).toBeUndefined();
    expect(codeOf(() => assertSnapshotsFree({ name: 'tpl' }, roots, ['2'], []))).toBeUndefined();
  });
});
