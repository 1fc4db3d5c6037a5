package sim

import (
	"fmt"
	"log"
	"time"

	"cesotestbed/sim/cloudinit"
	"cesotestbed/vmx"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// The fake guest reports "ready" as a guest running cloud-init with ceso's user data does:
// the last runcmd entry (readyRunCmd) touches a flag file in the instance's directory and sets
// guestinfo.ceso.ready to the instance-id with vmware-rpctool; a per-boot script installed by
// write_files (readyPerBootPath) repeats the report on later boots of the same instance, once
// the flag exists.
//
// Modelled state (ciState, kept with the disk and copied with it):
//   - userDone: the instance's per-instance modules ran (write_files, runcmd): the next boot of
//     the same instance-id is a "later boot";
//   - readyFlag: /var/lib/cloud/instance/ceso-ready exists for this instance (runcmd had the entry);
//   - perBootScript: the per-boot script is on the disk, executable (it survives a change of
//     instance-id, the flag does not).
//
// Timing: the report arrives readyDelay (default 500 ms, POST /testbed/delay
// {"method":"guest.ready"}) after the guest's IP shows. Guest-set keys are runtime state: they are
// never rendered into the .vmx, a new boot (reset, guest reboot) or power off removes them.

const (
	readyKey         = "guestinfo.ceso.ready"
	readyRunCmd      = `touch /var/lib/cloud/instance/ceso-ready && vmware-rpctool "info-set guestinfo.ceso.ready $(cat /var/lib/cloud/data/instance-id)"`
	readyPerBootPath = "/var/lib/cloud/scripts/per-boot/ceso-ready"

	defaultReadyDelay = 500 * time.Millisecond
)

// readyPlan is what one boot's cloud-init will do about the ready report.
type readyPlan struct {
	ci         *ciState
	instanceID string
	firstBoot  bool // the per-instance modules run in this boot
	runcmd     bool // (first boot) the merged runcmd has readyRunCmd
	perBoot    bool // (first boot) the merged write_files installs the executable per-boot script
	report     bool
}

// userData returns the decoded guestinfo.userdata; ok is false when it is absent for cloud-init.
func userData(vm *simulator.VirtualMachine) (string, bool) {
	raw, ok := extraConfigValue(vm, "guestinfo.userdata")
	if !ok {
		return "", false
	}
	enc, _ := extraConfigValue(vm, "guestinfo.userdata.encoding")
	text, err := cloudinit.Decode(raw, enc)
	if err != nil {
		log.Printf("%s: guestinfo.userdata: %v (cloud-init would ignore it)", vm.Name, err)
		return "", false
	}
	if cloudinit.Absent(text) {
		return "", false
	}
	return text, true
}

// planReady decides at boot whether and with what value this boot reports ready. st is the
// disk's cloud-init state after bootIdentity. Caller holds the VM's lock.
func (t *Testbed) planReady(vm *simulator.VirtualMachine, st *ciState) *readyPlan {
	if st == nil {
		return nil
	}
	t.mu.Lock()
	p := &readyPlan{ci: st, instanceID: st.instanceID, firstBoot: !st.userDone}
	if !p.firstBoot {
		p.report = st.readyFlag && st.perBootScript
	}
	t.mu.Unlock()
	if p.firstBoot {
		if ud, ok := userData(vm); ok {
			cc := cloudinit.MergeCloudConfig([]byte(ud))
			for _, n := range cc.Notes {
				log.Printf("%s: user data: %s", vm.Name, n)
			}
			p.runcmd = cc.RunCmdHas(readyRunCmd)
			p.perBoot = cc.WritesExecutable(readyPerBootPath)
		}
		p.report = p.runcmd
	}
	return p
}

// scheduleReady arms the boot's report, after after (the IP delay) plus the ready delay.
func (t *Testbed) scheduleReady(ref types.ManagedObjectReference, gs *guestState, after time.Duration) {
	if gs.ready == nil {
		return
	}
	t.mu.Lock()
	d := t.readyDelay
	t.mu.Unlock()
	time.AfterFunc(after+d, func() { t.fireReady(ref, gs) })
}

// fireReady is the moment the guest's final stage runs: the per-instance modules are recorded
// on the disk, and the report (if any) sets the key.
func (t *Testbed) fireReady(ref types.ManagedObjectReference, gs *guestState) {
	vm := vmByRef(ref)
	if vm == nil {
		return
	}
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil || vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			return
		}
		if b := vm.Summary.Runtime.BootTime; b == nil || !b.Equal(gs.boot) {
			return // rebooted meanwhile
		}
		t.mu.Lock()
		current := t.boots[ref.Value] == gs
		p := gs.ready
		if current && p.firstBoot {
			p.ci.userDone = true
			p.ci.readyFlag = p.runcmd
			if p.perBoot {
				p.ci.perBootScript = true
			}
		}
		t.mu.Unlock()
		if current && p.report {
			t.setGuestKey(vm, readyKey, p.instanceID)
			log.Printf("%s: guest reports %s = %s", vm.Name, readyKey, p.instanceID)
		}
	})
}

// setGuestKey sets an extraConfig key as the guest does (vmware-rpctool info-set): visible to
// RetrieveProperties and the property collector, never written to the .vmx. Caller holds the
// VM's lock.
func (t *Testbed) setGuestKey(vm *simulator.VirtualMachine, key, value string) {
	var ec []types.BaseOptionValue
	found := false
	for _, ov := range vm.Config.ExtraConfig {
		o := ov.GetOptionValue()
		if o.Key == key {
			if !found {
				ec = append(ec, &types.OptionValue{Key: key, Value: value})
				found = true
			}
			continue
		}
		ec = append(ec, ov)
	}
	if !found {
		ec = append(ec, &types.OptionValue{Key: key, Value: value})
	}
	simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.extraConfig", Val: ec}})
	t.mu.Lock()
	if t.guestKeys[vm.Self.Value] == nil {
		t.guestKeys[vm.Self.Value] = map[string]string{}
	}
	t.guestKeys[vm.Self.Value][key] = value
	t.mu.Unlock()
}

// clearGuestKeys removes what the guest set (the VM's process ended or the guest restarts).
// A key that someone changed through the API since is left alone. Caller holds the VM's lock.
func (t *Testbed) clearGuestKeys(vm *simulator.VirtualMachine) {
	t.mu.Lock()
	keys := t.guestKeys[vm.Self.Value]
	delete(t.guestKeys, vm.Self.Value)
	t.mu.Unlock()
	if len(keys) == 0 || vm.Config == nil {
		return
	}
	var ec []types.BaseOptionValue
	changed := false
	for _, ov := range vm.Config.ExtraConfig {
		o := ov.GetOptionValue()
		if v, ok := keys[o.Key]; ok && fmt.Sprint(o.Value) == v {
			changed = true
			continue
		}
		ec = append(ec, ov)
	}
	if changed {
		if ec == nil {
			ec = []types.BaseOptionValue{}
		}
		simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.extraConfig", Val: ec}})
	}
}

// isGuestKey reports whether key=value on the VM was set by the guest.
func (t *Testbed) isGuestKey(ref types.ManagedObjectReference, key string, value interface{}) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.guestKeys[ref.Value][key]
	return ok && fmt.Sprint(value) == v
}

// dropGuestKeys removes guest-set keys from a rendered .vmx (runtime state is not in the file).
func (t *Testbed) dropGuestKeys(ref types.ManagedObjectReference, f *vmx.File) {
	t.mu.Lock()
	keys := t.guestKeys[ref.Value]
	t.mu.Unlock()
	for k, v := range keys {
		if got, ok := f.Get(k); ok && got == v {
			f.Delete(k)
		}
	}
}
