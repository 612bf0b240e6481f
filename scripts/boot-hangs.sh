#!/usr/bin/env bash
# Runs bench/boot-hangs.ts in batches (issue 14): each batch of at most 10 boots
# holds /work/vm.lock (or $VM_LOCK) only while it runs, so that others get
# VMs between batches. Usage:
#   scripts/boot-hangs.sh OUT.jsonl VARIANT[:BOOTS] [VARIANT[:BOOTS] ...]
# e.g. scripts/boot-hangs.sh /tmp/hangs/boots.jsonl default:10 rng:10 smp1:10 default:10
# A VARIANT:BOOTS over 10 is split into batches of 10. The summary table is
# printed after each batch (over every boot in OUT.jsonl so far).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1
shift
lock=${VM_LOCK:-/work/vm.lock}
export DJINN_TEST_DISKS=${DJINN_TEST_DISKS:-$(flock "$lock" scripts/test-image.sh)}
for item in "$@"; do
  variant=${item%%:*}
  boots=${item#*:}
  [ "$boots" = "$item" ] && boots=10
  while [ "$boots" -gt 0 ]; do
    n=$((boots > 10 ? 10 : boots))
    flock "$lock" npx tsx bench/index.ts boot-hangs --variant "$variant" --boots "$n" --out "$out"
    boots=$((boots - n))
  done
done
