#!/usr/bin/env bash
# Quick start on a fresh Debian/Ubuntu machine, as root or as a user with
# sudo: runs examples/hello/.djinn.yml in a real Debian VM with the committed
# bundle (dist/cli.js; no npm install). -install-deps makes the tool install
# what it lacks (QEMU, and the image builder's tools when it has to build
# debian/stable itself, about a minute) with one apt-get call, through sudo
# when not root. The image is cached for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1; then
  echo "quickstart: Node.js 20 or newer is needed and 'node' is not on PATH." >&2
  echo "  Debian 13: sudo apt-get install nodejs; elsewhere see https://nodejs.org/en/download" >&2
  exit 2
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "quickstart: Node.js $(node --version) is too old: 20 or newer is needed (https://nodejs.org/en/download)." >&2
  exit 2
fi
if [ ! -f dist/cli.js ]; then
  echo "quickstart: dist/cli.js is missing: run this from a clone of the repository (dist/ is committed)." >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
  echo "quickstart: installing packages needs root: you may be asked for your sudo password." >&2
  sudo -v
fi
mkdir -p out
echo "Running examples/hello/.djinn.yml (artifacts go to ./out)"
exec node dist/cli.js -install-deps -manifest examples/hello/.djinn.yml -objects examples/hello -artifacts out "$@"
