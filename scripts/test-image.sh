#!/usr/bin/env bash
# Builds (or finds) the `fast` debian/stable test image with our own builder and
# prints the disks folder that holds it (DIR/qemu/x86_64/debian/stable) as its
# only stdout line. Cached outside the repository, keyed by a hash of the
# builder's inputs (its source files, which include the package list), so CI on
# the same machine rebuilds only when the builder changed. Progress on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE_ROOT=${DJINN_CI_CACHE:-/var/cache/djinn-ci}
NAME=debian/stable
FLAVOR=fast

key=$( { cat src/images/builder/*.ts; echo "$NAME $FLAVOR"; } | sha256sum | cut -c1-16)
disks="$CACHE_ROOT/test-image-$key"
image="$disks/qemu/x86_64/$NAME"
mkdir -p "$CACHE_ROOT"

if [ ! -s "$image" ]; then
  # One builder at a time per machine; the second waits and then finds the image.
  exec 9>"$CACHE_ROOT/test-image.lock"
  flock 9
  if [ ! -s "$image" ]; then
    echo "test-image: building $NAME ($FLAVOR) into $disks" >&2
    if [ ! -f dist/cli.js ]; then npm run -s build >&2; fi
    node dist/cli.js image build "$NAME" -flavor "$FLAVOR" -disks "$disks" >/dev/null
    # Keep the three newest test images, drop older ones.
    ls -1dt "$CACHE_ROOT"/test-image-*/ 2>/dev/null | tail -n +4 | xargs -r rm -rf
  fi
  flock -u 9
else
  echo "test-image: using cached $image" >&2
fi
echo "$disks"
