// Package esxishell is the shared half of the test bed's ESXi shell emulator: the
// `vim-cmd` and `vmkfstools` binaries that sshd puts on PATH. They are govmomi clients of
// the running vcsim, so whatever they do over SSH is seen over the SOAP API and the other
// way round.
//
// Config contract: env CESO_TESTBED_CONFIG names a JSON file
//
//	{"url": "https://127.0.0.1:PORT/sdk", "user": "root", "password": "...",
//	 "thumbprint": "AA:BB:..." (SHA-1 of the simulator's certificate) or "insecure": true,
//	 "volumesRoot": "/abs/dir/volumes"}
//
// volumesRoot plays the role of /vmfs/volumes: datastore NAME lives at volumesRoot/NAME.
// Paths given to the commands may be datastore paths ("[datastore1] web/web.vmx"),
// absolute paths under volumesRoot, or absolute paths under the literal /vmfs/volumes
// (what real .vmx files written by ESXi hold); all three are mapped onto the same files.
package esxishell

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
)

// ConfigEnv is the environment variable naming the JSON config file.
const ConfigEnv = "CESO_TESTBED_CONFIG"

// Config is the JSON config shared by the emulator binaries.
type Config struct {
	URL         string `json:"url"`
	User        string `json:"user"`
	Password    string `json:"password"`
	Thumbprint  string `json:"thumbprint,omitempty"`
	Insecure    bool   `json:"insecure,omitempty"`
	VolumesRoot string `json:"volumesRoot"`
}

// LoadConfig reads the file named by $CESO_TESTBED_CONFIG.
func LoadConfig() (*Config, error) {
	name := os.Getenv(ConfigEnv)
	if name == "" {
		return nil, fmt.Errorf("%s is not set: the ESXi shell emulator does not know which simulator to use", ConfigEnv)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", name, err)
	}
	if c.URL == "" {
		return nil, fmt.Errorf("%s: url is missing", name)
	}
	if c.VolumesRoot == "" {
		return nil, fmt.Errorf("%s: volumesRoot is missing", name)
	}
	c.VolumesRoot = filepath.Clean(c.VolumesRoot)
	return &c, nil
}

// Session is a logged-in client plus the host-wide objects the commands need.
type Session struct {
	Ctx    context.Context
	Cancel context.CancelFunc
	Config *Config
	Client *vim25.Client
	mgr    *session.Manager
	inv    *Inventory
}

// Connect logs in to the simulator named by the config. Every call is bounded (60 s in
// all) so a hung simulator cannot hang an SSH session for ever.
func Connect() (*Session, error) {
	cfg, err := LoadConfig()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	u, err := soap.ParseURL(cfg.URL)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("bad url %q: %w", cfg.URL, err)
	}
	u.User = nil
	sc := soap.NewClient(u, cfg.Insecure)
	if cfg.Thumbprint != "" {
		sc.SetThumbprint(u.Host, strings.ToUpper(cfg.Thumbprint))
	}
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("connecting to %s: %w", cfg.URL, err)
	}
	mgr := session.NewManager(vc)
	if err := mgr.Login(ctx, url.UserPassword(cfg.User, cfg.Password)); err != nil {
		cancel()
		return nil, fmt.Errorf("login to %s: %w", cfg.URL, err)
	}
	return &Session{Ctx: ctx, Cancel: cancel, Config: cfg, Client: vc, mgr: mgr}, nil
}

// Close logs out (so sessions do not pile up in the simulator) and releases the context.
func (s *Session) Close() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = s.mgr.Logout(ctx)
	cancel()
	s.Cancel()
}
