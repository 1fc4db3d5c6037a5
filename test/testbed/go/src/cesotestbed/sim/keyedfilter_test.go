package sim

import (
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

func TestKeyedFilterVersions(t *testing.T) {
	tb, c, ctx := start(t, "esx")
	m := view.NewManager(c.Client)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		t.Fatal(err)
	}
	managed := `config.extraConfig["ceso.managed"]`
	spec := types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{Obj: v.Reference(), Skip: types.NewBool(true),
			SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view"}}}},
		PropSet: []types.PropertySpec{{Type: "VirtualMachine", PathSet: []string{"name", "runtime.powerState", managed}}},
	}
	pc, err := property.DefaultCollector(c.Client).Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := methods.CreateFilter(ctx, c.Client, &types.CreateFilter{This: pc.Reference(), Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	zero := int32(0)
	wait := func(version string) (*types.UpdateSet, error) {
		res, err := methods.WaitForUpdatesEx(ctx, c.Client, &types.WaitForUpdatesEx{This: pc.Reference(), Version: version, Options: &types.WaitOptions{MaxWaitSeconds: &zero}})
		if err != nil {
			return nil, err
		}
		return res.Returnval, nil
	}
	objects := func(set *types.UpdateSet) []types.ObjectUpdate {
		if set == nil {
			return nil
		}
		var out []types.ObjectUpdate
		for _, fu := range set.FilterSet {
			if fu.Filter != filter.Returnval {
				t.Errorf("an update of filter %v, want %v", fu.Filter, filter.Returnval)
			}
			out = append(out, fu.ObjectSet...)
		}
		return out
	}

	full, err := wait("")
	if err != nil {
		t.Fatal(err)
	}
	entered := objects(full)
	if len(entered) < 3 || full.Version == "" {
		t.Fatalf("initial set: %d objects, version %q", len(entered), full.Version)
	}
	for _, ou := range entered {
		if ou.Kind != types.ObjectUpdateKindEnter || len(ou.ChangeSet) < 2 {
			t.Errorf("initial %s: %s with %d changes", ou.Obj.Value, ou.Kind, len(ou.ChangeSet))
		}
	}

	started := time.Now()
	if set, err := wait(full.Version); err != nil || set != nil {
		t.Fatalf("nothing changed: %+v, %v; want an empty answer", set, err)
	}
	if took := time.Since(started); took > 200*time.Millisecond {
		t.Errorf("maxWaitSeconds 0 took %v: it must answer at once", took)
	}

	first := object.NewVirtualMachine(c.Client, entered[0].Obj)
	task, err := first.Reconfigure(ctx, types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: "ceso.managed", Value: "true"}}})
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	changed, err := wait(full.Version)
	if err != nil {
		t.Fatal(err)
	}
	modified := objects(changed)
	if len(modified) != 1 || modified[0].Kind != types.ObjectUpdateKindModify || len(modified[0].ChangeSet) != 1 || modified[0].ChangeSet[0].Name != managed {
		t.Fatalf("after a marker was set: %+v", modified)
	}
	if ov, ok := modified[0].ChangeSet[0].Val.(types.OptionValue); !ok || ov.Value != "true" {
		t.Errorf("the marker's value: %#v, want the OptionValue", modified[0].ChangeSet[0].Val)
	}
	if changed.Version == full.Version {
		t.Errorf("the version did not move: %q", changed.Version)
	}
	if _, err := wait(full.Version); faultName2(err) != "InvalidCollectorVersion" {
		t.Errorf("a stale version: %v, want InvalidCollectorVersion", err)
	}

	if state, err := first.PowerState(ctx); err == nil && state == types.VirtualMachinePowerStatePoweredOn {
		if task, err = first.PowerOff(ctx); err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		if set, err := wait(changed.Version); err != nil || len(objects(set)) != 1 {
			t.Fatalf("after power off: %+v, %v", set, err)
		} else {
			changed = set
		}
	}
	task, err = first.Destroy(ctx)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	left, err := wait(changed.Version)
	if err != nil {
		t.Fatal(err)
	}
	if gone := objects(left); len(gone) != 1 || gone[0].Kind != types.ObjectUpdateKindLeave || gone[0].Obj != first.Reference() {
		t.Errorf("after a VM was destroyed: %+v", gone)
	}

	controlCall(t, tb, "POST", "keyed-paths", `{"mode":"refuse"}`)
	if _, err := methods.CreateFilter(ctx, c.Client, &types.CreateFilter{This: pc.Reference(), Spec: spec}); faultName2(err) != "InvalidProperty" {
		t.Errorf("refuse: CreateFilter %v, want InvalidProperty", err)
	}
	controlCall(t, tb, "POST", "keyed-paths", `{"mode":"support"}`)

	if err := pc.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := wait(left.Version); faultName2(err) != "ManagedObjectNotFound" {
		t.Errorf("a destroyed collector: %v, want ManagedObjectNotFound", err)
	}
}
