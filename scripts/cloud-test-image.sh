#!/usr/bin/env bash
# Builds (or finds) the `cloud` flavor debian/stable image our builder makes
# (Debian's cloud-init, no key, no root password: it stands in for Debian's
# genericcloud image in the catalogue test) and prints the qcow2 file as its only
# stdout line. Cached outside the repository like scripts/test-image.sh, keyed by
# a hash of the builder's inputs. Progress on stderr. Run it under the VM lock.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE_ROOT=${DJINN_CI_CACHE:-/var/cache/djinn-ci}
NAME=debian/stable
FLAVOR=cloud

key=$( { cat src/images/builder/*.ts; echo "$NAME $FLAVOR"; } | sha256sum | cut -c1-16)
image="$CACHE_ROOT/cloud-image-$key/debian-stable-cloud.qcow2"
mkdir -p "$CACHE_ROOT"

if [ ! -s "$image" ]; then
  exec 9>"$CACHE_ROOT/cloud-image.lock"
  flock 9
  if [ ! -s "$image" ]; then
    echo "cloud-test-image: building $NAME ($FLAVOR) into $image" >&2
    if [ ! -f dist/cli.js ]; then npm run -s build >&2; fi
    node dist/cli.js image build "$NAME" -flavor "$FLAVOR" -o "$image" >/dev/null
    ls -1dt "$CACHE_ROOT"/cloud-image-*/ 2>/dev/null | tail -n +3 | xargs -r rm -rf
  fi
  flock -u 9
else
  echo "cloud-test-image: using cached $image" >&2
fi
echo "$image"
