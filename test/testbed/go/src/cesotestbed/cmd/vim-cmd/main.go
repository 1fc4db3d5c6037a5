// Command vim-cmd emulates the ESXi shell's vim-cmd for the ceso test bed. It acts on
// the simulator named by $CESO_TESTBED_CONFIG (see package esxishell), so VMs made over
// SSH are seen over the API and the other way round. vmids are the VMs' managed-object ids
// on the simulator ("vm-42" on vcsim), so ceso can use them with the API too.
//
// From /work/shared/reference/esxi-shell.md (formats and quirks as seen on real hosts):
// vmsvc/getallvms, get.summary, get.guest, power.getstate, power.on/off/reset (banners and
// "Power on failed: " prefix), snapshot.create, snapshot.get, solo/registervm, unregister,
// destroy, reload, and the newer-host fault format (NotFound for a bad vmid,
// InvalidPowerState). RECONSTRUCTED (no verbatim sample): get.config ("Configuration:" +
// vim.vm.ConfigInfo incl. extraConfig), get.runtime, device.getdevices, power.suspend
// ("Suspending VM:"), power.shutdown (silent), snapshot.removeall/remove/revert banners,
// get.snapshotinfo (the vim.vm.SnapshotInfo dump),
// message ("No message."), hostsvc/datastore/listsummary and summary (vim.Datastore.Summary
// dumps: capacity, freeSpace), hostsvc/hostsummary, usage/"Insufficient arguments." texts,
// the array layout of data-object dumps and most fault messages. Faults print on stdout
// and make the exit status 1; "Skipping invalid VM '<id>'" goes to stderr.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"cesotestbed/esxishell"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type cmdFunc func(s *esxishell.Session, args []string) int

type command struct {
	minArgs int
	usage   string
	run     cmdFunc
}

var commands = map[string]command{
	"vmsvc/getallvms":               {0, "", getAllVMs},
	"vmsvc/get.summary":             {1, "vmid", getSummary},
	"vmsvc/get.guest":               {1, "vmid", getGuest},
	"vmsvc/get.config":              {1, "vmid", getConfig},
	"vmsvc/get.runtime":             {1, "vmid", getRuntime},
	"vmsvc/device.getdevices":       {1, "vmid", getDevices},
	"vmsvc/power.getstate":          {1, "vmid", powerGetState},
	"vmsvc/power.on":                {1, "vmid", powerOp("on")},
	"vmsvc/power.off":               {1, "vmid", powerOp("off")},
	"vmsvc/power.reset":             {1, "vmid", powerOp("reset")},
	"vmsvc/power.suspend":           {1, "vmid", powerOp("suspend")},
	"vmsvc/power.shutdown":          {1, "vmid", powerOp("shutdown")},
	"vmsvc/snapshot.get":            {1, "vmid", snapshotGet},
	"vmsvc/get.snapshotinfo":        {1, "vmid", getSnapshotInfo},
	"vmsvc/snapshot.create":         {1, "vmid [snapshotName] [snapshotDescription] [includeMemory] [quiesced]", snapshotCreate},
	"vmsvc/snapshot.removeall":      {1, "vmid", snapshotRemoveAll},
	"vmsvc/snapshot.remove":         {2, "vmid snapshotId [removeChildren]", snapshotRemove},
	"vmsvc/snapshot.revert":         {2, "vmid snapshotId [suppressPowerOn]", snapshotRevert},
	"vmsvc/unregister":              {1, "vmid", unregister},
	"vmsvc/destroy":                 {1, "vmid", destroy},
	"vmsvc/reload":                  {1, "vmid", reload},
	"vmsvc/message":                 {1, "vmid [messageId] [messageChoice]", message},
	"solo/registervm":               {1, "vmx path [name] [resourcepool]", registerVM},
	"hostsvc/datastore/listsummary": {0, "", datastoreListSummary},
	"hostsvc/datastore/summary":     {1, "name", datastoreSummary},
	"hostsvc/hostsummary":           {0, "", hostSummary},
}

var out = bufio.NewWriter(os.Stdout)

func main() {
	code := run(os.Args[1:])
	out.Flush()
	os.Exit(code)
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage("")
		return 0
	}
	name := strings.TrimPrefix(args[0], "/")
	cmd, ok := commands[name]
	if !ok {
		if isNamespace(name) {
			usage(name)
			return 0
		}
		fmt.Fprintf(out, "Invalid command '%s'\n", args[0]) // reconstructed
		return 1
	}
	if len(args)-1 < cmd.minArgs {
		fmt.Fprintln(out, "Insufficient arguments.")
		fmt.Fprintf(out, "Usage: %s %s\n", name, cmd.usage)
		return 1
	}
	s, err := esxishell.Connect()
	if err != nil {
		fmt.Fprintf(os.Stderr, "Failed to login: %v\n", err)
		return 1
	}
	defer s.Close()
	return cmd.run(s, args[1:])
}

func isNamespace(name string) bool {
	for k := range commands {
		if strings.HasPrefix(k, strings.TrimSuffix(name, "/")+"/") {
			return true
		}
	}
	return false
}

func usage(prefix string) {
	var names []string
	for k := range commands {
		if prefix == "" || strings.HasPrefix(k, strings.TrimSuffix(prefix, "/")+"/") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if prefix == "" {
		fmt.Fprintln(out, "Commands available under /:")
	} else {
		fmt.Fprintf(out, "Commands available under %s/:\n", strings.TrimSuffix(prefix, "/"))
	}
	for _, n := range names {
		fmt.Fprintln(out, n)
	}
}

// fail prints err: a vSphere fault in vim-cmd's format (with an optional prefix such as
// "Power on failed: "), anything else as a plain line. It returns the exit status.
func fail(err error, prefix string) int {
	if f := esxishell.AsFault(err); f != nil {
		fmt.Fprintln(out, prefix+f.Format())
		return 1
	}
	fmt.Fprintf(out, "%s%v\n", prefix, err)
	return 1
}

// ---- vmsvc/getallvms ---------------------------------------------------------------

// getAllVMs prints the inventory as in esxi-shell.md: a fixed header whose widths do not
// line up with the rows, rows sorted by vmid AS STRINGS, each column padded to its
// widest value plus 3 spaces (vmid to at least 7), so rows end in trailing spaces when
// the annotation is empty; a multi-line annotation continues on the following lines.
// VMs whose .vmx is missing print "Skipping invalid VM '<id>'" on stderr instead.
func getAllVMs(s *esxishell.Session, _ []string) int {
	vms, err := s.ListVMs(esxishell.VMListProps)
	if err != nil {
		return fail(err, "")
	}
	paths, _ := s.Paths()
	type row struct{ id, name, file, guest, version, annotation string }
	var rows []row
	var skipped []string
	for _, vm := range vms {
		r := row{id: vm.Self.Value, name: vm.Name}
		if vm.Config != nil {
			r.file = vm.Config.Files.VmPathName
			r.guest = vm.Config.GuestId
			r.version = vm.Config.Version
			r.annotation = vm.Config.Annotation
		}
		if r.file == "" {
			r.file = vm.Summary.Config.VmPathName
		}
		if paths != nil && r.file != "" {
			if local, err := paths.Local(r.file); err == nil {
				if _, err := os.Stat(local); err != nil {
					skipped = append(skipped, r.id)
					continue
				}
			}
		}
		rows = append(rows, r)
	}
	sort.Strings(skipped)
	for _, id := range skipped {
		fmt.Fprintf(os.Stderr, "Skipping invalid VM '%s'\n", id)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	w := [5]int{7, 0, 0, 0, 0}
	for _, r := range rows {
		for i, v := range []string{r.id, r.name, r.file, r.guest, r.version} {
			if len(v)+3 > w[i] {
				w[i] = len(v) + 3
			}
		}
	}
	fmt.Fprintln(out, "Vmid      Name                        File                         Guest OS        Version   Annotation")
	for _, r := range rows {
		fmt.Fprintf(out, "%-*s%-*s%-*s%-*s%-*s%s\n", w[0], r.id, w[1], r.name, w[2], r.file, w[3], r.guest, w[4], r.version, r.annotation)
	}
	return 0
}

// ---- details -----------------------------------------------------------------------

func getSummary(s *esxishell.Session, args []string) int {
	vm, err := s.VM(args[0], "summary")
	if err != nil {
		return fail(err, "")
	}
	fmt.Fprintln(out, "Listsummary:")
	fmt.Fprintln(out, esxishell.Dump(vm.Summary))
	return 0
}

func getGuest(s *esxishell.Session, args []string) int {
	vm, err := s.VM(args[0], "guest")
	if err != nil {
		return fail(err, "")
	}
	fmt.Fprintln(out, "Guest information:")
	fmt.Fprintln(out)
	if vm.Guest == nil {
		fmt.Fprintln(out, "<unset>")
		return 0
	}
	fmt.Fprintln(out, esxishell.Dump(vm.Guest))
	return 0
}

// getConfig (reconstructed: not in the reference) prints "Configuration:" and the whole
// vim.vm.ConfigInfo, extraConfig included (guestinfo.*, ceso.* keys appear as
// (vim.option.OptionValue) { key = "guestinfo.metadata", value = "..." }).
func getConfig(s *esxishell.Session, args []string) int {
	vm, err := s.VM(args[0], "config")
	if err != nil {
		return fail(err, "")
	}
	fmt.Fprintln(out, "Configuration:")
	fmt.Fprintln(out, esxishell.Dump(vm.Config))
	return 0
}

// getRuntime (reconstructed).
func getRuntime(s *esxishell.Session, args []string) int {
	vm, err := s.VM(args[0], "runtime")
	if err != nil {
		return fail(err, "")
	}
	fmt.Fprintln(out, "Runtime information")
	fmt.Fprintln(out, esxishell.Dump(vm.Runtime))
	return 0
}

// getDevices (reconstructed) dumps config.hardware.
func getDevices(s *esxishell.Session, args []string) int {
	vm, err := s.VM(args[0], "config.hardware")
	if err != nil {
		return fail(err, "")
	}
	if vm.Config == nil {
		fmt.Fprintln(out, "<unset>")
		return 0
	}
	fmt.Fprintln(out, esxishell.Dump(vm.Config.Hardware))
	return 0
}

// ---- power -------------------------------------------------------------------------

func stateText(p types.VirtualMachinePowerState) string {
	switch p {
	case types.VirtualMachinePowerStatePoweredOn:
		return "Powered on"
	case types.VirtualMachinePowerStateSuspended:
		return "Suspended"
	}
	return "Powered off"
}

func powerGetState(s *esxishell.Session, args []string) int {
	vm, err := s.VM(args[0], "runtime.powerState")
	if err != nil {
		return fail(err, "")
	}
	fmt.Fprintln(out, "Retrieved runtime info")
	fmt.Fprintln(out, stateText(vm.Runtime.PowerState))
	return 0
}

// powerOp prints the banner the reference shows ("Powering on VM:", "Powering off VM:",
// "Reset VM:"; "Suspending VM:" reconstructed) and, on failure, the fault prefixed with
// "Power on failed: " etc. power.shutdown asks the guest, prints nothing and returns at
// once (reconstructed). States a real host refuses but vcsim accepts (reset or suspend
// of a VM that is not running) are refused here with InvalidPowerState.
func powerOp(op string) cmdFunc {
	return func(s *esxishell.Session, args []string) int {
		vm, err := s.VM(args[0], "runtime.powerState", "name")
		if err != nil {
			return fail(err, "")
		}
		o := s.VMObject(args[0])
		state := vm.Runtime.PowerState
		invalid := func(req types.VirtualMachinePowerState) error {
			return &esxishell.Fault{Fault: &types.InvalidPowerState{RequestedState: req, ExistingState: state}}
		}
		switch op {
		case "on":
			fmt.Fprintln(out, "Powering on VM:")
			_, err = s.Wait(o.PowerOn(s.Ctx))
			if err != nil {
				return fail(err, "Power on failed: ")
			}
		case "off":
			fmt.Fprintln(out, "Powering off VM:")
			_, err = s.Wait(o.PowerOff(s.Ctx))
			if err != nil {
				return fail(err, "Power off failed: ")
			}
		case "reset":
			fmt.Fprintln(out, "Reset VM:")
			if state != types.VirtualMachinePowerStatePoweredOn {
				return fail(invalid(types.VirtualMachinePowerStatePoweredOn), "Reset failed: ")
			}
			_, err = s.Wait(o.Reset(s.Ctx))
			if err != nil {
				return fail(err, "Reset failed: ")
			}
		case "suspend":
			fmt.Fprintln(out, "Suspending VM:")
			if state != types.VirtualMachinePowerStatePoweredOn {
				return fail(invalid(types.VirtualMachinePowerStatePoweredOn), "Suspend failed: ")
			}
			_, err = s.Wait(o.Suspend(s.Ctx))
			if err != nil {
				return fail(err, "Suspend failed: ")
			}
		case "shutdown":
			if state != types.VirtualMachinePowerStatePoweredOn {
				return fail(invalid(types.VirtualMachinePowerStatePoweredOn), "")
			}
			if err := o.ShutdownGuest(s.Ctx); err != nil {
				return fail(err, "")
			}
		}
		return 0
	}
}

// ---- snapshots ---------------------------------------------------------------------

func snapshotCreate(s *esxishell.Session, args []string) int {
	if _, err := s.VM(args[0], "name"); err != nil {
		return fail(err, "")
	}
	name, desc := "", ""
	if len(args) > 1 {
		name = args[1]
	}
	if len(args) > 2 {
		desc = args[2]
	}
	mem := len(args) > 3 && isTrue(args[3])
	quiesce := len(args) > 4 && isTrue(args[4])
	fmt.Fprintln(out, "Create Snapshot:")
	if _, err := s.Wait(s.VMObject(args[0]).CreateSnapshot(s.Ctx, name, desc, mem, quiesce)); err != nil {
		return fail(err, "Create snapshot failed: ") // prefix reconstructed
	}
	return 0
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "yes":
		return true
	}
	return false
}

// snapshotGet prints "Get Snapshot:" and the tree of esxi-shell.md (with VMware's
// "Desciption" spelling): "|-ROOT" at the top, "--|-CHILD" one level down, and every
// field prefixed with two dashes per level.
func snapshotGet(s *esxishell.Session, args []string) int {
	vm, err := s.VM(args[0], "snapshot")
	if err != nil {
		return fail(err, "")
	}
	fmt.Fprintln(out, "Get Snapshot:")
	if vm.Snapshot == nil {
		return 0
	}
	var walk func(trees []types.VirtualMachineSnapshotTree, depth int)
	walk = func(trees []types.VirtualMachineSnapshotTree, depth int) {
		for _, t := range trees {
			head := "|-ROOT"
			if depth > 1 {
				head = strings.Repeat("-", 2*(depth-1)) + "|-CHILD"
			}
			p := strings.Repeat("-", 2*depth)
			fmt.Fprintln(out, head)
			fmt.Fprintf(out, "%sSnapshot Name        : %s\n", p, t.Name)
			fmt.Fprintf(out, "%sSnapshot Id          : %d\n", p, t.Id)
			fmt.Fprintf(out, "%sSnapshot Desciption  : %s\n", p, t.Description)
			fmt.Fprintf(out, "%sSnapshot Created On  : %s\n", p, t.CreateTime.UTC().Format("1/2/2006 15:04:05"))
			st := "powered off"
			switch t.State {
			case types.VirtualMachinePowerStatePoweredOn:
				st = "powered on"
			case types.VirtualMachinePowerStateSuspended:
				st = "suspended"
			}
			fmt.Fprintf(out, "%sSnapshot State       : %s\n", p, st)
			walk(t.ChildSnapshotList, depth+1)
		}
	}
	walk(vm.Snapshot.RootSnapshotList, 1)
	return 0
}

// getSnapshotInfo (reconstructed) dumps vim.vm.SnapshotInfo (currentSnapshot and the tree with
// id, state, quiesced, which snapshot.get does not print); "(vim.vm.SnapshotInfo) null" when
// the VM has no snapshot (hostd's form for a null data object).
func getSnapshotInfo(s *esxishell.Session, args []string) int {
	vm, err := s.VM(args[0], "snapshot")
	if err != nil {
		return fail(err, "")
	}
	if vm.Snapshot == nil {
		fmt.Fprintln(out, "(vim.vm.SnapshotInfo) null")
		return 0
	}
	fmt.Fprintln(out, esxishell.Dump(vm.Snapshot))
	return 0
}

// snapshotRemoveAll prints "Remove All Snapshots:" (reconstructed).
func snapshotRemoveAll(s *esxishell.Session, args []string) int {
	if _, err := s.VM(args[0], "name"); err != nil {
		return fail(err, "")
	}
	fmt.Fprintln(out, "Remove All Snapshots:")
	consolidate := true
	if _, err := s.Wait(s.VMObject(args[0]).RemoveAllSnapshot(s.Ctx, &consolidate)); err != nil {
		return fail(err, "Remove All Snapshots failed: ")
	}
	return 0
}

func findSnapshot(vm *mo.VirtualMachine, id string) *types.ManagedObjectReference {
	if vm.Snapshot == nil {
		return nil
	}
	n, err := strconv.Atoi(id)
	var walk func([]types.VirtualMachineSnapshotTree) *types.ManagedObjectReference
	walk = func(ts []types.VirtualMachineSnapshotTree) *types.ManagedObjectReference {
		for i := range ts {
			if (err == nil && ts[i].Id == int32(n)) || ts[i].Snapshot.Value == id {
				return &ts[i].Snapshot
			}
			if r := walk(ts[i].ChildSnapshotList); r != nil {
				return r
			}
		}
		return nil
	}
	return walk(vm.Snapshot.RootSnapshotList)
}

// snapshotRemove / snapshotRevert (reconstructed banners "Remove Snapshot:" / "Revert Snapshot:").
// Both act through the simulator's snapshot methods, which the test bed implements as a host
// does (sim/snapshots.go: delta disks, merge on remove, config and power state on revert);
// snapshot.remove takes the newer hosts' optional removeChildren (0/1, default 0).
func snapshotRemove(s *esxishell.Session, args []string) int {
	vm, err := s.VM(args[0], "snapshot")
	if err != nil {
		return fail(err, "")
	}
	fmt.Fprintln(out, "Remove Snapshot:")
	ref := findSnapshot(vm, args[1])
	if ref == nil {
		return fail(&esxishell.Fault{Fault: &types.NotFound{}, Msg: fmt.Sprintf("Unable to find snapshot with id \"%s\"", args[1])}, "")
	}
	consolidate := true
	children := len(args) > 2 && isTrue(args[2])
	if _, err := s.Wait(s.VMObject(args[0]).RemoveSnapshot(s.Ctx, ref.Value, children, &consolidate)); err != nil {
		return fail(err, "")
	}
	return 0
}

func snapshotRevert(s *esxishell.Session, args []string) int {
	vm, err := s.VM(args[0], "snapshot")
	if err != nil {
		return fail(err, "")
	}
	fmt.Fprintln(out, "Revert Snapshot:")
	ref := findSnapshot(vm, args[1])
	if ref == nil {
		return fail(&esxishell.Fault{Fault: &types.NotFound{}, Msg: fmt.Sprintf("Unable to find snapshot with id \"%s\"", args[1])}, "")
	}
	suppress := len(args) > 2 && isTrue(args[2])
	if _, err := s.Wait(s.VMObject(args[0]).RevertToSnapshot(s.Ctx, ref.Value, suppress)); err != nil {
		return fail(err, "")
	}
	return 0
}

// ---- register / unregister / destroy / reload ---------------------------------------

func registerVM(s *esxishell.Session, args []string) int {
	name, pool := "", ""
	if len(args) > 1 {
		name = args[1]
	}
	if len(args) > 2 {
		pool = args[2]
	}
	id, err := s.RegisterVM(args[0], name, pool)
	if err != nil {
		return fail(err, "")
	}
	fmt.Fprintln(out, id)
	return 0
}

func unregister(s *esxishell.Session, args []string) int {
	if _, err := s.VM(args[0], "name"); err != nil {
		return fail(err, "")
	}
	if err := s.VMObject(args[0]).Unregister(s.Ctx); err != nil {
		return fail(err, "")
	}
	return 0
}

func destroy(s *esxishell.Session, args []string) int {
	if err := s.Destroy(args[0]); err != nil {
		return fail(err, "")
	}
	return 0
}

func reload(s *esxishell.Session, args []string) int {
	if err := s.Reload(args[0]); err != nil {
		return fail(err, "")
	}
	return 0
}

// message (reconstructed): with only a vmid it lists pending questions ("No message."
// when there is none); with a message id and a choice it answers.
func message(s *esxishell.Session, args []string) int {
	vm, err := s.VM(args[0], "runtime.question")
	if err != nil {
		return fail(err, "")
	}
	if len(args) >= 3 {
		if err := s.VMObject(args[0]).Answer(s.Ctx, args[1], args[2]); err != nil {
			return fail(err, "")
		}
		return 0
	}
	q := vm.Runtime.Question
	if q == nil {
		fmt.Fprintln(out, "No message.")
		return 0
	}
	fmt.Fprintf(out, "Virtual machine message %s:\n%s\n", q.Id, q.Text)
	if q.Choice.ChoiceInfo != nil {
		for i, c := range q.Choice.ChoiceInfo {
			d := c.GetElementDescription()
			fmt.Fprintf(out, "   %d. %s [%s]\n", i, d.Label, d.Key)
		}
	}
	return 0
}

// ---- host --------------------------------------------------------------------------

// datastoreListSummary (reconstructed) dumps the array of vim.Datastore.Summary, the
// place to read capacity and freeSpace from.
func datastoreListSummary(s *esxishell.Session, _ []string) int {
	dss, err := s.Datastores()
	if err != nil {
		return fail(err, "")
	}
	sums := make([]types.DatastoreSummary, 0, len(dss))
	for _, d := range dss {
		sums = append(sums, d.Summary)
	}
	fmt.Fprintln(out, esxishell.Dump(sums))
	return 0
}

// datastoreSummary (reconstructed) dumps one vim.Datastore.Summary.
func datastoreSummary(s *esxishell.Session, args []string) int {
	dss, err := s.Datastores()
	if err != nil {
		return fail(err, "")
	}
	for _, d := range dss {
		if d.Name == args[0] {
			fmt.Fprintln(out, esxishell.Dump(d.Summary))
			return 0
		}
	}
	return fail(&esxishell.Fault{Fault: &types.NotFound{}, Msg: fmt.Sprintf("Unable to find datastore \"%s\"", args[0])}, "")
}

// hostSummary (reconstructed) dumps vim.host.Summary.
func hostSummary(s *esxishell.Session, _ []string) int {
	inv, err := s.Inventory()
	if err != nil {
		return fail(err, "")
	}
	var h mo.HostSystem
	if err := inv.Host.Properties(s.Ctx, inv.Host.Reference(), []string{"summary"}, &h); err != nil {
		return fail(err, "")
	}
	fmt.Fprintln(out, esxishell.Dump(h.Summary))
	return 0
}
