// Command list-reference is the benchmark's peer for `ceso vm list`: govmomi reading the same
// summary fields of every VM over the same one RetrievePropertiesEx (root folder, the same
// traversal specs, ContinueRetrievePropertiesEx while the host pages), ceso's markers by key
// (config.extraConfig["ceso.managed"], ...) or, with --extra-config whole, the whole extraConfig.
// It prints the VMs as JSON (name, id, managed, expiresAt, linked, pool, poolState, ...).
//
//	list-reference --url https://HOST:PORT/sdk --user root --thumbprint SHA1 [--extra-config keyed|whole]
//	(password in $LIST_REFERENCE_PASSWORD)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vmware/govmomi/session"
)

var basePaths = []string{"name", "config.uuid", "runtime.powerState", "config.hardware.numCPU", "config.hardware.memoryMB", "guest.ipAddress", "config.guestId"}
var markers = []string{"ceso.managed", "ceso.expiresAt", "ceso.linked", "ceso.pool", "ceso.poolState"}

type summary struct {
	Name       string  `json:"name"`
	ID         string  `json:"id"`
	UUID       string  `json:"uuid"`
	PowerState string  `json:"powerState"`
	CPU        int32   `json:"cpu"`
	MemoryMB   int32   `json:"memoryMB"`
	IP         string  `json:"ip"`
	GuestID    string  `json:"guestId"`
	Managed    bool    `json:"managed"`
	ExpiresAt  *string `json:"expiresAt"`
	Linked     bool    `json:"linked"`
	Pool       *string `json:"pool"`
	PoolState  *string `json:"poolState"`
}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "list-reference: "+format+"\n", args...)
	os.Exit(1)
}

func traversal() []types.BaseSelectionSpec {
	return []types.BaseSelectionSpec{
		&types.TraversalSpec{SelectionSpec: types.SelectionSpec{Name: "folderTraversal"}, Type: "Folder", Path: "childEntity", Skip: types.NewBool(false),
			SelectSet: []types.BaseSelectionSpec{&types.SelectionSpec{Name: "folderTraversal"}, &types.SelectionSpec{Name: "datacenterVmFolder"}, &types.SelectionSpec{Name: "vappVms"}}},
		&types.TraversalSpec{SelectionSpec: types.SelectionSpec{Name: "datacenterVmFolder"}, Type: "Datacenter", Path: "vmFolder", Skip: types.NewBool(false),
			SelectSet: []types.BaseSelectionSpec{&types.SelectionSpec{Name: "folderTraversal"}}},
		&types.TraversalSpec{SelectionSpec: types.SelectionSpec{Name: "vappVms"}, Type: "VirtualApp", Path: "vm", Skip: types.NewBool(false)},
	}
}

func main() {
	var rawURL, user, thumb, extra string
	flag.StringVar(&rawURL, "url", "", "SDK URL, https://HOST:PORT/sdk")
	flag.StringVar(&user, "user", "root", "user")
	flag.StringVar(&thumb, "thumbprint", "", "trusted SHA-1 certificate thumbprint (AA:BB:..)")
	flag.StringVar(&extra, "extra-config", "keyed", "keyed: ceso's markers by key; whole: all of config.extraConfig")
	flag.Parse()
	if rawURL == "" || thumb == "" || (extra != "keyed" && extra != "whole") {
		die("usage: list-reference --url URL --user U --thumbprint SHA1 [--extra-config keyed|whole]")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	u, err := soap.ParseURL(rawURL)
	if err != nil {
		die("%v", err)
	}
	u.User = nil
	sc := soap.NewClient(u, false)
	sc.SetThumbprint(u.Host, strings.ToUpper(thumb))
	c, err := vim25.NewClient(ctx, sc)
	if err != nil {
		die("connect: %v", err)
	}
	sm := session.NewManager(c)
	if err := sm.Login(ctx, url.UserPassword(user, os.Getenv("LIST_REFERENCE_PASSWORD"))); err != nil {
		die("login: %v", err)
	}
	defer func() { _ = sm.Logout(context.Background()) }()

	paths := append([]string{}, basePaths...)
	if extra == "whole" {
		paths = append(paths, "config.extraConfig")
	} else {
		for _, m := range markers {
			paths = append(paths, fmt.Sprintf("config.extraConfig[%q]", m))
		}
	}
	pc := c.ServiceContent.PropertyCollector
	req := types.RetrievePropertiesEx{This: pc, SpecSet: []types.PropertyFilterSpec{{
		ObjectSet: []types.ObjectSpec{{Obj: c.ServiceContent.RootFolder, Skip: types.NewBool(false), SelectSet: traversal()}},
		PropSet:   []types.PropertySpec{{Type: "VirtualMachine", PathSet: paths}},
	}}}
	res, err := methods.RetrievePropertiesEx(ctx, c, &req)
	if err != nil {
		die("RetrievePropertiesEx: %v", err)
	}
	var objects []types.ObjectContent
	for page := res.Returnval; page != nil; {
		objects = append(objects, page.Objects...)
		if page.Token == "" {
			break
		}
		next, err := methods.ContinueRetrievePropertiesEx(ctx, c, &types.ContinueRetrievePropertiesEx{This: pc, Token: page.Token})
		if err != nil {
			die("ContinueRetrievePropertiesEx: %v", err)
		}
		page = &next.Returnval
	}
	out := make([]summary, 0, len(objects))
	for _, o := range objects {
		out = append(out, summarize(o))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		die("%v", err)
	}
}

func summarize(o types.ObjectContent) summary {
	s := summary{ID: o.Obj.Value}
	found := map[string]string{}
	for _, p := range o.PropSet {
		switch v := p.Val.(type) {
		case string:
			switch p.Name {
			case "name":
				s.Name = v
			case "config.uuid":
				s.UUID = v
			case "guest.ipAddress":
				s.IP = v
			case "config.guestId":
				s.GuestID = v
			}
		case types.VirtualMachinePowerState:
			s.PowerState = string(v)
		case int32:
			if p.Name == "config.hardware.numCPU" {
				s.CPU = v
			} else {
				s.MemoryMB = v
			}
		case types.OptionValue: // a keyed path: the element itself
			found[v.Key], _ = v.Value.(string)
		case types.ArrayOfOptionValue:
			for _, ov := range v.OptionValue {
				o := ov.GetOptionValue()
				if strings.HasPrefix(o.Key, "ceso.") {
					found[o.Key], _ = o.Value.(string)
				}
			}
		}
	}
	opt := func(key string) *string {
		if v, ok := found[key]; ok {
			return &v
		}
		return nil
	}
	s.Managed = found["ceso.managed"] == "true"
	s.ExpiresAt = opt("ceso.expiresAt")
	s.Linked = found["ceso.linked"] == "true"
	s.Pool = opt("ceso.pool")
	if s.Pool != nil {
		s.PoolState = opt("ceso.poolState")
	}
	return s
}
