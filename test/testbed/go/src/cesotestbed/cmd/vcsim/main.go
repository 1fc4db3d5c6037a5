// Command vcsim is the ceso test bed's simulated ESXi host (or vCenter): govmomi's vcsim with an
// inventory shaped like a real standalone host and the corrections below. It prints one JSON
// line on stdout once it listens, logs to stderr, and exits on SIGINT/SIGTERM or when stdin
// reaches EOF (so it never outlives the process that started it with a pipe; stdin that is not
// a pipe or socket, e.g. /dev/null, is not watched).
//
// Flags: --mode esx|vpx  --vms N  --listen 127.0.0.1:0  --user root  --password PW  --dir DIR
//
//	(or $VCSIM_PASSWORD)  --template NAME (empty: none)  --datastore-capacity-gb 1000  --datastore-free-gb 900
//
// Where vcsim 0.24.2 is kinder than a real ESXi host, and what the test bed does about it
// (package cesotestbed/sim):
//
//   - CloneVM_Task: vcsim clones in ESX mode. A standalone host refuses it: the SOAP fault
//     NotSupported ("The operation is not supported on the object."), HTTP 500. In vpx mode
//     vcsim's clone drops the source's firmware, annotation and extraConfig (guestinfo!),
//     ignores spec.config other than extraConfig and spec.powerOn: corrected after the clone.
//   - .vmx files: vcsim leaves them empty. After every call that can change a VM (create,
//     reconfigure, register, reload, power, rename, clone, reboot) the VM's .vmx is rendered
//     (cesotestbed/vmx.FromVM) and merged into the file on disk: keys the renderer owns are
//     replaced or removed, keys someone else wrote (the SSH emulator) are kept.
//   - RegisterVM_Task: vcsim ignores the .vmx (default 1 CPU/32 MB, no disks or NICs, name from
//     the folder) and demands <name>.nvram and vmware.log. The test bed reads the .vmx (name,
//     guest OS, CPU, memory, firmware, UUIDs, annotation, controllers, disks with their sizes
//     and parents, NICs with their MACs, every other key as extraConfig) and only needs the .vmx.
//     VirtualMachine.Reload (missing from vcsim) re-reads the .vmx the same way.
//   - extraConfig: vcsim appends every key of every ReconfigVM_Task (duplicates) and adds
//     "govcsim". A real host replaces the value of an existing key and removes a key set to "".
//   - Guest: vcsim reports no IP and tools "not running" forever. Here a powered-on VM runs
//     tools and reports guest.ipAddress, guest.net[] (MAC, IPs), guest.hostName; powered off,
//     nothing. The address comes from guestinfo.metadata (gzip+base64/base64/plain; JSON or
//     YAML; netplan v2 ethernets.*.addresses or v1) and local-hostname, as cloud-init applies
//     them at boot, only for a new instance-id (state kept with the disk, so a clone that keeps
//     its source's instance-id keeps the old identity); otherwise a DHCP-like lease in
//     198.51.100.0/24. RebootGuest (missing from vcsim) reboots the guest.
//   - Guest "ready": a guest running cloud-init with ceso's user data sets guestinfo.ceso.ready
//     (vmware-rpctool info-set) to its instance-id. Here user data (guestinfo.userdata, a
//     #cloud-config or a MIME multipart with cloud-config parts merged per merge_how /
//     Merge-Type as cloud-init does: by default a later part's lists replace earlier ones) is
//     read at boot; "guest.ready" ms (default 500) after the IP shows, the key is set through
//     the property collector when the instance's first boot has the runcmd entry `touch
//     /var/lib/cloud/instance/ceso-ready && vmware-rpctool "info-set guestinfo.ceso.ready
//     $(cat /var/lib/cloud/data/instance-id)"`, or on a later boot of the same instance when
//     that ran and write_files installed an executable /var/lib/cloud/scripts/per-boot/ceso-ready.
//     Guest-set keys are runtime state: never in the .vmx, not copied by a clone, removed at
//     power off and when the guest restarts (reset, RebootGuest).
//   - Disks: vcsim creates 0-byte .vmdk and -flat.vmdk files and never resizes them. Here a new
//     disk gets a real descriptor and a sparse -flat.vmdk of its capacity (a child disk a
//     seSparse descriptor naming its parent); growing a disk by ReconfigVM grows the files.
//     CopyVirtualDisk_Task writes <dst>.vmdk + <dst>-flat.vmdk with a descriptor naming the new
//     extent (vcsim copied the descriptor verbatim, still naming the source's extent, and
//     filled sparse files); thin only when destSpec says so. ExtendVirtualDisk_Task (missing)
//     is implemented. DeleteVirtualDisk_Task deletes the extents the descriptor names.
//     vcsim requires "-flat.vmdk" next to every attached disk; child disks have none, so the
//     test bed puts a placeholder there during the call.
//   - Destroy_Task: vcsim deletes the whole folder of the VM's log directory (the datastore root
//     for a VM kept there) and leaves its disks in other folders. Here the VM's own files and
//     all its attached disks are deleted, then its folder if empty. UnregisterVM keeps files.
//   - FileManager: faults named the simulator's real directories; MakeDirectory put them in
//     the fault message; CopyDatastoreFile filled sparse files and could not copy folders.
//   - HostDatastoreBrowser: an empty matchPattern matched nothing (a real host: everything);
//     sub-folder results had FolderPath "[ds]/dir" (real: "[ds] dir"); VmDiskFileInfo had no
//     capacity/thin details; extents (-flat, -sesparse) are hidden from VmDiskFileQuery.
//   - Devices: a NIC on a network that does not exist crashed vcsim's handler; a real host
//     answers InvalidDeviceSpec. A child disk whose parent is missing: FileNotFound. Thick
//     disks larger than the datastore's free space: NoDiskSpace.
//   - Keyed property paths (sim/keyed.go, sources there): vcsim 0.24.2 put config.extraConfig["k"]
//     and config.hardware.device[N] in every object's missingSet (InvalidProperty). A real host
//     (and vcsim since v0.38.0) answers the element: propSet name = the path as asked, val = the
//     OptionValue (or device); a key that does not exist is left out; ["k"].value gives the
//     field. /testbed/keyed-paths switches to "refuse" (the fault InvalidProperty) or "legacy".
//   - Sessions: vcsim answers RetrieveProperties(Ex) without a session; a real host answers
//     NotAuthenticated. Faults sent without a message get the real host's localized message.
//   - Datastore: vcsim reports the real file system's size and drifts as disks are added; here
//     datastore1 reports --datastore-capacity-gb / --datastore-free-gb (changeable at run time),
//     less the space allocated by files written through NFC imports.
//   - OVF import (sim/nfc.go, sim/vmdkstream.go). CreateImportSpec: a descriptor without a
//     VirtualSystem (or items vcsim would dereference blindly) crashed vcsim's handler (the
//     client saw EOF): InvalidArgument{ovfDescriptor}. Kept: unknown items such as Ubuntu's
//     serial port (ResourceType 21) are refused in error[] (OvfUnsupportedType). Corrected:
//     cisp.diskProvisioning decides thin/thick (vcsim: always thin; unset = thick), ovf:capacity
//     without units is bytes (vcsim: KB), ISO file items have create=true. ImportVApp: vcsim's
//     disks stayed 0-byte and its lease was ready at once with no timeout; here the disks get a
//     descriptor and a sparse -flat extent, the .vmx is rendered, device checks apply
//     (NoDiskSpace for thick disks), and the lease is initializing ~200 ms, then ready with
//     leaseTimeout (default 300 s) and device URLs https://*/nfc/<lease>/<file> (the client
//     substitutes the host, as with real ESXi), sslThumbprint = the host's SHA-1 thumbprint.
//     /nfc/: vcsim discarded uploads; here POST application/x-vnd.vmware-streamVmdk is decoded
//     as a streamOptimized VMDK while it streams (KDMV v3, zlib grains with markers,
//     GD_AT_END + footer, or qemu-img's tables up front) into the disk's -flat extent; PUT
//     stores a non-disk file. Required: an exact Content-Length (chunked: 411). Not a stream,
//     truncated, larger than the disk, or no space: 500 with a message and the lease in error.
//     HttpNfcLeaseProgress renews the lease; without it the lease times out (error Timedout),
//     cuts an upload in flight off, and Progress/Complete/Abort answer Timedout. Complete: done;
//     Abort: error, NFC URLs gone (404), a second Abort InvalidState. As in vcsim, neither
//     Abort nor a timeout deletes the VM (unconfirmed on a real host: clients clean up).
//   - Snapshots (sim/snapshots.go). vcsim 0.24.2 kept a tree and one empty .vmsn: no delta disks,
//     state = the VM's power state even with memory=false, revert restored neither config nor
//     power state, removeChildren left a dangling current snapshot (the next create panicked),
//     removal deleted unrelated files (the VM's base descriptor), no ConsolidateVMDisks_Task.
//     Here, as on a host: CreateSnapshot_Task gives each disk a delta <base>-00000N.vmdk in the
//     VM's folder (seSparse descriptor: parentFileNameHint = the previous file, parentCID = its
//     CID; a small sparse -sesparse.vmdk extent) and moves the backing to it (backing.parent =
//     the previous backing); the snapshot MO's config is a deep copy of the VM's at that moment;
//     tree entry id (increasing per VM, never reused, = vim-cmd's "Snapshot Id"), state
//     poweredOn only with memory=true on a running VM (suspended: always), quiesced; files
//     <vm>-Snapshot<id>.vmsn, .vmem (memory), <vm>.vmsd (snapshot.lastUID/current/N.*, as ESXi
//     writes it); rootSnapshot is kept. quiesce=true on a running VM without tools:
//     ToolsUnavailable; powered off, memory and quiesce are ignored. Duplicate names allowed.
//     RevertToSnapshot_Task / RevertToCurrentSnapshot_Task (none: NotFound): the VM is powered
//     off, the running point discarded, a NEW empty delta put on each of the snapshot's disks,
//     the snapshot's config restored (CPU, cores, memory, hot-add flags, devices, extraConfig
//     without guest-set keys, annotation, guest OS, firmware), current = the snapshot; then a
//     memory snapshot comes back running (a new boot time, the guest reports its address again;
//     the test bed's choice where a real host resumes), a suspended one suspended, a disk-only
//     one powered off; suppressPowerOn keeps it off (the test bed's choice: a host may leave a
//     memory snapshot suspended). RemoveSnapshot_Task (consolidate default true): removed from
//     the tree (children move up unless removeChildren, which removes the subtree), current
//     moves to the removed one's parent, its .vmsn/.vmem deleted; the file nothing needs any
//     more takes its only child's data (the child's files are deleted, its children and every
//     backing/snapshot that named it name the parent, new CID); consolidate=false leaves the
//     files and sets runtime.consolidationNeeded, ConsolidateVMDisks_Task merges and clears it.
//     RemoveAllSnapshots_Task: everything merged into the base disks, backings back on them.
//     Never merged into or deleted: files other VMs use (a linked clone's template). The delta
//     extent is a plain sparse file (4 MiB header, then the disk's bytes): merges and
//     CopyVirtualDisk_Task of a delta carry the data written into it. Task entity: the VM.
//     Destroy_Task deletes the whole chains; ExtendVirtualDisk_Task of a delta or of a parent
//     answers NotSupported. The .vmx names the current deltas; vim-cmd vmsvc/snapshot.* acts
//     through these methods.
//   - ReconfigVM_Task (sim/reconfig.go): vcsim applied CPU/memory changes with no power-state or
//     hot-add checks, accepted disk shrinks and grows of disks with parents, panicked on an edit
//     without deviceInfo (the client saw EOF), stored capacityInKB and capacityInBytes as sent
//     (a KB-only grow left bytes and the files at the old size), needed a unitNumber for a new
//     disk. Refusals (* = fault type unconfirmed on a real host, the test bed's choice):
//     memoryMB not a multiple of 4: GenericVmConfigFault "Memory (RAM) size (N) is invalid";
//     changing cpuHotAddEnabled/cpuHotRemoveEnabled/memoryHotAddEnabled unless powered off:
//     InvalidPowerState*; numCPUs up while on without cpuHotAddEnabled, down without
//     cpuHotRemoveEnabled, numCoresPerSocket changed while on: CpuHotPlugNotSupported* "CPU hot
//     plug is not supported for this virtual machine."; memoryMB up while on without
//     memoryHotAddEnabled (or over hotPlugMemoryLimit), down while on: MemoryHotPlugNotSupported*
//     "Memory hot plug is not supported for this virtual machine."; a disk shrink:
//     InvalidDeviceOperation* "Invalid operation for device 'I'."; growing a disk with a parent
//     (snapshot delta, linked clone): NotSupported* "Disks with parents cannot be expanded.";
//     thick growth beyond the free space: NoDiskSpace (the growth only; vcsim subtracted the full
//     new size on every edit, here the datastore's space is the test bed's, see below). Fixed
//     requests: an edit without deviceInfo/backing keeps the device's; capacityInKB/Bytes agree
//     (the changed one wins), so a grow resizes the extent; a new disk without unitNumber gets
//     its controller's next free unit (SCSI skips 7) and real files (<vm>_N.vmdk + -flat).
//   - vmkfstools -X refuses a delta (parentFileNameHint / seSparse extent) and a disk that is
//     the parent of a registered VM's disk (snapshot chain, linked clone), exit 1.
//
// Control API (same HTTPS server, no authentication), see sim/control.go:
//
//	POST /testbed/fail {"method","fault","times","immediate","vm","message","props"}
//	POST /testbed/delay {"method","ms"} (also "guest.ipAddress", "guest.ready")
//	POST /testbed/datastore {"capacityGB","freeGB"}
//	POST /testbed/nfc {"leaseTimeoutSeconds","initializingMs"}   GET /testbed/nfc (leases, bytes per file)
//	POST /testbed/expire-sessions   POST /testbed/reset   GET /testbed/state
//
// Not corrected: managed object ids are vcsim's ("vm-42"), not ESXi's integers; CreateVM_Task
// with vmPathName "[ds]" and an existing folder puts the VM in "name (0)"; snapshot MO ids are
// vcsim's ("snapshot-57"); layoutEx does not list snapshot files; a branch of the snapshot tree
// (a snapshot with two children after a revert) is removed without merging its files.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"cesotestbed/sim"
)

func main() {
	log.SetFlags(log.LstdFlags)
	log.SetPrefix("vcsim: ")
	var opts sim.Options
	flag.StringVar(&opts.Mode, "mode", "esx", "esx (standalone host, HostAgent) or vpx (vCenter, VirtualCenter)")
	flag.IntVar(&opts.VMs, "vms", 2, "number of ordinary VMs (vm-0001, ...)")
	flag.StringVar(&opts.Listen, "listen", "127.0.0.1:0", "address to listen on (loopback)")
	flag.StringVar(&opts.User, "user", "root", "user name to accept")
	flag.StringVar(&opts.Password, "password", os.Getenv("VCSIM_PASSWORD"), "password to accept (required; default $VCSIM_PASSWORD)")
	flag.StringVar(&opts.Dir, "dir", "", "directory for all state; the datastore is DIR/volumes/datastore1")
	flag.StringVar(&opts.Template, "template", "ubuntu-22.04-template", "name of the template VM (empty: none)")
	flag.Float64Var(&opts.CapacityGB, "datastore-capacity-gb", 1000, "datastore capacity to report")
	flag.Float64Var(&opts.FreeGB, "datastore-free-gb", 900, "datastore free space to report")
	watchStdin := flag.Bool("exit-on-stdin-eof", true, "exit when stdin (a pipe or socket) reaches EOF")
	flag.Parse()

	if opts.Password == "" {
		fail("--password is required")
	}
	if opts.VMs < 0 {
		fail("--vms must be >= 0")
	}
	host, _, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		fail("--listen: %v", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		fail("--listen must be a loopback address, not %q", opts.Listen)
	}
	if opts.FreeGB > opts.CapacityGB {
		opts.FreeGB = opts.CapacityGB
	}

	tb, err := sim.Start(opts)
	if err != nil {
		fail("%v", err)
	}
	line, _ := json.Marshal(tb.Info())
	w := bufio.NewWriter(os.Stdout)
	_, _ = w.Write(append(line, '\n'))
	_ = w.Flush()
	log.Printf("listening on %s (%s mode)", tb.URL, opts.Mode)

	done := make(chan string, 2)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() { done <- (<-sigs).String() }()
	// Only a pipe or socket says anything about the parent: a background job of a shell script
	// gets /dev/null, which is at EOF from the start.
	if fi, err := os.Stdin.Stat(); err == nil && *watchStdin && fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0 {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			done <- "stdin closed"
		}()
	}
	reason := <-done
	log.Printf("stopping: %s", reason)
	tb.Close()
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "vcsim: "+format+"\n", args...)
	os.Exit(2)
}
