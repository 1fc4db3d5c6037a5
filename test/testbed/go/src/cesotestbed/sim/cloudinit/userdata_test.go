package cloudinit

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
)

const readyCmd = `touch /var/lib/cloud/instance/ceso-ready && vmware-rpctool "info-set guestinfo.ceso.ready $(cat /var/lib/cloud/data/instance-id)"`
const perBoot = "/var/lib/cloud/scripts/per-boot/ceso-ready"

// as js-yaml dumps ceso's ready part (lineWidth -1)
const readyPart = `merge_how:
  - name: list
    settings:
      - append
  - name: dict
    settings:
      - no_replace
      - recurse_list
runcmd:
  - touch /var/lib/cloud/instance/ceso-ready && vmware-rpctool "info-set guestinfo.ceso.ready $(cat /var/lib/cloud/data/instance-id)"
write_files:
  - path: /var/lib/cloud/scripts/per-boot/ceso-ready
    permissions: '0755'
    owner: root:root
    content: |
      #!/bin/sh
      # ceso: tells the host this boot is ready
      [ -e /var/lib/cloud/instance/ceso-ready ] || exit 0
      exec vmware-rpctool "info-set guestinfo.ceso.ready $(cat /var/lib/cloud/data/instance-id)"
`

const firstPart = `#cloud-config
hostname: web1
manage_etc_hosts: true
users:
  - default
  - name: ubuntu
    sudo: ALL=(ALL) NOPASSWD:ALL
    shell: /bin/bash
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG test@example
runcmd:
  - echo first
  - [sh, -c, "echo second"]
write_files:
  - path: /etc/motd
    content: hello
`

func mimeDoc(boundary string, parts ...string) string {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\nMIME-Version: 1.0\n\n")
	for _, p := range parts {
		b.WriteString("--" + boundary + "\n" + p + "\n")
	}
	b.WriteString("--" + boundary + "--\n")
	return b.String()
}

func part(ctype, encoding, content string, extra ...string) string {
	h := "Content-Type: " + ctype + "; charset=\"utf-8\"\nMIME-Version: 1.0\nContent-Transfer-Encoding: " + encoding + "\n"
	for _, e := range extra {
		h += e + "\n"
	}
	if encoding == "base64" {
		content = base64.StdEncoding.EncodeToString([]byte(content))
	}
	return h + "\n" + content
}

func runcmd(c CloudConfig) []interface{} {
	l, _ := c.Config["runcmd"].([]interface{})
	return l
}

func TestSingleCloudConfig(t *testing.T) {
	doc := "#cloud-config\n" + readyPart
	c := MergeCloudConfig([]byte(doc))
	if !c.RunCmdHas(readyCmd) || !c.WritesExecutable(perBoot) {
		t.Fatalf("config %#v notes %v", c.Config, c.Notes)
	}
	wf := c.Config["write_files"].([]interface{})[0].(map[string]interface{})
	if !strings.HasPrefix(wf["content"].(string), "#!/bin/sh\n# ceso:") || !strings.HasSuffix(wf["content"].(string), "instance-id)\"\n") {
		t.Fatalf("content %q", wf["content"])
	}
	if _, ok := c.Config["merge_how"]; ok {
		t.Fatal("merge_how must be popped")
	}
	// not #cloud-config: cloud-init does not read it as config
	if c := MergeCloudConfig([]byte(readyPart)); c.Config != nil || c.RunCmdHas(readyCmd) {
		t.Fatalf("no header: %#v", c.Config)
	}
	// gzip user data, case-insensitive header after blank lines
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("\n  #Cloud-Config\n" + readyPart))
	_ = zw.Close()
	if c := MergeCloudConfig(gz.Bytes()); !c.RunCmdHas(readyCmd) {
		t.Fatalf("gzip: %#v %v", c.Config, c.Notes)
	}
	// quoted forms of the entry
	for _, q := range []string{
		`'touch /var/lib/cloud/instance/ceso-ready && vmware-rpctool "info-set guestinfo.ceso.ready $(cat /var/lib/cloud/data/instance-id)"'`,
		`"touch /var/lib/cloud/instance/ceso-ready && vmware-rpctool \"info-set guestinfo.ceso.ready $(cat /var/lib/cloud/data/instance-id)\""`,
	} {
		if c := MergeCloudConfig([]byte("#cloud-config\nruncmd:\n- " + q + "\n")); !c.RunCmdHas(readyCmd) {
			t.Errorf("quoted %s: %#v", q, c.Config)
		}
	}
	// a near miss is not the entry; the list (argv) form is not either
	if c := MergeCloudConfig([]byte("#cloud-config\nruncmd:\n- touch /var/lib/cloud/instance/ceso-ready\n- [sh, -c, 'x']\n")); c.RunCmdHas(readyCmd) {
		t.Fatal("near miss")
	}
}

func TestMultipartMerge(t *testing.T) {
	appendPart := "#cloud-config\n" + readyPart
	cases := []struct {
		name     string
		doc      string
		ready    bool
		perBoot  bool
		wantRuns int
	}{
		{"append 7bit", mimeDoc("XyZ", part("text/cloud-config", "7bit", firstPart), part("text/x-shellscript", "7bit", "#!/bin/sh\necho hi\n", `Content-Disposition: attachment; filename="part-002"`), part("text/cloud-config", "7bit", appendPart)), true, true, 3},
		{"append base64", mimeDoc("==b==", part("text/cloud-config", "base64", firstPart), part("text/cloud-config", "base64", appendPart)), true, true, 3},
		{"string merge_how", mimeDoc("b", part("text/cloud-config", "7bit", firstPart), part("text/cloud-config", "7bit", strings.Replace(appendPart,
			"merge_how:\n  - name: list\n    settings:\n      - append\n  - name: dict\n    settings:\n      - no_replace\n      - recurse_list\n",
			"merge_how: 'list(append)+dict(no_replace,recurse_list)+str()'\n", 1))), true, true, 3},
		{"flow merge_how", mimeDoc("b", part("text/cloud-config", "7bit", firstPart), part("text/cloud-config", "7bit", strings.Replace(appendPart,
			"merge_how:\n  - name: list\n    settings:\n      - append\n  - name: dict\n    settings:\n      - no_replace\n      - recurse_list\n",
			"merge_how: [{name: list, settings: [append]}, {name: dict, settings: [no_replace, recurse_list]}]\n", 1))), true, true, 3},
		{"Merge-Type header", mimeDoc("b", part("text/cloud-config", "7bit", firstPart), part("text/cloud-config", "7bit",
			"#cloud-config\nruncmd:\n  - '"+strings.ReplaceAll(readyCmd, "'", "''")+"'\n", "Merge-Type: list(append)+dict(recurse_array)+str()")), true, false, 3},
		// default merge: the later part's lists replace the earlier ones
		{"default replaces", mimeDoc("b", part("text/cloud-config", "7bit", "#cloud-config\nruncmd:\n  - '"+strings.ReplaceAll(readyCmd, "'", "''")+"'\n"), part("text/cloud-config", "7bit", firstPart)), false, false, 2},
		{"default replaces (ready first)", mimeDoc("b", part("text/cloud-config", "7bit", appendPart), part("text/cloud-config", "7bit", "#cloud-config\nruncmd: [echo late]\nwrite_files: []\n")), false, false, 1},
		// a list merger without a dict merger: the mapping is kept as it was (the part is lost)
		{"list only", mimeDoc("b", part("text/cloud-config", "7bit", firstPart), part("text/cloud-config", "7bit", strings.Replace(appendPart,
			"  - name: dict\n    settings:\n      - no_replace\n      - recurse_list\n", "", 1))), false, false, 2},
		// dict(no_replace) without recurse_list keeps the earlier runcmd
		{"no recurse", mimeDoc("b", part("text/cloud-config", "7bit", firstPart), part("text/cloud-config", "7bit", strings.Replace(appendPart, "      - recurse_list\n", "", 1))), false, false, 2},
		// ready part first, the user's part appends after it: still in the list
		{"text/plain typed by header", mimeDoc("b", part("text/plain", "7bit", firstPart), part("text/x-shellscript", "7bit", appendPart)), true, true, 3},
		{"no MIME-Version", strings.Replace(mimeDoc("b", part("text/cloud-config", "7bit", firstPart), part("text/cloud-config", "7bit", appendPart)), "MIME-Version: 1.0\n", "", -1), false, false, 0},
		{"bad yaml part skipped", mimeDoc("b", part("text/cloud-config", "7bit", appendPart), part("text/cloud-config", "7bit", "#cloud-config\nruncmd: [unclosed\n")), true, true, 1},
		{"unknown merger skipped", mimeDoc("b", part("text/cloud-config", "7bit", appendPart), part("text/cloud-config", "7bit", "#cloud-config\nmerge_how: 'nope()'\nruncmd: [x]\n")), true, true, 1},
		{"archive", "#cloud-config-archive\n- type: text/cloud-config\n  content: |\n    runcmd: [a]\n- content: |\n    #cloud-config\n    runcmd:\n      - '" + strings.ReplaceAll(readyCmd, "'", "''") + "'\n  merge-type: 'list(append)+dict(recurse_list)'\n", true, false, 2},
		{"jinja", "## template: jinja\n#cloud-config\n" + readyPart, true, true, 1},
		{"crlf", strings.ReplaceAll(mimeDoc("b", part("text/cloud-config", "7bit", firstPart), part("text/cloud-config", "base64", appendPart)), "\n", "\r\n"), true, true, 3},
		{"gzip part", mimeDoc("b", part("text/cloud-config", "7bit", firstPart), "Content-Type: application/gzip\nContent-Transfer-Encoding: base64\n\n"+gzb64(appendPart)), true, true, 3},
		{"shell script only", "#!/bin/sh\n" + readyCmd + "\n", false, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cc := MergeCloudConfig([]byte(c.doc))
			if cc.RunCmdHas(readyCmd) != c.ready || cc.WritesExecutable(perBoot) != c.perBoot || len(runcmd(cc)) != c.wantRuns {
				t.Fatalf("ready %v perBoot %v runcmd %#v notes %v", cc.RunCmdHas(readyCmd), cc.WritesExecutable(perBoot), runcmd(cc), cc.Notes)
			}
		})
	}
}

func gzb64(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func TestAppendOrderAndPerms(t *testing.T) {
	doc := mimeDoc("b", part("text/cloud-config", "7bit", firstPart), part("text/cloud-config", "7bit", "#cloud-config\n"+readyPart))
	cc := MergeCloudConfig([]byte(doc))
	want := []interface{}{"echo first", []interface{}{"sh", "-c", "echo second"}, readyCmd}
	if !reflect.DeepEqual(runcmd(cc), want) {
		t.Fatalf("runcmd %#v", runcmd(cc))
	}
	if cc.Config["hostname"] != "web1" || len(cc.Config["write_files"].([]interface{})) != 2 {
		t.Fatalf("%#v", cc.Config)
	}
	for perm, x := range map[string]bool{"'0755'": true, "0755": true, "'0644'": false, "493": true, "'0o700'": true, "420": false} {
		d := "#cloud-config\nwrite_files:\n- path: " + perBoot + "\n  permissions: " + perm + "\n  content: x\n"
		if got := MergeCloudConfig([]byte(d)).WritesExecutable(perBoot); got != x {
			t.Errorf("permissions %s: %v", perm, got)
		}
	}
	if MergeCloudConfig([]byte("#cloud-config\nwrite_files:\n- path: " + perBoot + "\n  content: x\n")).WritesExecutable(perBoot) {
		t.Error("default permissions 0644 are not executable")
	}
}

func TestListMergerReplaceByIndex(t *testing.T) {
	// list() (replace) under a recursing dict merger replaces by index and keeps the tail
	doc := mimeDoc("b", part("text/cloud-config", "7bit", "#cloud-config\nruncmd: [a, b, c]\n"),
		part("text/cloud-config", "7bit", "#cloud-config\nmerge_how: 'dict(recurse_list)+list()'\nruncmd: [x]\n"))
	if got := runcmd(MergeCloudConfig([]byte(doc))); !reflect.DeepEqual(got, []interface{}{"x", "b", "c"}) {
		t.Fatalf("%#v", got)
	}
}

func TestYAMLScalars(t *testing.T) {
	v, err := ParseYAML("a: \"tab\\there \\x41\\u00e9 \\\"q\\\"\"\nb: |-\n  no newline\nc: |+\n  keep\n\nd: >\n  folded\n  line\n\n  para\ne: |2\n    indented\n  base\n")
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]interface{})
	want := map[string]interface{}{"a": "tab\there Aé \"q\"", "b": "no newline", "c": "keep\n\n", "d": "folded line\npara\n", "e": "  indented\nbase\n"}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("%#v", m)
	}
}
