// Package cloudinit reads guestinfo the way cloud-init's VMware datasource does: it decodes
// guestinfo.<key> per guestinfo.<key>.encoding, parses metadata (JSON or YAML) and extracts
// what the test bed's fake guest needs: instance-id, local-hostname and the static addresses
// of netplan v2 (or v1) network config.
package cloudinit

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"net"
	"sort"
	"strings"
)

// Decode decodes a guestinfo value. Encodings are matched exactly, as cloud-init does:
// gzip+base64 / gz+b64, base64 / b64; anything else is plain text.
func Decode(value, encoding string) (string, error) {
	switch encoding {
	case "gzip+base64", "gz+b64":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
		if err != nil {
			return "", fmt.Errorf("base64: %w", err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return "", fmt.Errorf("gzip: %w", err)
		}
		out, err := ioutil.ReadAll(zr)
		if err != nil {
			return "", fmt.Errorf("gzip: %w", err)
		}
		return string(out), nil
	case "base64", "b64":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
		if err != nil {
			return "", fmt.Errorf("base64: %w", err)
		}
		return string(raw), nil
	default:
		return value, nil
	}
}

// Absent reports whether a decoded value counts as absent for cloud-init ("" or "---").
func Absent(decoded string) bool {
	s := strings.TrimSpace(decoded)
	return s == "" || s == "---"
}

// ParseDoc parses a JSON or YAML document.
func ParseDoc(text string) (interface{}, error) {
	t := strings.TrimSpace(text)
	if strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
		var v interface{}
		if err := json.Unmarshal([]byte(t), &v); err == nil {
			return v, nil
		}
	}
	return ParseYAML(text)
}

// Address is one static address.
type Address struct {
	IP     string
	Prefix int
}

// Interface is one NIC's configuration from network config.
type Interface struct {
	ID        string // netplan id (ens192, eth0, ...)
	MAC       string // lower-case, "" when not matched by MAC
	Addresses []Address
	DHCP      bool
}

// Identity is what cloud-init configures from metadata.
type Identity struct {
	InstanceID string
	Hostname   string
	HasNetwork bool
	Interfaces []Interface
}

// FromMetadata extracts the identity from decoded metadata text.
func FromMetadata(text string) (*Identity, error) {
	doc, err := ParseDoc(text)
	if err != nil {
		return nil, err
	}
	md, ok := doc.(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("metadata is not a mapping")
	}
	id := &Identity{InstanceID: str(md["instance-id"]), Hostname: str(md["local-hostname"])}
	if id.Hostname == "" {
		id.Hostname = str(md["hostname"])
	}
	netv, ok := md["network"]
	if !ok || netv == nil {
		return id, nil
	}
	if s, isStr := netv.(string); isStr {
		enc := str(md["network.encoding"])
		dec, err := Decode(s, enc)
		if err != nil {
			return id, fmt.Errorf("network: %w", err)
		}
		netv, err = ParseDoc(dec)
		if err != nil {
			return id, fmt.Errorf("network: %w", err)
		}
	}
	n, ok := netv.(map[string]interface{})
	if !ok {
		return id, nil
	}
	if inner, ok := n["network"].(map[string]interface{}); ok { // {network: {version: 2, ...}}
		n = inner
	}
	id.HasNetwork = true
	switch str(n["version"]) {
	case "1":
		id.Interfaces = v1Interfaces(n)
	default:
		id.Interfaces = v2Interfaces(n)
	}
	return id, nil
}

func v2Interfaces(n map[string]interface{}) []Interface {
	eths, _ := n["ethernets"].(map[string]interface{})
	names := make([]string, 0, len(eths))
	for k := range eths {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []Interface
	for _, name := range names {
		e, _ := eths[name].(map[string]interface{})
		if e == nil {
			continue
		}
		it := Interface{ID: name, DHCP: truthy(e["dhcp4"])}
		if m, ok := e["match"].(map[string]interface{}); ok {
			it.MAC = strings.ToLower(str(m["macaddress"]))
		}
		if list, ok := e["addresses"].([]interface{}); ok {
			for _, a := range list {
				if addr, ok := parseCIDR(str(a)); ok {
					it.Addresses = append(it.Addresses, addr)
				}
			}
		}
		out = append(out, it)
	}
	return out
}

func v1Interfaces(n map[string]interface{}) []Interface {
	list, _ := n["config"].([]interface{})
	var out []Interface
	for _, c := range list {
		m, _ := c.(map[string]interface{})
		if m == nil || str(m["type"]) != "physical" {
			continue
		}
		it := Interface{ID: str(m["name"]), MAC: strings.ToLower(str(m["mac_address"]))}
		subnets, _ := m["subnets"].([]interface{})
		for _, s := range subnets {
			sm, _ := s.(map[string]interface{})
			if sm == nil {
				continue
			}
			switch str(sm["type"]) {
			case "dhcp", "dhcp4":
				it.DHCP = true
			case "static":
				addr, ok := parseCIDR(str(sm["address"]))
				if ok && !strings.Contains(str(sm["address"]), "/") {
					if mask := net.ParseIP(str(sm["netmask"])); mask != nil {
						ones, _ := net.IPMask(mask.To4()).Size()
						addr.Prefix = ones
					}
				}
				if ok {
					it.Addresses = append(it.Addresses, addr)
				}
			}
		}
		out = append(out, it)
	}
	return out
}

func parseCIDR(s string) (Address, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Address{}, false
	}
	if strings.Contains(s, "/") {
		ip, ipnet, err := net.ParseCIDR(s)
		if err != nil {
			return Address{}, false
		}
		ones, _ := ipnet.Mask.Size()
		return Address{IP: ip.String(), Prefix: ones}, true
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return Address{}, false
	}
	if ip.To4() != nil {
		return Address{IP: ip.String(), Prefix: 24}, true
	}
	return Address{IP: ip.String(), Prefix: 64}, true
}

func str(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprint(x)
	default:
		return fmt.Sprint(x)
	}
}

func truthy(v interface{}) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		switch strings.ToLower(x) {
		case "true", "yes", "on", "1":
			return true
		}
	}
	return false
}
