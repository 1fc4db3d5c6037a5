package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

func controlCall(t *testing.T, tb *Testbed, method, op, body string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	tb.handler.ServeHTTP(rec, httptest.NewRequest(method, "/testbed/"+op, strings.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d %s", method, op, rec.Code, rec.Body.String())
	}
	return rec.Body.String()
}

func TestKeyedPaths(t *testing.T) {
	tb, c, ctx := start(t, "esx")
	m := view.NewManager(c.Client)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		t.Fatal(err)
	}
	var vms []types.ObjectContent
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name"}, &vms); err != nil || len(vms) < 2 {
		t.Fatalf("%d VMs, %v", len(vms), err)
	}
	first := object.NewVirtualMachine(c.Client, vms[0].Obj)
	task, err := first.Reconfigure(ctx, types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{
		&types.OptionValue{Key: "ceso.managed", Value: "true"},
		&types.OptionValue{Key: "guestinfo.userdata", Value: strings.Repeat("A", 4096)},
	}})
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	managed, absent, value := `config.extraConfig["ceso.managed"]`, `config.extraConfig["ceso.none"]`, `config.extraConfig["ceso.managed"].value`
	viewSpec := func(paths ...string) types.PropertyFilterSpec {
		return types.PropertyFilterSpec{
			ObjectSet: []types.ObjectSpec{{Obj: v.Reference(), Skip: types.NewBool(true),
				SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view"}}}},
			PropSet: []types.PropertySpec{{Type: "VirtualMachine", PathSet: paths}},
		}
	}
	pc := property.DefaultCollector(c.Client)
	retrieveEx := func(paths ...string) ([]types.ObjectContent, error) {
		res, err := pc.RetrieveProperties(ctx, types.RetrieveProperties{SpecSet: []types.PropertyFilterSpec{viewSpec(paths...)}})
		if err != nil {
			return nil, err
		}
		return res.Returnval, nil
	}

	check := func(label string, objects []types.ObjectContent, wantName bool) {
		t.Helper()
		if len(objects) != len(vms) {
			t.Fatalf("%s: %d objects, want %d", label, len(objects), len(vms))
		}
		for _, o := range objects {
			props := map[string]interface{}{}
			for _, p := range o.PropSet {
				props[p.Name] = p.Val
			}
			if len(o.MissingSet) != 0 {
				t.Errorf("%s: %s missingSet %v", label, o.Obj.Value, o.MissingSet)
			}
			if _, ok := props["config.extraConfig"]; ok {
				t.Errorf("%s: the whole extraConfig came back", label)
			}
			if _, ok := props["name"]; ok != wantName {
				t.Errorf("%s: name present = %v", label, ok)
			}
			if _, ok := props[absent]; ok {
				t.Errorf("%s: a key that does not exist came back: %v", label, props[absent])
			}
			if o.Obj == vms[0].Obj {
				ov, ok := props[managed].(types.OptionValue)
				if !ok || ov.Key != "ceso.managed" || ov.Value != "true" {
					t.Errorf("%s: %s = %#v, want the OptionValue", label, managed, props[managed])
				}
				if props[value] != "true" {
					t.Errorf("%s: %s = %#v", label, value, props[value])
				}
			} else if _, ok := props[managed]; ok {
				t.Errorf("%s: %s on a VM without it", label, managed)
			}
		}
	}
	objects, err := retrieveEx("name", managed, absent, value)
	if err != nil {
		t.Fatal(err)
	}
	check("RetrieveProperties", objects, true)

	ex, err := methods.RetrievePropertiesEx(ctx, c.Client, &types.RetrievePropertiesEx{This: pc.Reference(), SpecSet: []types.PropertyFilterSpec{viewSpec(managed, absent, value)}})
	if err != nil || ex.Returnval == nil {
		t.Fatal(err)
	}
	check("RetrievePropertiesEx, keyed paths only", ex.Returnval.Objects, false)

	var requests []propertyRequest
	if err := json.Unmarshal([]byte(controlCall(t, tb, http.MethodGet, "property-requests", "")), &requests); err != nil {
		t.Fatal(err)
	}
	last := requests[len(requests)-1]
	if last.Method != "RetrievePropertiesEx" || strings.Join(last.Paths["VirtualMachine"], " ") != managed+" "+absent+" "+value || last.ResponseBytes <= 0 || last.ResponseBytes > 4096 {
		t.Errorf("recorded %+v", last)
	}

	if _, err := retrieveEx("name", `config.extraConfig[ceso.managed]`); faultName2(err) != "InvalidProperty" {
		t.Errorf("an unquoted string key: %v, want InvalidProperty", err)
	}
	if _, err := retrieveEx(`config.hardware.device["4000"]`); faultName2(err) != "InvalidProperty" {
		t.Errorf("a string key on an int-keyed array: %v, want InvalidProperty", err)
	}
	if _, err := retrieveEx(`name["x"]`); faultName2(err) != "InvalidProperty" {
		t.Errorf("a key on a string: %v, want InvalidProperty", err)
	}
	devices, err := retrieveEx(`config.hardware.device[4000].deviceInfo.label`)
	if err != nil || len(devices) == 0 || len(devices[0].PropSet) != 1 || !strings.HasPrefix(devices[0].PropSet[0].Val.(string), "ethernet-") {
		t.Errorf("an int key with an item: %+v, %v", devices, err)
	}

	controlCall(t, tb, http.MethodPost, "keyed-paths", `{"mode":"refuse"}`)
	if _, err := retrieveEx("name", managed); faultName2(err) != "InvalidProperty" {
		t.Errorf("refuse: %v, want InvalidProperty", err)
	}
	controlCall(t, tb, http.MethodPost, "keyed-paths", `{"mode":"legacy"}`)
	objects, err = retrieveEx("name", managed)
	if err != nil || len(objects) == 0 || len(objects[0].MissingSet) != 1 || objects[0].MissingSet[0].Path != managed {
		t.Errorf("legacy: %+v, %v; want vcsim 0.24.2's missingSet", objects, err)
	}
	controlCall(t, tb, http.MethodPost, "reset", "")
	objects, err = retrieveEx("name", managed, absent, value)
	if err != nil {
		t.Fatal(err)
	}
	check("after reset", objects, true)

	out := controlCall(t, tb, http.MethodPost, "extra-config", `{"set":{"ceso.pool":"p1"},"random":{"guestinfo.userdata":2048,"guestinfo.metadata":100}}`)
	if !strings.Contains(out, fmt.Sprintf(`"vms":%d`, len(vms))) {
		t.Errorf("extra-config: %s", out)
	}
	var full []types.ObjectContent
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"config.extraConfig"}, &full); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, o := range full {
		values := map[string]string{}
		for _, ov := range o.PropSet[0].Val.(types.ArrayOfOptionValue).OptionValue {
			values[ov.GetOptionValue().Key], _ = ov.GetOptionValue().Value.(string)
		}
		if values["ceso.pool"] != "p1" || len(values["guestinfo.userdata"]) != 2048 || len(values["guestinfo.metadata"]) != 100 || seen[values["guestinfo.userdata"]] {
			t.Errorf("%s: pool %q, userdata %d, metadata %d chars, unique %v", o.Obj.Value, values["ceso.pool"], len(values["guestinfo.userdata"]), len(values["guestinfo.metadata"]), !seen[values["guestinfo.userdata"]])
		}
		seen[values["guestinfo.userdata"]] = true
	}
}
