package sim

import (
	"fmt"
	"hash/fnv"
	"log"
	"strings"
	"time"

	"cesotestbed/sim/cloudinit"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// guestState is what the fake guest reports during one boot.
type guestState struct {
	boot    time.Time
	readyAt time.Time
	ident   *bootIdentity
	ready   *readyPlan // cloud-init's ready report for this boot (ready.go), nil: none
}

type bootIdentity struct {
	hostname string
	addrs    map[string][]cloudinit.Address // by lower-case MAC
}

// ciState is cloud-init's state on a disk: the instance-id it last configured and what it set.
// It lives with the disk (copied with CopyVirtualDisk, like /var/lib/cloud on a real disk), so a
// clone that keeps its source's instance-id keeps its source's hostname and addresses.
type ciState struct {
	instanceID string
	md         *cloudinit.Identity
	hostname   string
	// ready report state (ready.go)
	userDone      bool // this instance's per-instance modules (write_files, runcmd) ran
	readyFlag     bool // /var/lib/cloud/instance/ceso-ready exists for this instance
	perBootScript bool // the executable per-boot report script is on the disk (any instance wrote it)
}

type nicInfo struct {
	key     int32
	mac     string
	network string
}

func vmNICs(vm *simulator.VirtualMachine) []nicInfo {
	var out []nicInfo
	for _, d := range vm.Config.Hardware.Device {
		c, ok := d.(types.BaseVirtualEthernetCard)
		if !ok {
			continue
		}
		e := c.GetVirtualEthernetCard()
		n := nicInfo{key: e.Key, mac: strings.ToLower(e.MacAddress)}
		if b, ok := e.Backing.(*types.VirtualEthernetCardNetworkBackingInfo); ok {
			n.network = b.DeviceName
		}
		out = append(out, n)
	}
	return out
}

func firstDisk(vm *simulator.VirtualMachine) string {
	for _, d := range vm.Config.Hardware.Device {
		if disk, ok := d.(*types.VirtualDisk); ok {
			if b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
				return b.GetVirtualDeviceFileBackingInfo().FileName
			}
		}
	}
	return ""
}

func extraConfigValue(vm *simulator.VirtualMachine, key string) (string, bool) {
	for _, ov := range vm.Config.ExtraConfig {
		o := ov.GetOptionValue()
		if strings.EqualFold(o.Key, key) {
			return fmt.Sprint(o.Value), true
		}
	}
	return "", false
}

// dhcpAddress is a deterministic DHCP-like lease in 198.51.100.0/24 (documentation range).
func dhcpAddress(mac string) cloudinit.Address {
	h := fnv.New32a()
	_, _ = h.Write([]byte(strings.ToLower(mac)))
	return cloudinit.Address{IP: fmt.Sprintf("198.51.100.%d", 10+h.Sum32()%240), Prefix: 24}
}

func defaultHostname(vm *simulator.VirtualMachine) string {
	var b strings.Builder
	for _, r := range strings.ToLower(vm.Name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		s = "localhost"
	}
	return s
}

// metadata returns the decoded guestinfo.metadata identity, or nil when absent or unreadable.
func metadata(vm *simulator.VirtualMachine) *cloudinit.Identity {
	raw, ok := extraConfigValue(vm, "guestinfo.metadata")
	if !ok {
		return nil
	}
	enc, _ := extraConfigValue(vm, "guestinfo.metadata.encoding")
	text, err := cloudinit.Decode(raw, enc)
	if err != nil || cloudinit.Absent(text) {
		if err != nil {
			log.Printf("%s: guestinfo.metadata: %v (cloud-init would ignore it)", vm.Name, err)
		}
		return nil
	}
	id, err := cloudinit.FromMetadata(text)
	if err != nil {
		log.Printf("%s: guestinfo.metadata: %v (cloud-init would ignore it)", vm.Name, err)
		return nil
	}
	return id
}

// bootIdentity plays cloud-init at boot. It also returns the disk's cloud-init state when
// cloud-init's VMware datasource runs in this boot (guestinfo.metadata or guestinfo.userdata
// present), nil otherwise. Caller holds the VM's lock.
func (t *Testbed) bootIdentity(vm *simulator.VirtualMachine) (*bootIdentity, *ciState) {
	nics := vmNICs(vm)
	disk := canon(firstDisk(vm))
	md := metadata(vm)
	_, hasUserData := userData(vm)

	t.mu.Lock()
	st := t.ciStates[disk]
	var active *ciState
	if md != nil || hasUserData {
		iid := ""
		if md != nil {
			iid = md.InstanceID
		}
		if iid == "" {
			iid = vm.Config.Uuid // cloud-init falls back to the DMI product UUID
		}
		if st == nil || st.instanceID != iid {
			hostname := ""
			if md != nil {
				hostname = md.Hostname
			}
			if hostname == "" {
				if st != nil {
					hostname = st.hostname
				} else {
					hostname = defaultHostname(vm)
				}
			}
			ns := &ciState{instanceID: iid, md: md, hostname: hostname}
			if st != nil {
				ns.perBootScript = st.perBootScript // a file on the disk, whatever the instance
			}
			st = ns
			if disk != "" {
				t.ciStates[disk] = st
			}
		}
		active = st
	}
	t.mu.Unlock()

	id := &bootIdentity{addrs: map[string][]cloudinit.Address{}}
	if st == nil {
		id.hostname = defaultHostname(vm)
	} else {
		id.hostname = st.hostname
	}
	if len(nics) == 0 {
		return id, active
	}
	if st == nil || st.md == nil || !st.md.HasNetwork {
		// no network config: DHCP on the first NIC (cloud-init's fallback)
		id.addrs[nics[0].mac] = []cloudinit.Address{dhcpAddress(nics[0].mac)}
		return id, active
	}
	used := map[string]bool{}
	for i, it := range st.md.Interfaces {
		var nic *nicInfo
		if it.MAC != "" {
			for j := range nics {
				if nics[j].mac == it.MAC {
					nic = &nics[j]
				}
			}
		} else if i < len(nics) {
			nic = &nics[i]
		}
		if nic == nil || used[nic.mac] {
			continue // a netplan entry that matches no NIC configures nothing
		}
		used[nic.mac] = true
		addrs := append([]cloudinit.Address(nil), it.Addresses...)
		if it.DHCP {
			addrs = append(addrs, dhcpAddress(nic.mac))
		}
		id.addrs[nic.mac] = addrs
	}
	return id, active
}

// syncGuest updates guest.* and summary.guest.* from the power state. Caller holds the VM's lock.
func (t *Testbed) syncGuest(vm *simulator.VirtualMachine) {
	if vm.Guest == nil || vm.Config == nil {
		return
	}
	ref := vm.Self.Value
	on := vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
	guestID := vm.Config.GuestId
	fullName := guestFullName(guestID)
	changes := []types.PropertyChange{
		{Name: "guest.guestId", Val: guestID},
		{Name: "guest.guestFullName", Val: fullName},
		{Name: "guest.toolsVersion", Val: "12352"},
		{Name: "guest.toolsVersionStatus2", Val: string(types.VirtualMachineToolsVersionStatusGuestToolsUnmanaged)},
		{Name: "summary.guest.guestId", Val: guestID},
		{Name: "summary.guest.guestFullName", Val: fullName},
		{Name: "summary.guest.toolsVersionStatus2", Val: string(types.VirtualMachineToolsVersionStatusGuestToolsUnmanaged)},
	}
	if !on {
		t.mu.Lock()
		delete(t.boots, ref)
		t.mu.Unlock()
		t.clearGuestKeys(vm) // guest-set keys live as long as the VM's process
		changes = append(changes,
			types.PropertyChange{Name: "runtime.bootTime", Val: nil},
			types.PropertyChange{Name: "guest.toolsStatus", Val: types.VirtualMachineToolsStatusToolsNotRunning},
			types.PropertyChange{Name: "guest.toolsRunningStatus", Val: string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning)},
			types.PropertyChange{Name: "guest.guestState", Val: "notRunning"},
			types.PropertyChange{Name: "guest.ipAddress", Val: ""},
			types.PropertyChange{Name: "guest.hostName", Val: ""},
			types.PropertyChange{Name: "guest.net", Val: []types.GuestNicInfo{}},
			types.PropertyChange{Name: "summary.guest.toolsStatus", Val: types.VirtualMachineToolsStatusToolsNotRunning},
			types.PropertyChange{Name: "summary.guest.toolsRunningStatus", Val: string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning)},
			types.PropertyChange{Name: "summary.guest.ipAddress", Val: ""},
			types.PropertyChange{Name: "summary.guest.hostName", Val: ""},
			types.PropertyChange{Name: "guestHeartbeatStatus", Val: types.ManagedEntityStatusGray},
			types.PropertyChange{Name: "summary.quickStats.guestHeartbeatStatus", Val: types.ManagedEntityStatusGray},
		)
		simulator.Map.Update(vm, changes)
		return
	}

	// vcsim's power tasks set only summary.runtime.bootTime
	var boot time.Time
	if vm.Summary.Runtime.BootTime != nil {
		boot = *vm.Summary.Runtime.BootTime
	}
	if vm.Runtime.BootTime == nil || !vm.Runtime.BootTime.Equal(boot) {
		changes = append(changes, types.PropertyChange{Name: "runtime.bootTime", Val: boot})
	}
	t.mu.Lock()
	gs := t.boots[ref]
	delay := t.ipDelay
	t.mu.Unlock()
	if gs == nil || !gs.boot.Equal(boot) {
		ident, ci := t.bootIdentity(vm)
		gs = &guestState{boot: boot, readyAt: time.Now().Add(delay), ident: ident}
		gs.ready = t.planReady(vm, ci)
		t.clearGuestKeys(vm) // a new boot: the previous boot's report is gone
		t.mu.Lock()
		t.boots[ref] = gs
		t.mu.Unlock()
		t.scheduleReady(vm.Self, gs, delay)
		if delay > 0 {
			vmRef := vm.Self
			time.AfterFunc(delay+20*time.Millisecond, func() { t.afterChange([]types.ManagedObjectReference{vmRef}) })
		}
	}
	ready := !time.Now().Before(gs.readyAt)

	var nets []types.GuestNicInfo
	primary := ""
	hostname := ""
	if ready {
		hostname = gs.ident.hostname
		for _, n := range vmNICs(vm) {
			info := types.GuestNicInfo{Network: n.network, MacAddress: n.mac, Connected: true, DeviceConfigId: n.key}
			addrs := gs.ident.addrs[n.mac]
			if len(addrs) > 0 {
				cfg := &types.NetIpConfigInfo{}
				for _, a := range addrs {
					info.IpAddress = append(info.IpAddress, a.IP)
					cfg.IpAddress = append(cfg.IpAddress, types.NetIpConfigInfoIpAddress{
						IpAddress: a.IP, PrefixLength: int32(a.Prefix), State: string(types.NetIpConfigInfoIpAddressStatusPreferred),
					})
				}
				info.IpConfig = cfg
				if primary == "" {
					primary = addrs[0].IP
				}
			}
			nets = append(nets, info)
		}
	}
	if nets == nil {
		nets = []types.GuestNicInfo{}
	}
	changes = append(changes,
		types.PropertyChange{Name: "guest.toolsStatus", Val: types.VirtualMachineToolsStatusToolsOk},
		types.PropertyChange{Name: "guest.toolsRunningStatus", Val: string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)},
		types.PropertyChange{Name: "guest.guestState", Val: "running"},
		types.PropertyChange{Name: "guest.guestFamily", Val: "linuxGuest"},
		types.PropertyChange{Name: "guest.ipAddress", Val: primary},
		types.PropertyChange{Name: "guest.hostName", Val: hostname},
		types.PropertyChange{Name: "guest.net", Val: nets},
		types.PropertyChange{Name: "summary.guest.toolsStatus", Val: types.VirtualMachineToolsStatusToolsOk},
		types.PropertyChange{Name: "summary.guest.toolsRunningStatus", Val: string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)},
		types.PropertyChange{Name: "summary.guest.ipAddress", Val: primary},
		types.PropertyChange{Name: "summary.guest.hostName", Val: hostname},
		types.PropertyChange{Name: "guestHeartbeatStatus", Val: types.ManagedEntityStatusGreen},
		types.PropertyChange{Name: "summary.quickStats.guestHeartbeatStatus", Val: types.ManagedEntityStatusGreen},
	)
	simulator.Map.Update(vm, changes)
}

func guestFullName(id string) string {
	switch id {
	case "ubuntu64Guest":
		return "Ubuntu Linux (64-bit)"
	case "debian10_64Guest":
		return "Debian GNU/Linux 10 (64-bit)"
	case "debian11_64Guest":
		return "Debian GNU/Linux 11 (64-bit)"
	case "centos7_64Guest":
		return "CentOS 7 (64-bit)"
	case "otherLinux64Guest":
		return "Other Linux (64-bit)"
	case "otherGuest":
		return "Other (32-bit)"
	}
	return id
}

// rebootGuest is RebootGuest: vcsim does not implement it. The guest restarts: a new boot
// time, and cloud-init runs again (a new instance-id applies new network config).
func (t *Testbed) rebootGuest(ref types.ManagedObjectReference) types.BaseMethodFault {
	vm := vmByRef(ref)
	if vm == nil {
		return &types.ManagedObjectNotFound{Obj: ref}
	}
	var fault types.BaseMethodFault
	simulator.Map.WithLock(vm, func() {
		if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			fault = &types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOn, ExistingState: vm.Runtime.PowerState}
			return
		}
		now := time.Now()
		if b := vm.Summary.Runtime.BootTime; b != nil && !now.After(*b) {
			now = b.Add(time.Millisecond)
		}
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "runtime.bootTime", Val: now},
			{Name: "summary.runtime.bootTime", Val: now},
		})
	})
	return fault
}
