import { describe, expect, it } from 'vitest';
import { byNameThenId, compareNatural, compareText } from '../../src/core/order.js';

describe('orders without the locale', () => {
  it('compares text case-insensitively first, then by code unit', () => {
    expect(['web', 'Api', 'api', 'Web', 'db'].sort(compareText)).toEqual(['Api', 'api', 'db', 'Web', 'web']);
    expect(compareText('same', 'same')).toBe(0);
  });

  it('compares runs of digits as numbers, whatever their length', () => {
    expect(['vm-10', 'vm-9', 'vm-100', 'vm-1'].sort(compareNatural)).toEqual(['vm-1', 'vm-9', 'vm-10', 'vm-100']);
    expect(['11', '6', '10'].sort(compareNatural)).toEqual(['6', '10', '11']);
    expect(compareNatural('9007199254740993', '9007199254740992')).toBeGreaterThan(0);
    expect(compareNatural('007', '7')).not.toBe(0);
    expect(compareNatural('vm-2a', 'vm-2b')).toBeLessThan(0);
    expect(compareNatural('vm-2', 'vm-2-b')).toBeLessThan(0);
    expect(compareNatural('a', 'a')).toBe(0);
  });

  it('orders VMs by name, then by id for a shared name', () => {
    const vms = [
      { name: 'web', id: 'vm-10' },
      { name: 'db', id: 'vm-3' },
      { name: 'web', id: 'vm-9' },
    ];
    expect(vms.sort(byNameThenId).map((vm) => vm.id)).toEqual(['vm-3', 'vm-9', 'vm-10']);
  });
});
