package esxishell

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// RealVolumesRoot is where a real ESXi host mounts its datastores.
const RealVolumesRoot = "/vmfs/volumes"

// Paths maps between datastore paths ("[ds] dir/f.vmx") and local files.
type Paths struct {
	VolumesRoot string
	Datastores  []Datastore
}

// Paths loads the datastore list and returns a path mapper.
func (s *Session) Paths() (*Paths, error) {
	dss, err := s.Datastores()
	if err != nil {
		return nil, err
	}
	return &Paths{VolumesRoot: s.Config.VolumesRoot, Datastores: dss}, nil
}

// Lookup finds a datastore by name. Without the simulator's list (vmkfstools works on
// files alone) a directory volumesRoot/NAME counts as datastore NAME.
func (p *Paths) Lookup(name string) *Datastore {
	for i := range p.Datastores {
		if p.Datastores[i].Name == name {
			return &p.Datastores[i]
		}
	}
	if name == "" || strings.ContainsAny(name, "/") || name == "." || name == ".." {
		return nil
	}
	dir := filepath.Join(p.VolumesRoot, name)
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return &Datastore{Name: name, Dir: dir}
	}
	return nil
}

// SplitDatastorePath splits "[ds] rel/path" into ("ds", "rel/path"). Datastore names may
// hold spaces and parentheses ("[datastore (1)] a/b.vmx"), but not "]".
func SplitDatastorePath(p string) (ds, rel string, ok bool) {
	p = strings.TrimSpace(p)
	if !strings.HasPrefix(p, "[") {
		return "", "", false
	}
	i := strings.Index(p, "]")
	if i < 0 {
		return "", "", false
	}
	return p[1:i], strings.TrimLeft(p[i+1:], " "), true
}

// Local turns a datastore path into a local absolute path.
func (p *Paths) Local(dsPath string) (string, error) {
	ds, rel, ok := SplitDatastorePath(dsPath)
	if !ok {
		return "", fmt.Errorf("not a datastore path: %q", dsPath)
	}
	d := p.Lookup(ds)
	if d == nil {
		return "", fmt.Errorf("unknown datastore %q", ds)
	}
	return filepath.Join(d.Dir, filepath.FromSlash(rel)), nil
}

// DatastorePath turns a local absolute path (under volumesRoot, under /vmfs/volumes, or
// under a datastore's directory) into "[ds] rel". ok=false when no datastore holds it.
func (p *Paths) DatastorePath(abs string) (string, bool) {
	abs = filepath.Clean(abs)
	for _, root := range []string{p.VolumesRoot, RealVolumesRoot} {
		if strings.HasPrefix(abs, root+"/") {
			rest := strings.TrimPrefix(abs, root+"/")
			parts := strings.SplitN(rest, "/", 2)
			if d := p.Lookup(parts[0]); d != nil {
				rel := ""
				if len(parts) == 2 {
					rel = parts[1]
				}
				return "[" + d.Name + "] " + rel, true
			}
		}
	}
	for _, d := range p.Datastores {
		if abs == d.Dir {
			return "[" + d.Name + "] ", true
		}
		if strings.HasPrefix(abs, d.Dir+"/") {
			return "[" + d.Name + "] " + strings.TrimPrefix(abs, d.Dir+"/"), true
		}
	}
	return "", false
}

// LocalFromAny maps an absolute path given on the command line to a local file: paths
// under /vmfs/volumes/<ds>/ (as real .vmx files hold them) go to the datastore's
// directory; anything else is taken as is.
func (p *Paths) LocalFromAny(abs string) string {
	abs = filepath.Clean(abs)
	if strings.HasPrefix(abs, RealVolumesRoot+"/") && !strings.HasPrefix(abs, p.VolumesRoot+"/") {
		rest := strings.TrimPrefix(abs, RealVolumesRoot+"/")
		parts := strings.SplitN(rest, "/", 2)
		if d := p.Lookup(parts[0]); d != nil {
			if len(parts) == 2 {
				return filepath.Join(d.Dir, parts[1])
			}
			return d.Dir
		}
	}
	return abs
}

// Resolve takes a path argument (datastore path, absolute or relative path) and returns
// the datastore path (may be "" when outside every datastore) and the local path.
func (p *Paths) Resolve(arg string) (dsPath, local string, err error) {
	if strings.HasPrefix(strings.TrimSpace(arg), "[") {
		local, err = p.Local(arg)
		if err != nil {
			return "", "", err
		}
		ds, rel, _ := SplitDatastorePath(arg)
		return "[" + ds + "] " + path.Clean(rel), local, nil
	}
	if !filepath.IsAbs(arg) {
		wd, err := os.Getwd()
		if err != nil {
			return "", "", err
		}
		arg = filepath.Join(wd, arg)
	}
	local = p.LocalFromAny(arg)
	dsPath, _ = p.DatastorePath(local)
	return dsPath, local, nil
}

// ResolveRelative resolves a file name found inside a .vmx (e.g. scsi0:0.fileName): a
// bare or relative name is relative to the .vmx's folder; absolute paths and datastore
// paths are resolved as on the command line.
func (p *Paths) ResolveRelative(name, vmxLocalDir string) (dsPath, local string, err error) {
	if strings.HasPrefix(strings.TrimSpace(name), "[") || filepath.IsAbs(name) {
		return p.Resolve(name)
	}
	return p.Resolve(filepath.Join(vmxLocalDir, name))
}
