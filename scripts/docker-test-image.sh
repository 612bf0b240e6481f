#!/usr/bin/env bash
# Builds the root file system tarball of the docker tests' image with
# mmdebstrap (no registry needed) and prints its path. The tarball is cached
# under /var/cache/djinn-ci/docker/, keyed by the hash of this script, which
# holds every input (suite, mirror, packages). Importing it into an engine is
# the caller's job (the tests use the engine's import API).
#   usage: scripts/docker-test-image.sh        -> /var/cache/djinn-ci/docker/rootfs-<key>.tar
set -euo pipefail

SUITE=bookworm
MIRROR=http://deb.debian.org/debian
# git for the setup stage's clones; ca-certificates for https remotes; make for realistic jobs.
PACKAGES=git,ca-certificates,make

CACHE=${DJINN_CI_CACHE:-/var/cache/djinn-ci}/docker
key=$(sha256sum "$0" | cut -c1-16)
out="$CACHE/rootfs-$key.tar"
mkdir -p "$CACHE"

exec 9>"$CACHE/.lock"
flock 9   # one build at a time; the others wait and reuse it
if [ ! -f "$out" ] || [ ! -s "$out" ]; then
  tmp="$CACHE/.tmp-$$-rootfs.tar"   # mmdebstrap picks the format from the .tar ending
  rm -rf "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  mmdebstrap --quiet --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp" "$MIRROR" >&2
  mv "$tmp" "$out"
  # Older tarballs of this image are stale once the inputs change.
  find "$CACHE" -maxdepth 1 -name 'rootfs-*.tar' ! -name "rootfs-$key.tar" -delete
fi
echo "$out"
