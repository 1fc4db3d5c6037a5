package esxishell

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/vim25/types"
)

// Dump renders a vSphere data object the way hostd's vim-cmd prints it (Vmodl pretty
// printing, newer-host style, as in esxi-shell.md):
//
//	(vim.vm.Summary) {
//	   vm = 'vim.VirtualMachine:10',
//	   runtime = (vim.vm.RuntimeInfo) {
//	      powerState = "poweredOn",
//	   },
//	   overallStatus = "green",
//	}
//
// Every member line ends in ", " (comma and a trailing space); strings are printed raw
// between double quotes (quotes inside are NOT escaped, a real quirk); managed object
// references print as 'vim.Type:value'; unset optional values as <unset>; arrays as
// "(elemType) [" elements "]" with ", " after every element but the last. Only the
// members of get.summary / get.guest were seen verbatim; the array layout and the vmodl
// type names of less common types are reconstructed.
func Dump(v interface{}) string {
	return dumpValue(reflect.ValueOf(v), 0)
}

const indentUnit = "   "

func ind(n int) string { return strings.Repeat(indentUnit, n) }

var (
	timeType = reflect.TypeOf(time.Time{})
	morType  = reflect.TypeOf(types.ManagedObjectReference{})
)

func dumpValue(v reflect.Value, depth int) string {
	if !v.IsValid() {
		return "<unset>"
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return "<unset>"
		}
		return dumpValue(v.Elem(), depth)
	case reflect.Ptr:
		if v.IsNil() {
			return "<unset>"
		}
		return dumpValue(v.Elem(), depth)
	case reflect.Struct:
		switch v.Type() {
		case timeType:
			t := v.Interface().(time.Time)
			return `"` + t.UTC().Format("2006-01-02T15:04:05.000000Z") + `"`
		case morType:
			r := v.Interface().(types.ManagedObjectReference)
			if r.Type == "VirtualMachineSnapshot" {
				return "'vim.vm.Snapshot:" + r.Value + "'" // hostd's name for the type
			}
			return "'vim." + r.Type + ":" + r.Value + "'"
		}
		return dumpStruct(v, depth)
	case reflect.Slice, reflect.Array:
		name := elemTypeName(v.Type().Elem())
		if v.Len() == 0 {
			return "(" + name + ") []"
		}
		var b strings.Builder
		b.WriteString("(" + name + ") [\n")
		for i := 0; i < v.Len(); i++ {
			b.WriteString(ind(depth + 1))
			b.WriteString(dumpValue(v.Index(i), depth+1))
			if i < v.Len()-1 {
				b.WriteString(", ")
			}
			b.WriteString("\n")
		}
		b.WriteString(ind(depth) + "]")
		return b.String()
	case reflect.String:
		return `"` + v.String() + `"`
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}

type member struct {
	name string
	text string
}

// members flattens a govmomi struct (embedded base types first) into vmodl members.
func members(v reflect.Value, depth int) []member {
	var out []member
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		fv := v.Field(i)
		if f.Anonymous {
			if fv.Kind() == reflect.Struct {
				out = append(out, members(fv, depth)...)
			}
			continue
		}
		if f.PkgPath != "" { // unexported
			continue
		}
		name := strings.Split(f.Tag.Get("xml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		out = append(out, member{name: name, text: memberText(f, fv, depth)})
	}
	return out
}

func memberText(f reflect.StructField, v reflect.Value, depth int) string {
	if f.Name == "FaultCause" && f.Type == reflect.TypeOf((*types.LocalizedMethodFault)(nil)) && v.IsNil() {
		return "(vmodl.MethodFault) null"
	}
	if v.Kind() == reflect.Slice && v.IsNil() {
		return "<unset>"
	}
	// Optional scalars that govmomi keeps as zero values with omitempty print as <unset>
	// only for strings (hostd prints unset strings as <unset>); numbers print as 0.
	if v.Kind() == reflect.String && v.String() == "" && strings.Contains(f.Tag.Get("xml"), "omitempty") {
		return "<unset>"
	}
	return dumpValue(v, depth)
}

func dumpStruct(v reflect.Value, depth int) string {
	var b strings.Builder
	b.WriteString("(" + VmodlName(v.Type()) + ") {\n")
	for _, m := range members(v, depth+1) {
		b.WriteString(ind(depth+1) + m.name + " = " + m.text + ", \n")
	}
	b.WriteString(ind(depth) + "}")
	return b.String()
}

func elemTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Ptr {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int32, reflect.Int:
		return "int"
	case reflect.Int64:
		return "long"
	case reflect.Int16:
		return "short"
	case reflect.Int8, reflect.Uint8:
		return "byte"
	case reflect.Bool:
		return "boolean"
	case reflect.Float32:
		return "float"
	case reflect.Float64:
		return "double"
	case reflect.Interface:
		if t.Name() == "" {
			return "anyType"
		}
		return VmodlName(t)
	}
	if t == morType {
		return "vmodl.ManagedObject"
	}
	return VmodlName(t)
}

// vmodlNames maps govmomi Go type names to the vmodl names hostd prints.
var vmodlNames = map[string]string{
	"VirtualMachineSummary":                                          "vim.vm.Summary",
	"VirtualMachineRuntimeInfo":                                      "vim.vm.RuntimeInfo",
	"VirtualMachineDeviceRuntimeInfo":                                "vim.vm.DeviceRuntimeInfo",
	"VirtualMachineDeviceRuntimeInfoVirtualEthernetCardRuntimeState": "vim.vm.DeviceRuntimeInfo.VirtualEthernetCardRuntimeState",
	"VirtualMachineGuestSummary":                                     "vim.vm.Summary.GuestSummary",
	"VirtualMachineConfigSummary":                                    "vim.vm.Summary.ConfigSummary",
	"VirtualMachineStorageSummary":                                   "vim.vm.Summary.StorageSummary",
	"VirtualMachineQuickStats":                                       "vim.vm.Summary.QuickStats",
	"VirtualMachineFeatureRequirement":                               "vim.vm.FeatureRequirement",
	"VirtualMachineMessage":                                          "vim.vm.Message",
	"VirtualMachineQuestionInfo":                                     "vim.vm.QuestionInfo",
	"VirtualMachineConnection":                                       "vim.vm.Connection",
	"VirtualMachineConfigInfo":                                       "vim.vm.ConfigInfo",
	"VirtualMachineFileInfo":                                         "vim.vm.FileInfo",
	"VirtualMachineFlagInfo":                                         "vim.vm.FlagInfo",
	"VirtualMachineDefaultPowerOpInfo":                               "vim.vm.DefaultPowerOpInfo",
	"VirtualMachineBootOptions":                                      "vim.vm.BootOptions",
	"VirtualMachineConsolePreferences":                               "vim.vm.ConsolePreferences",
	"VirtualMachineAffinityInfo":                                     "vim.vm.AffinityInfo",
	"VirtualMachineCpuIdInfoSpec":                                    "vim.vm.ConfigSpec.CpuIdInfoSpec",
	"VirtualMachineConfigInfoDatastoreUrlPair":                       "vim.vm.ConfigInfo.DatastoreUrlPair",
	"VirtualMachineSnapshotTree":                                     "vim.vm.SnapshotTree",
	"VirtualMachineSnapshotInfo":                                     "vim.vm.SnapshotInfo",
	"VirtualHardware":                                                "vim.vm.VirtualHardware",
	"ToolsConfigInfo":                                                "vim.vm.ToolsConfigInfo",
	"ToolsConfigInfoToolsLastInstallInfo":                            "vim.vm.ToolsConfigInfo.ToolsLastInstallInfo",
	"GuestInfo":                                                      "vim.vm.GuestInfo",
	"GuestNicInfo":                                                   "vim.vm.GuestInfo.NicInfo",
	"GuestDiskInfo":                                                  "vim.vm.GuestInfo.DiskInfo",
	"GuestScreenInfo":                                                "vim.vm.GuestInfo.ScreenInfo",
	"GuestStackInfo":                                                 "vim.vm.GuestStackInfo",
	"GuestInfoNamespaceGenerationInfo":                               "vim.vm.GuestInfo.NamespaceGenerationInfo",
	"NetIpConfigInfo":                                                "vim.net.IpConfigInfo",
	"NetIpConfigInfoIpAddress":                                       "vim.net.IpConfigInfo.IpAddress",
	"NetDnsConfigInfo":                                               "vim.net.DnsConfigInfo",
	"NetIpRouteConfigInfo":                                           "vim.net.IpRouteConfigInfo",
	"NetDhcpConfigInfo":                                              "vim.net.DhcpConfigInfo",
	"ResourceAllocationInfo":                                         "vim.ResourceAllocationInfo",
	"SharesInfo":                                                     "vim.SharesInfo",
	"LatencySensitivity":                                             "vim.LatencySensitivity",
	"OptionValue":                                                    "vim.option.OptionValue",
	"Description":                                                    "vim.Description",
	"LocalizableMessage":                                             "vmodl.LocalizableMessage",
	"LocalizedMethodFault":                                           "vmodl.MethodFault",
	"KeyAnyValue":                                                    "vmodl.KeyAnyValue",
	"DatastoreSummary":                                               "vim.Datastore.Summary",
	"DatastoreInfo":                                                  "vim.Datastore.Info",
	"ManagedObjectReference":                                         "vmodl.ManagedObject",
	"ElementDescription":                                             "vim.ElementDescription",
	"ChoiceOption":                                                   "vim.option.ChoiceOption",
	"VirtualDeviceConnectInfo":                                       "vim.vm.device.VirtualDevice.ConnectInfo",
	"VirtualDevicePciBusSlotInfo":                                    "vim.vm.device.VirtualDevice.PciBusSlotInfo",
	"VirtualDeviceBusSlotInfo":                                       "vim.vm.device.VirtualDevice.BusSlotInfo",
	"ScheduledHardwareUpgradeInfo":                                   "vim.vm.ScheduledHardwareUpgradeInfo",
	"VirtualMachineVirtualDeviceGroups":                              "vim.vm.VirtualDeviceGroups",
	"CryptoKeyId":                                                    "vim.encryption.CryptoKeyId",
	"VirtualMachineGuestIntegrityInfo":                               "vim.vm.GuestIntegrityInfo",
	"VirtualMachineSgxInfo":                                          "vim.vm.SgxInfo",
	"VirtualMachineVirtualPMem":                                      "vim.vm.VirtualPMem",
	"VirtualMachineFileLayout":                                       "vim.vm.FileLayout",
	"VirtualMachineFileLayoutEx":                                     "vim.vm.FileLayoutEx",
	"VirtualMachineStorageInfo":                                      "vim.vm.StorageInfo",
	"HostFeatureMask":                                                "vim.host.FeatureMask",
}

// vmodl fault names outside vim.fault.
var vmodlFaults = map[string]bool{
	"InvalidArgument": true, "NotSupported": true, "ManagedObjectNotFound": true, "InvalidRequest": true,
	"NotImplemented": true, "SystemError": true, "InvalidType": true, "SecurityError": true,
	"RequestCanceled": true, "HostNotConnected": true, "HostCommunication": true, "NotEnoughLicenses": true,
	"MethodNotFound": true, "InvalidCollectorVersion": true, "InvalidProperty": true, "RuntimeFault": true,
	"MethodFault": true,
}

// devicePrefixes splits backing-info type names: VirtualDiskFlatVer2BackingInfo is
// vim.vm.device.VirtualDisk.FlatVer2BackingInfo.
var devicePrefixes = []string{
	"VirtualEthernetCard", "VirtualPointingDevice", "VirtualParallelPort", "VirtualSerialPort",
	"VirtualSoundCard", "VirtualUSBController", "VirtualSCSIPassthrough", "VirtualCdrom", "VirtualFloppy",
	"VirtualDisk", "VirtualUSB", "VirtualPCIPassthrough", "VirtualDevice", "VirtualSriovEthernetCard",
}

var (
	baseDevice  = reflect.TypeOf((*types.BaseVirtualDevice)(nil)).Elem()
	baseBacking = reflect.TypeOf((*types.BaseVirtualDeviceBackingInfo)(nil)).Elem()
	baseFault   = reflect.TypeOf((*types.BaseMethodFault)(nil)).Elem()
)

// VmodlName is the vmodl type name hostd prints for a govmomi type.
func VmodlName(t reflect.Type) string {
	for t.Kind() == reflect.Ptr {
		t = t.Elem()
	}
	name := t.Name()
	if t.Kind() == reflect.Interface {
		name = strings.TrimPrefix(name, "Base")
		if name == "VirtualDevice" {
			return "vim.vm.device.VirtualDevice"
		}
		if name == "MethodFault" {
			return "vmodl.MethodFault"
		}
		if s, ok := vmodlNames[name]; ok {
			return s
		}
		if strings.HasSuffix(name, "BackingInfo") || strings.HasPrefix(name, "Virtual") {
			return backingName(name)
		}
		return "vim." + name
	}
	if s, ok := vmodlNames[name]; ok {
		return s
	}
	pt := reflect.PtrTo(t)
	switch {
	case pt.Implements(baseFault):
		if vmodlFaults[name] {
			return "vmodl.fault." + name
		}
		return "vim.fault." + name
	case pt.Implements(baseBacking):
		return backingName(name)
	case pt.Implements(baseDevice):
		return "vim.vm.device." + name
	}
	return "vim." + name
}

func backingName(name string) string {
	for _, p := range devicePrefixes {
		if strings.HasPrefix(name, p) && len(name) > len(p) {
			return "vim.vm.device." + p + "." + strings.TrimPrefix(name, p)
		}
	}
	return "vim.vm.device." + name
}
