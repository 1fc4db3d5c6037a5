package cloudinit

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"reflect"
	"testing"
)

func TestYAMLNetplan(t *testing.T) {
	doc := `instance-id: web1-01
local-hostname: web1
# comment
network:
  version: 2
  ethernets:
    nic0:
      match:
        macaddress: "00:50:56:aa:bb:cc"
      set-name: ens192
      addresses:
      - 192.168.1.100/24
      routes: [{to: default, via: 192.168.1.1}]
      nameservers:
        addresses: ['1.1.1.1', "8.8.8.8"]
      dhcp4: false
`
	id, err := FromMetadata(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := &Identity{InstanceID: "web1-01", Hostname: "web1", HasNetwork: true, Interfaces: []Interface{{ID: "nic0", MAC: "00:50:56:aa:bb:cc", Addresses: []Address{{"192.168.1.100", 24}}}}}
	if !reflect.DeepEqual(id, want) {
		t.Fatalf("got %+v", id)
	}
	v, err := ParseYAML("a:\n  - x: 1\n    y: [1, 2]\n  - |\n    line1\n    line2\nb: 'it''s'\nc: ~\n")
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]interface{})
	if m["b"] != "it's" || m["c"] != nil {
		t.Fatalf("%#v", m)
	}
	a := m["a"].([]interface{})
	if a[1] != "line1\nline2\n" || a[0].(map[string]interface{})["x"] != int64(1) {
		t.Fatalf("%#v", a)
	}
}

func TestJSONGzip(t *testing.T) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(`{"instance-id":"i1","local-hostname":"h1","network":{"version":2,"ethernets":{"eth0":{"addresses":["10.1.2.3/16"]}}}}`))
	zw.Close()
	dec, err := Decode(base64.StdEncoding.EncodeToString(b.Bytes()), "gzip+base64")
	if err != nil {
		t.Fatal(err)
	}
	id, err := FromMetadata(dec)
	if err != nil || id.Hostname != "h1" || id.Interfaces[0].Addresses[0].IP != "10.1.2.3" || id.Interfaces[0].Addresses[0].Prefix != 16 {
		t.Fatalf("%+v %v", id, err)
	}
	if d, _ := Decode("abc", "gzip"); d != "abc" {
		t.Fatal("unknown encoding must be plain")
	}
}
