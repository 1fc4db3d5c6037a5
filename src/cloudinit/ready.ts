/**
 * How a guest tells the host that cloud-init has finished what the user asked for.
 *
 * cloud-init publishes no "done" key of its own, so ceso's user data ends with a command that
 * sets `guestinfo.ceso.ready` to the guest's instance-id (a guest-set guestinfo key shows in the
 * VM's config.extraConfig). The instance-id is read in the guest at run time, so the same user
 * data serves every clone. runcmd runs once per instance, in the scripts-user stage after every
 * user script; later boots of the same instance report through a per-boot script that only
 * speaks once the first boot's runcmd has (the flag file lives in the per-instance directory, so
 * a clone's first boot never reports early). Guest-set keys live as long as the VM's process: a
 * powered-off VM has none.
 */

export const READY_KEY = 'guestinfo.ceso.ready';

/** Runs in the guest; prints nothing on success. */
const REPORT = 'vmware-rpctool "info-set guestinfo.ceso.ready $(cat /var/lib/cloud/data/instance-id)"';
const FLAG = '/var/lib/cloud/instance/ceso-ready';

/** The last runcmd entry of every VM ceso makes. */
export const READY_RUNCMD = `touch ${FLAG} && ${REPORT}`;

export const READY_PER_BOOT_PATH = '/var/lib/cloud/scripts/per-boot/ceso-ready';

export const READY_PER_BOOT_SCRIPT = `#!/bin/sh
# ceso: tells the host this boot is ready, on every boot after the first (whose runcmd says so).
[ -e ${FLAG} ] || exit 0
exec ${REPORT}
`;

/** The write_files entry that installs the per-boot script. */
export function readyPerBootFile(): Record<string, unknown> {
  return { path: READY_PER_BOOT_PATH, permissions: '0755', owner: 'root:root', content: READY_PER_BOOT_SCRIPT };
}
