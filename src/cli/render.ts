import { dump } from 'js-yaml';
import type { RenderedPlan } from '../core/plan.js';
import type { VmDetails, VmSnapshot } from '../core/vm.js';
import { renderFields, renderTable } from './table.js';

export function renderVm(vm: VmDetails): string {
  const sections = [
    renderFields([
      ['Name', vm.name],
      ['Id', vm.id],
      ['UUID', vm.uuid],
      ['Status', vm.status],
      ['CPU', vm.cpu],
      ['Memory MB', vm.memoryMB],
      ['IP', vm.ip],
      ['Guest OS', vm.guestId],
      ['Firmware', vm.firmware],
      ['VMX', vm.vmxPath],
      ['Managed by ceso', vm.managed],
      ['Linked clone', vm.linked],
      ['Expires', vm.expiresAt],
      ['Annotation', vm.annotation],
    ]),
  ];
  if (vm.disks.length > 0) sections.push(renderTable(vm.disks, [
    { header: 'DISK', value: (disk) => disk.file },
    { header: 'GB', value: (disk) => disk.capacityGB },
    { header: 'THIN', value: (disk) => disk.thin },
    { header: 'PARENT', value: (disk) => disk.parent },
  ]));
  if (vm.nics.length > 0) sections.push(renderTable(vm.nics, [
    { header: 'NIC', value: (nic) => nic.label },
    { header: 'NETWORK', value: (nic) => nic.network },
    { header: 'MAC', value: (nic) => nic.mac },
    { header: 'TYPE', value: (nic) => nic.type },
  ]));
  if (vm.snapshots.length > 0) sections.push(`Snapshots:\n${snapshotLines(vm.snapshots, '  ').join('\n')}`);
  if (vm.guestinfo.length > 0) sections.push(`Guestinfo keys:\n${vm.guestinfo.map((key) => `  ${key.key} (${key.bytes} bytes)`).join('\n')}`);
  const markers = Object.entries(vm.markers);
  if (markers.length > 0) sections.push(`Markers:\n${markers.map(([key, value]) => `  ${key} = ${value}`).join('\n')}`);
  return sections.join('\n\n');
}

function snapshotLines(snapshots: VmSnapshot[], indent: string): string[] {
  return snapshots.flatMap((snapshot) => [
    `${indent}${snapshot.name}${snapshot.current ? ' (current)' : ''}`,
    ...snapshotLines(snapshot.children, `${indent}  `),
  ]);
}

export function renderPlanText(plan: RenderedPlan): string {
  const lines = [`Plan: ${plan.operation} ${plan.target} (via ${plan.via}); nothing has been changed.`];
  for (const step of plan.steps) {
    lines.push(`  ${step.step}. ${step.description}`);
    lines.push(step.kind === 'ssh' ? `     $ ${step.command}` : `     ${step.method} on ${step.object}`);
  }
  if (plan.steps.length === 0) lines.push('  (no steps: nothing to do)');
  for (const warning of plan.warnings) lines.push(`Warning: ${warning}`);
  if (plan.review !== undefined) lines.push('', 'Review (decoded; secrets masked):', dump(plan.review, { lineWidth: -1, noRefs: true }).trimEnd());
  return lines.join('\n');
}
