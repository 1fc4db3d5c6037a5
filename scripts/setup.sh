#!/usr/bin/env bash
# Installs what ceso's test bed needs and is missing, on a fresh Debian machine with Node 20:
# Go and govmomi (VMware's simulator and the ESXi shell emulator are built from them, offline),
# OpenSSH (a real server on loopback for the SSH path), netplan and qemu-img, the Python modules
# cloud-init imports, PostgreSQL (a real server for the shared-state tests), Debian's cloud-init unpacked (not installed) into test/.cache/cloud-init/
# (the tests run its own VMware datasource, user-data and schema code on what ceso writes),
# Prometheus's promtool (the tests check ceso metrics' exposition with it),
# and the npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive

# Debian's own python3: the one on PATH may be another (pyenv) without Debian's modules.
debian_python=/usr/bin/python3
has_py_module() { [ -x "$debian_python" ] && "$debian_python" -c "import $1" >/dev/null 2>&1; }

missing=()
command -v go >/dev/null 2>&1 || missing+=(golang-go)
[ -d /usr/share/gocode/src/github.com/vmware/govmomi/simulator ] || missing+=(golang-github-vmware-govmomi-dev)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v script >/dev/null 2>&1 || missing+=(bsdutils)  # a real terminal for the prompt tests
[ -x /usr/sbin/netplan ] || missing+=(netplan.io)       # `netplan generate` on what cloud-init renders
command -v qemu-img >/dev/null 2>&1 || missing+=(qemu-utils)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)  # promtool check metrics on ceso metrics' output
# initdb/pg_ctl for test/support/postgres.ts (a throwaway cluster per test file; the package's own cluster is not used)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
# What cloud-init 22.4 imports (its package's Depends that are Python modules).
has_py_module yaml || missing+=(python3-yaml)
has_py_module jinja2 || missing+=(python3-jinja2)
has_py_module jsonschema || missing+=(python3-jsonschema)
has_py_module configobj || missing+=(python3-configobj)
has_py_module netifaces || missing+=(python3-netifaces)
has_py_module jsonpatch || missing+=(python3-jsonpatch)
has_py_module requests || missing+=(python3-requests)
has_py_module oauthlib || missing+=(python3-oauthlib)
has_py_module serial || missing+=(python3-serial)

apt_updated=0
apt_update() {
  if [ "$apt_updated" -eq 0 ]; then
    "${sudo_cmd[@]}" apt-get update -q >&2
    apt_updated=1
  fi
}

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  apt_update
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# Debian's cloud-init, unpacked once (dpkg -x, nothing installed or started on this machine).
cloudinit_dir=test/.cache/cloud-init
if [ ! -f "$cloudinit_dir/usr/lib/python3/dist-packages/cloudinit/version.py" ]; then
  echo "setup: unpacking Debian's cloud-init into $cloudinit_dir" >&2
  policy=$(apt-cache policy cloud-init 2>/dev/null || true)
  [[ "$policy" == *"Candidate: "[0-9]* ]] || apt_update
  download=$(mktemp -d)
  apt_opts=()
  # as root apt downloads as its sandbox user, who cannot write into a private temp dir
  [ "$(id -u)" -ne 0 ] || apt_opts=(-o APT::Sandbox::User=root)
  (cd "$download" && apt-get download -q "${apt_opts[@]}" cloud-init >&2)
  deb=$(find "$download" -maxdepth 1 -name 'cloud-init_*.deb' | head -n 1)
  [ -n "$deb" ] || { echo "setup: apt-get download cloud-init gave no .deb" >&2; exit 1; }
  rm -rf "$cloudinit_dir.tmp"
  mkdir -p "$cloudinit_dir.tmp"
  dpkg -x "$deb" "$cloudinit_dir.tmp"
  dpkg-deb -f "$deb" Version >"$cloudinit_dir.tmp/DEBIAN_VERSION"
  rm -rf "$cloudinit_dir" "$download"
  mv "$cloudinit_dir.tmp" "$cloudinit_dir"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-fund --no-audit >&2
fi
