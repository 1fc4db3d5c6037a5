package vmx

import (
	"regexp"
	"strings"
)

var topLevelOwned = map[string]bool{
	".encoding": true, "config.version": true, "virtualhw.version": true, "displayname": true,
	"guestos": true, "firmware": true, "numvcpus": true, "cpuid.corespersocket": true, "memsize": true,
	"uuid.bios": true, "vc.uuid": true, "annotation": true,
}

var deviceKeyRE = regexp.MustCompile(`^(scsi|sata|nvme|ide|ethernet)(\d+)(:\d+)?\.(.+)$`)

var deviceOwned = map[string]bool{
	"present": true, "virtualdev": true, "sharedbus": true, "devicetype": true,
	"filename": true, "mode": true, "networkname": true, "addresstype": true, "generatedaddress": true,
	"address": true, "startconnected": true, "dvs.switchid": true, "dvs.portgroupid": true,
}

// IsHardwareKey reports whether FromVM owns key: a key that maps to a typed property of the
// VM's configuration (name, guest OS, CPU, memory, firmware, UUIDs, annotation, controllers,
// disks, NICs) rather than to extraConfig. Every other key of a .vmx is extraConfig on a real
// host (guestinfo.*, nvram, pciBridge0.present, ethernet0.pciSlotNumber, ...).
func IsHardwareKey(key string) bool {
	k := strings.ToLower(key)
	if topLevelOwned[k] {
		return true
	}
	m := deviceKeyRE.FindStringSubmatch(k)
	return m != nil && deviceOwned[m[4]]
}
