#!/usr/bin/env bash
# Quick start: install what the tool needs on a fresh Debian/Ubuntu machine,
# build the bundle, and run examples/hello/.djinn.yml in a real Debian VM.
# With no image given, our own builder makes debian/stable from Debian's
# packages (about a minute) and caches it for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
need=""
for p in qemu-system-x86 qemu-utils mmdebstrap e2fsprogs git zstd; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
  echo "Installing:$need"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
[ -d node_modules ] || npm ci --ignore-scripts --no-audit --no-fund
[ -f dist/cli.js ] || npm run -s build
mkdir -p out
echo "Running examples/hello/.djinn.yml (artifacts go to ./out)"
exec node dist/cli.js -manifest examples/hello/.djinn.yml -objects examples/hello -artifacts out "$@"
