#!/usr/bin/env bash
# Builds every main package under test/testbed/go/src/cesotestbed/cmd/*/ into
# test/testbed/bin/<name> (vcsim, oracle, vim-cmd, vmkfstools, ...), offline, in GOPATH mode
# against Debian's govmomi. Skips the build when nothing changed: the stamp in
# test/testbed/.cache/ holds a hash of every .go file under test/testbed/go, the go version
# and the govmomi version.
#
#   bash test/testbed/build.sh                 build (or nothing, when up to date)
#   bash test/testbed/build.sh --test [PKG..]  run the Go tests (default: cesotestbed/...)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/go/src/cesotestbed"
bin="$here/bin"
cache="$here/.cache"
gocode="${CESO_GOCODE:-/usr/share/gocode}"
govmomi="$gocode/src/github.com/vmware/govmomi"
hint="install them with: apt-get install golang-go golang-github-vmware-govmomi-dev"

fail() { echo "testbed build: $*" >&2; exit 1; }

GO="${GO:-go}"
command -v "$GO" >/dev/null 2>&1 || fail "go is not installed; $hint"
[ -d "$govmomi/simulator" ] || fail "govmomi sources are missing ($govmomi); $hint"
[ -d "$src/cmd" ] || fail "no commands under $src/cmd"

mkdir -p "$bin" "$cache"

goenv() {
  export GO111MODULE=off
  export GOPATH="$here/go:$gocode"
  export GOCACHE="$cache/gocache"
  export GOFLAGS=""
  export CGO_ENABLED=0
  export GOTOOLCHAIN=local
}

if [ "${1:-}" = "--test" ]; then
  shift
  goenv
  [ "$#" -gt 0 ] || set -- cesotestbed/...
  exec "$GO" test -count=1 "$@"
fi

# one build at a time (vitest's globalSetup and a developer's shell may race)
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/build.lock"
  flock 9
fi

cmds=()
for dir in "$src"/cmd/*/; do
  name="$(basename "$dir")"
  if grep -qs '^package main' "$dir"*.go; then cmds+=("$name"); fi
done
[ "${#cmds[@]}" -gt 0 ] || fail "no main packages under $src/cmd"

hash_inputs() {
  "$GO" version
  cat "$govmomi/go.mod" 2>/dev/null || true
  printf '%s\n' "${cmds[@]}"
  (cd "$here/go" && find . -name '*.go' -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
}
stamp="$(hash_inputs | sha256sum | cut -d' ' -f1)"
stamp_file="$cache/build.stamp"

up_to_date=1
[ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ] || up_to_date=0
for name in "${cmds[@]}"; do [ -x "$bin/$name" ] || up_to_date=0; done
if [ "$up_to_date" = 1 ]; then
  echo "testbed build: up to date (${cmds[*]})" >&2
  exit 0
fi

goenv

echo "testbed build: building ${cmds[*]} with $("$GO" version | cut -d' ' -f3) (the first build takes a minute)..." >&2
start=$SECONDS
tmp="$bin/.build-tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
pkgs=()
for name in "${cmds[@]}"; do pkgs+=("cesotestbed/cmd/$name"); done
if ! "$GO" build -trimpath -o "$tmp/" "${pkgs[@]}"; then
  rm -rf "$tmp"
  fail "go build failed"
fi
for name in "${cmds[@]}"; do mv -f "$tmp/$name" "$bin/$name"; done
rm -rf "$tmp"
echo "$stamp" > "$stamp_file"
echo "testbed build: done in $((SECONDS - start)) s -> $bin" >&2
