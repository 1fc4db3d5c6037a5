package sim

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"io/ioutil"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/nfc"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/progress"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// testOVF is a small OVF in the shape of Ubuntu's (pvscsi disk, IDE CD-ROM with an ISO, VMXNET3
// on "VM Network"); serial adds Ubuntu's serial port (ResourceType 21).
func testOVF(diskBytes, diskCapMiB int64, isoBytes int, serial bool) string {
	serialItem := ""
	if serial {
		serialItem = `<Item ovf:required="false"><rasd:ElementName>serial0</rasd:ElementName><rasd:InstanceID>9</rasd:InstanceID><rasd:ResourceSubType>vmware.serialport.device</rasd:ResourceSubType><rasd:ResourceType>21</rasd:ResourceType></Item>`
	}
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
    <File ovf:href="test-disk1.vmdk" ovf:id="file1" ovf:size="%d"/>
    <File ovf:href="seed.iso" ovf:id="file2" ovf:size="%d"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="%d" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network"><Description>The VM Network network</Description></Network>
  </NetworkSection>
  <VirtualSystem ovf:id="test-vm">
    <Info>A virtual machine</Info>
    <Name>test-vm</Name>
    <OperatingSystemSection ovf:id="94" vmw:osType="ubuntu64Guest"><Info>The kind of installed guest operating system</Info></OperatingSystemSection>
    <VirtualHardwareSection ovf:transport="iso">
      <Info>Virtual hardware requirements</Info>
      <System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID><vssd:VirtualSystemIdentifier>test-vm</vssd:VirtualSystemIdentifier><vssd:VirtualSystemType>vmx-10</vssd:VirtualSystemType></System>
      <Item><rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits><rasd:ElementName>2 virtual CPU(s)</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>1024MB of memory</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>1024</rasd:VirtualQuantity></Item>
      <Item><rasd:Address>0</rasd:Address><rasd:ElementName>SCSI Controller 0</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
      %s
      <Item><rasd:Address>0</rasd:Address><rasd:ElementName>IDE Controller 0</rasd:ElementName><rasd:InstanceID>5</rasd:InstanceID><rasd:ResourceType>5</rasd:ResourceType></Item>
      <Item ovf:required="false"><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:AutomaticAllocation>false</rasd:AutomaticAllocation><rasd:ElementName>CD/DVD Drive 1</rasd:ElementName><rasd:HostResource>ovf:/file/file2</rasd:HostResource><rasd:InstanceID>7</rasd:InstanceID><rasd:Parent>5</rasd:Parent><rasd:ResourceSubType>vmware.cdrom.iso</rasd:ResourceSubType><rasd:ResourceType>15</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:ElementName>Hard Disk 1</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>8</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>2</rasd:AddressOnParent><rasd:AutomaticAllocation>true</rasd:AutomaticAllocation><rasd:Connection>VM Network</rasd:Connection><rasd:ElementName>Ethernet 1</rasd:ElementName><rasd:InstanceID>11</rasd:InstanceID><rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>`, diskBytes, isoBytes, diskCapMiB, serialItem)
}

type importEnv struct {
	tb     *Testbed
	c      *govmomi.Client
	ctx    context.Context
	pool   *object.ResourcePool
	folder *object.Folder
	ds     *object.Datastore
	net    types.ManagedObjectReference
	finder *find.Finder
}

func newImportEnv(t *testing.T) *importEnv {
	tb, c, ctx := start(t, "esx")
	finder := find.NewFinder(c.Client, false)
	dc, _ := finder.DefaultDatacenter(ctx)
	finder.SetDatacenter(dc)
	folders, _ := dc.Folders(ctx)
	pool, _ := finder.DefaultResourcePool(ctx)
	ds, _ := finder.Datastore(ctx, "datastore1")
	netw, err := finder.Network(ctx, "VM Network")
	if err != nil {
		t.Fatal(err)
	}
	return &importEnv{tb: tb, c: c, ctx: ctx, pool: pool, folder: folders.VmFolder, ds: ds, net: netw.Reference(), finder: finder}
}

func (e *importEnv) spec(t *testing.T, desc, name, provisioning string) *types.OvfCreateImportSpecResult {
	t.Helper()
	m := ovf.NewManager(e.c.Client)
	spec, err := m.CreateImportSpec(e.ctx, desc, e.pool, e.ds, types.OvfCreateImportSpecParams{
		EntityName: name, DiskProvisioning: provisioning,
		NetworkMapping: []types.OvfNetworkMapping{{Name: "VM Network", Network: e.net}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func (e *importEnv) leaseState(t *testing.T, l *nfc.Lease) mo.HttpNfcLease {
	t.Helper()
	var m mo.HttpNfcLease
	if err := property.DefaultCollector(e.c.Client).RetrieveOne(e.ctx, l.Reference(), []string{"state", "error", "info", "transferProgress"}, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func nfcReport(t *testing.T, tb *Testbed) []leaseReport {
	t.Helper()
	var st struct {
		Leases []leaseReport `json:"leases"`
	}
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := cl.Get(strings.TrimSuffix(tb.URL, "/sdk") + "/testbed/nfc")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Leases
}

// post uploads a disk as a client does (exact Content-Length), without govmomi's progress
// plumbing (which panics when the server answers before the body is sent).
func post(t *testing.T, u *url.URL, body io.Reader, length int64) (int, string, error) {
	t.Helper()
	req, _ := http.NewRequest("POST", u.String(), body)
	req.Header.Set("Content-Type", streamVmdkType)
	req.ContentLength = length
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := ioutil.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// drain is a progress sink for uploads made without the lease updater.
type drain struct{}

func (drain) Sink() chan<- progress.Report {
	ch := make(chan progress.Report)
	go func() {
		for range ch {
		}
	}()
	return ch
}

func itemFor(info *nfc.LeaseInfo, suffix string) nfc.FileItem {
	for _, it := range info.Items {
		if strings.HasSuffix(it.Path, suffix) {
			return it
		}
	}
	return nfc.FileItem{}
}

func TestImportLease(t *testing.T) {
	e := newImportEnv(t)
	raw := testImage(12<<20+4096, 11)
	stream := qemuStream(t, raw)
	iso := bytes.Repeat([]byte("CD001 seed "), 2000)
	desc := testOVF(int64(len(stream)), 16, len(iso), false)

	t.Run("CreateImportSpec", func(t *testing.T) {
		// Ubuntu's serial port: refused in error[], as vcsim (and some real hosts) do
		withSerial := e.spec(t, testOVF(int64(len(stream)), 16, len(iso), true), "ser", "thin")
		if len(withSerial.Error) == 0 || !strings.Contains(withSerial.Error[0].LocalizedMessage, "21") {
			t.Fatalf("serial port: %+v", withSerial.Error)
		}
		// no VirtualSystem: InvalidArgument, not a crashed handler
		m := ovf.NewManager(e.c.Client)
		for _, bad := range []string{"<notovf/>", `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><References/></Envelope>`, "not xml at all <"} {
			_, err := m.CreateImportSpec(e.ctx, bad, e.pool, e.ds, types.OvfCreateImportSpecParams{EntityName: "bad"})
			if faultName2(err) != "InvalidArgument" || !strings.Contains(err.Error(), "ovfDescriptor") {
				t.Fatalf("%q: %v", bad, err)
			}
		}
		spec := e.spec(t, desc, "imp1", "")
		vmSpec := spec.ImportSpec.(*types.VirtualMachineImportSpec)
		for _, c := range vmSpec.ConfigSpec.DeviceChange {
			if d, ok := c.GetVirtualDeviceConfigSpec().Device.(*types.VirtualDisk); ok {
				if d.CapacityInKB != 16<<10 || isTrue(d.Backing.(*types.VirtualDiskFlatVer2BackingInfo).ThinProvisioned) {
					t.Fatalf("disk %d KB thin %v (diskProvisioning unset means thick)", d.CapacityInKB, *d.Backing.(*types.VirtualDiskFlatVer2BackingInfo).ThinProvisioned)
				}
			}
		}
		if len(spec.FileItem) != 2 {
			t.Fatalf("file items %+v", spec.FileItem)
		}
		for _, fi := range spec.FileItem {
			if fi.Create != (fi.CimType != 17) {
				t.Fatalf("file item %+v: create must be set for the ISO only", fi)
			}
		}
	})

	t.Run("Upload", func(t *testing.T) {
		spec := e.spec(t, desc, "imp1", "thin")
		freeBefore := e.tb.freeBytes()
		lease, err := e.pool.ImportVApp(e.ctx, spec.ImportSpec, e.folder, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st := e.leaseState(t, lease); st.State != types.HttpNfcLeaseStateInitializing || st.Info != nil {
			t.Fatalf("a new lease: %s %+v", st.State, st.Info)
		}
		info, err := lease.Wait(e.ctx, spec.FileItem)
		if err != nil {
			t.Fatal(err)
		}
		if info.LeaseTimeout != 300 || len(info.Items) != 2 || info.TotalDiskCapacityInKB != 16<<10 || !strings.HasPrefix(info.DeviceUrl[0].Url, "https://*/nfc/") {
			t.Fatalf("lease info %+v", info.HttpNfcLeaseInfo)
		}
		disk, cd := itemFor(info, ".vmdk"), itemFor(info, ".iso")
		if disk.URL == nil || cd.URL == nil || disk.URL.Host != strings.TrimPrefix(strings.TrimSuffix(e.tb.URL, "/sdk"), "https://") {
			t.Fatalf("items %+v", info.Items)
		}
		// the disk exists with its capacity before the upload
		flat := filepath.Join(e.tb.DSDir, "imp1", "disk-0-flat.vmdk")
		if fi, err := os.Stat(flat); err != nil || fi.Size() != 16<<20 {
			t.Fatalf("flat before the upload: %v %v", fi, err)
		}
		// a chunked body is refused
		u := *disk.URL
		req, _ := http.NewRequest("POST", u.String(), io.MultiReader(bytes.NewReader(stream[:1024])))
		req.Header.Set("Content-Type", streamVmdkType)
		req.ContentLength = -1
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		if resp, err := cl.Do(req); err != nil || resp.StatusCode != http.StatusLengthRequired {
			t.Fatalf("chunked: %v %v", resp, err)
		}
		if st := e.leaseState(t, lease); st.State != types.HttpNfcLeaseStateReady {
			t.Fatalf("after a refused chunked upload: %s", st.State)
		}
		upd := lease.StartUpdater(e.ctx, info)
		if err := lease.Upload(e.ctx, disk, bytes.NewReader(stream), soap.Upload{ContentLength: int64(len(stream))}); err != nil {
			t.Fatal(err)
		}
		if err := lease.Progress(e.ctx, 50); err != nil {
			t.Fatal(err)
		}
		if err := lease.Upload(e.ctx, cd, bytes.NewReader(iso), soap.Upload{ContentLength: int64(len(iso))}); err != nil {
			t.Fatal(err)
		}
		upd.Done()
		if err := lease.Complete(e.ctx); err != nil {
			t.Fatal(err)
		}
		if st := e.leaseState(t, lease); st.State != types.HttpNfcLeaseStateDone {
			t.Fatalf("after complete: %s", st.State)
		}
		got, _ := ioutil.ReadFile(flat)
		if len(got) != 16<<20 || !bytes.Equal(got[:len(raw)], raw) || !allZero(got[len(raw):]) {
			t.Fatalf("the disk on the datastore differs from the raw image (%d bytes)", len(got))
		}
		if b, _ := ioutil.ReadFile(filepath.Join(e.tb.DSDir, "imp1", "_deviceImage0.iso")); !bytes.Equal(b, iso) {
			t.Fatalf("the ISO was not stored (%d bytes)", len(b))
		}
		desc, _ := ioutil.ReadFile(filepath.Join(e.tb.DSDir, "imp1", "disk-0.vmdk"))
		if !strings.Contains(string(desc), `RW 32768 VMFS "disk-0-flat.vmdk"`) || !strings.Contains(string(desc), `ddb.thinProvisioned = "1"`) {
			t.Fatalf("descriptor:\n%s", desc)
		}
		if vmxData, _ := ioutil.ReadFile(filepath.Join(e.tb.DSDir, "imp1", "imp1.vmx")); !strings.Contains(string(vmxData), `scsi0:0.fileName = "disk-0.vmdk"`) {
			t.Fatalf(".vmx:\n%s", vmxData)
		}
		reps := nfcReport(t, e.tb)
		r := reps[len(reps)-1]
		if r.State != "done" || r.ProgressCalls < 1 || r.VMName != "imp1" || len(r.Files) != 2 {
			t.Fatalf("report %+v", r)
		}
		for _, f := range r.Files {
			want := int64(len(stream))
			if !f.Disk {
				want = int64(len(iso))
			}
			if f.Received != want || f.Status != "done" {
				t.Fatalf("file %+v (want %d bytes)", f, want)
			}
		}
		// the written extents use datastore space; the NFC URL is gone
		if used := freeBefore - e.tb.freeBytes(); used < int64(len(iso)) || used > 16<<20 {
			t.Fatalf("datastore space used by the import: %d", used)
		}
		var dsMo mo.Datastore
		_ = e.ds.Properties(e.ctx, e.ds.Reference(), []string{"summary"}, &dsMo)
		if dsMo.Summary.FreeSpace != e.tb.freeBytes() {
			t.Fatalf("summary.freeSpace %d, want %d", dsMo.Summary.FreeSpace, e.tb.freeBytes())
		}
		if code, _, err := post(t, disk.URL, bytes.NewReader(stream), int64(len(stream))); code != 404 {
			t.Fatalf("upload after complete: %d %v", code, err)
		}
		if err := lease.Complete(e.ctx); faultName2(err) != "InvalidState" {
			t.Fatalf("second complete: %v", err)
		}
	})

	t.Run("BadStream", func(t *testing.T) {
		spec := e.spec(t, desc, "imp2", "thin")
		lease, err := e.pool.ImportVApp(e.ctx, spec.ImportSpec, e.folder, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := lease.Wait(e.ctx, spec.FileItem)
		if err != nil {
			t.Fatal(err)
		}
		bad := append([]byte(nil), stream[:len(stream)/2]...)
		if code, msg, err := post(t, itemFor(info, ".vmdk").URL, bytes.NewReader(bad), int64(len(bad))); code != 500 || !strings.Contains(msg, "truncated") {
			t.Fatalf("truncated stream: %d %q %v", code, msg, err)
		}
		st := e.leaseState(t, lease)
		if st.State != types.HttpNfcLeaseStateError || st.Error == nil || !strings.Contains(st.Error.LocalizedMessage, "truncated") {
			t.Fatalf("lease after a bad upload: %s %+v", st.State, st.Error)
		}
		if err := lease.Complete(e.ctx); faultName2(err) != "InvalidState" {
			t.Fatalf("complete after error: %v", err)
		}
		// the VM stays (the client must destroy it)
		if _, err := e.finder.VirtualMachine(e.ctx, "imp2"); err != nil {
			t.Fatal(err)
		}
		// a stream larger than the disk (8 MiB in this OVF)
		small := testOVF(int64(len(stream)), 8, len(iso), false)
		spec = e.spec(t, small, "imp2b", "thin")
		lease, err = e.pool.ImportVApp(e.ctx, spec.ImportSpec, e.folder, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err = lease.Wait(e.ctx, spec.FileItem)
		if err != nil {
			t.Fatal(err)
		}
		if code, msg, err := post(t, itemFor(info, ".vmdk").URL, bytes.NewReader(stream), int64(len(stream))); code != 500 || !strings.Contains(msg, "exceeds") {
			t.Fatalf("too large: %d %q %v", code, msg, err)
		}
		// not enough space for the data
		used := e.tb.nfcUsed()
		e.tb.mu.Lock()
		saved := e.tb.free
		e.tb.free = used + 1<<20
		e.tb.mu.Unlock()
		spec = e.spec(t, desc, "imp2c", "thin")
		lease, err = e.pool.ImportVApp(e.ctx, spec.ImportSpec, e.folder, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err = lease.Wait(e.ctx, spec.FileItem)
		if err != nil {
			t.Fatal(err)
		}
		if code, msg, err := post(t, itemFor(info, ".vmdk").URL, bytes.NewReader(stream), int64(len(stream))); code != 500 || !strings.Contains(msg, "not enough space") {
			t.Fatalf("no space: %d %q %v", code, msg, err)
		}
		if st := e.leaseState(t, lease); st.Error == nil || faultName(st.Error.Fault) != "NoDiskSpace" {
			t.Fatalf("no space: %+v", st.Error)
		}
		// a thick disk larger than the free space: ImportVApp refuses it
		thick := e.spec(t, desc, "imp2d", "thick")
		if _, err := e.pool.ImportVApp(e.ctx, thick.ImportSpec, e.folder, nil); faultName2(err) != "NoDiskSpace" {
			t.Fatalf("thick import without space: %v", err)
		}
		e.tb.mu.Lock()
		e.tb.free = saved
		e.tb.mu.Unlock()
	})

	t.Run("Abort", func(t *testing.T) {
		spec := e.spec(t, desc, "imp3", "thin")
		lease, err := e.pool.ImportVApp(e.ctx, spec.ImportSpec, e.folder, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := lease.Wait(e.ctx, spec.FileItem)
		if err != nil {
			t.Fatal(err)
		}
		if err := lease.Abort(e.ctx, nil); err != nil {
			t.Fatal(err)
		}
		if st := e.leaseState(t, lease); st.State != types.HttpNfcLeaseStateError {
			t.Fatalf("after abort: %s", st.State)
		}
		if err := lease.Abort(e.ctx, nil); faultName2(err) != "InvalidState" {
			t.Fatalf("second abort: %v", err)
		}
		if code, _, err := post(t, itemFor(info, ".vmdk").URL, bytes.NewReader(stream), int64(len(stream))); code != 404 {
			t.Fatalf("upload after abort: %d %v", code, err)
		}
		if _, err := e.finder.VirtualMachine(e.ctx, "imp3"); err != nil {
			t.Fatal("abort deleted the VM")
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		e.tb.mu.Lock()
		e.tb.leaseTimeout = 2 * time.Second
		e.tb.mu.Unlock()
		spec := e.spec(t, desc, "imp4", "thin")
		lease, err := e.pool.ImportVApp(e.ctx, spec.ImportSpec, e.folder, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := lease.Wait(e.ctx, spec.FileItem)
		if err != nil {
			t.Fatal(err)
		}
		if info.LeaseTimeout != 2 {
			t.Fatalf("leaseTimeout %d", info.LeaseTimeout)
		}
		// progress renews the lease
		for i := 0; i < 3; i++ {
			time.Sleep(time.Second)
			if err := lease.Progress(e.ctx, int32(i)); err != nil {
				t.Fatal(err)
			}
		}
		// then a stalled upload: half the stream, nothing more, no progress
		pr, pw := io.Pipe()
		go func() { _, _ = pw.Write(stream[:len(stream)/2]) }()
		begin := time.Now()
		done := make(chan error, 1)
		go func() {
			code, msg, err := post(t, itemFor(info, ".vmdk").URL, pr, int64(len(stream)))
			if err == nil && code == 200 {
				done <- nil
				return
			}
			done <- fmt.Errorf("%d %s %v", code, msg, err)
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("the stalled upload succeeded")
			}
			if el := time.Since(begin); el < time.Second || el > 6*time.Second {
				t.Fatalf("cut off after %s", el)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the stalled upload was never cut off")
		}
		_ = pw.Close()
		st := e.leaseState(t, lease)
		if st.State != types.HttpNfcLeaseStateError || st.Error == nil || faultName(st.Error.Fault) != "Timedout" {
			t.Fatalf("after the timeout: %s %+v", st.State, st.Error)
		}
		if err := lease.Progress(e.ctx, 60); faultName2(err) != "Timedout" {
			t.Fatalf("progress after timeout: %v", err)
		}
		if err := lease.Complete(e.ctx); faultName2(err) != "Timedout" {
			t.Fatalf("complete after timeout: %v", err)
		}
		if _, err := methods.HttpNfcLeaseProgress(e.ctx, e.c.Client, &types.HttpNfcLeaseProgress{This: lease.Reference(), Percent: 1}); faultName2(err) != "Timedout" {
			t.Fatalf("raw progress: %v", err)
		}
	})
}

// In vCenter mode the same flow works through a cluster's pool.
func TestImportVPX(t *testing.T) {
	tb, c, ctx := start(t, "vpx")
	finder := find.NewFinder(c.Client, false)
	dc, _ := finder.DefaultDatacenter(ctx)
	finder.SetDatacenter(dc)
	folders, _ := dc.Folders(ctx)
	pool, err := finder.DefaultResourcePool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := finder.Datastore(ctx, "datastore1")
	raw := testImage(2<<20, 5)
	stream := qemuStream(t, raw)
	spec, err := ovf.NewManager(c.Client).CreateImportSpec(ctx, testOVF(int64(len(stream)), 4, 10, false), pool, ds, types.OvfCreateImportSpecParams{EntityName: "vimp", DiskProvisioning: "thin"})
	if err != nil || len(spec.Error) > 0 {
		t.Fatalf("%v %+v", err, spec)
	}
	lease, err := pool.ImportVApp(ctx, spec.ImportSpec, folders.VmFolder, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := lease.Wait(ctx, spec.FileItem)
	if err != nil {
		t.Fatal(err)
	}
	if code, msg, err := post(t, itemFor(info, ".vmdk").URL, bytes.NewReader(stream), int64(len(stream))); code != 200 {
		t.Fatalf("upload: %d %q %v", code, msg, err)
	}
	if err := lease.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := ioutil.ReadFile(filepath.Join(tb.DSDir, "vimp", "disk-0-flat.vmdk"))
	if len(got) != 4<<20 || !bytes.Equal(got[:len(raw)], raw) {
		t.Fatal("disk content differs")
	}
}
