package main

import (
	"context"
	"fmt"
	"io/ioutil"
	"os"
	"strings"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// importOVF is govc's import.ovf in its essentials, with govmomi's own lease and upload
// (nfc.Lease.Upload: one plain HTTP POST of the file with its exact Content-Length): the peer the
// benchmark measures ceso's import against. The descriptor must be one the host accepts as is.
func importOVF(ctx context.Context, c *govmomi.Client, ovfPath, name string) (interface{}, error) {
	started := time.Now()
	text, err := ioutil.ReadFile(ovfPath)
	if err != nil {
		return nil, err
	}
	envelope, err := ovf.Unmarshal(strings.NewReader(string(text)))
	if err != nil {
		return nil, err
	}
	finder := find.NewFinder(c.Client, false)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		return nil, err
	}
	finder.SetDatacenter(dc)
	ds, err := finder.DefaultDatastore(ctx)
	if err != nil {
		return nil, err
	}
	pool, err := finder.DefaultResourcePool(ctx)
	if err != nil {
		return nil, err
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return nil, err
	}
	var mapping []types.OvfNetworkMapping
	if envelope.Network != nil {
		for _, n := range envelope.Network.Networks {
			net, err := finder.Network(ctx, n.Name)
			if err != nil {
				return nil, err
			}
			mapping = append(mapping, types.OvfNetworkMapping{Name: n.Name, Network: net.Reference()})
		}
	}
	cisp := types.OvfCreateImportSpecParams{EntityName: name, DiskProvisioning: "thin", NetworkMapping: mapping}
	spec, err := ovf.NewManager(c.Client).CreateImportSpec(ctx, string(text), pool, ds, cisp)
	if err != nil {
		return nil, err
	}
	if spec.Error != nil {
		return nil, fmt.Errorf("%s", spec.Error[0].LocalizedMessage)
	}
	lease, err := pool.ImportVApp(ctx, spec.ImportSpec, folders.VmFolder, nil)
	if err != nil {
		return nil, err
	}
	info, err := lease.Wait(ctx, spec.FileItem)
	if err != nil {
		return nil, err
	}
	updater := lease.StartUpdater(ctx, info)
	uploadStarted := time.Now()
	var bytes int64
	for _, item := range info.Items {
		file, err := os.Open(dirOf(ovfPath) + "/" + item.Path)
		if err != nil {
			updater.Done()
			_ = lease.Abort(ctx, nil)
			return nil, err
		}
		stat, _ := file.Stat()
		bytes += stat.Size()
		err = lease.Upload(ctx, item, file, soap.Upload{ContentLength: stat.Size()})
		file.Close()
		if err != nil {
			updater.Done()
			_ = lease.Abort(ctx, nil)
			return nil, err
		}
	}
	uploadMs := time.Since(uploadStarted).Milliseconds()
	updater.Done()
	if err := lease.Complete(ctx); err != nil {
		return nil, err
	}
	var ref *types.ManagedObjectReference
	if info.Entity.Value != "" {
		ref = &info.Entity
	}
	return map[string]interface{}{"ok": true, "bytes": bytes, "uploadMs": uploadMs, "totalMs": time.Since(started).Milliseconds(), "vm": ref}, nil
}

func dirOf(path string) string {
	if i := strings.LastIndex(path, "/"); i >= 0 {
		return path[:i]
	}
	return "."
}

// copyDisk is a bare VirtualDiskManager.CopyVirtualDisk_Task (thin), as govc datastore.disk.cp
// does it: the benchmark's peer for a backup's disk copy.
func copyDisk(ctx context.Context, c *govmomi.Client, source, destination string) (interface{}, error) {
	started := time.Now()
	finder := find.NewFinder(c.Client, false)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		return nil, err
	}
	manager := object.NewVirtualDiskManager(c.Client)
	spec := &types.VirtualDiskSpec{DiskType: string(types.VirtualDiskTypeThin), AdapterType: string(types.VirtualDiskAdapterTypeLsiLogic)}
	task, err := manager.CopyVirtualDisk(ctx, source, dc, destination, dc, spec, false)
	if err != nil {
		return nil, err
	}
	if err := task.Wait(ctx); err != nil {
		return nil, err
	}
	return map[string]interface{}{"ok": true, "ms": time.Since(started).Milliseconds()}, nil
}
