#!/usr/bin/env bash
# A private Docker engine for the tests, with its data root, exec root and
# socket in a folder of its own under STATE_DIR, so that it never disturbs a
# system dockerd.
#   scripts/dockerd.sh start STATE_DIR   starts it (or finds it running), waits until it answers,
#                                        prints shell lines to eval: export DOCKER_HOST=unix://...
#   scripts/dockerd.sh stop STATE_DIR    stops it by pid and removes its folder
# Both are idempotent.
set -uo pipefail

cmd=${1:-}
state=${2:-}
if [ -z "$cmd" ] || [ -z "$state" ]; then
  echo "usage: $0 start|stop STATE_DIR" >&2
  exit 2
fi
mkdir -p "$state"
dir=$(cd "$state" && pwd)/dockerd
sock="$dir/docker.sock"
pidfile="$dir/dockerd.pid"
log="$dir/dockerd.log"

alive() { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
answers() { curl -sf --max-time 2 --unix-socket "$sock" http://docker/_ping >/dev/null 2>&1; }

start() {
  if alive && answers; then
    echo "export DOCKER_HOST=unix://$sock"
    return 0
  fi
  if alive; then stop; fi
  mkdir -p "$dir/data" "$dir/exec"
  local net=()
  # Another engine running owns the default bridge and its iptables rules:
  # stay off both rather than fight over them (jobs then have no network).
  if pgrep -x dockerd >/dev/null 2>&1; then
    echo "dockerd.sh: another dockerd is running: starting ours without a bridge network" >&2
    net=(--bridge=none --iptables=false)
  elif ! ip link show docker0 >/dev/null 2>&1; then
    touch "$dir/made-docker0"   # ours to remove on stop
  fi
  setsid /usr/sbin/dockerd --data-root "$dir/data" --exec-root "$dir/exec" \
    --pidfile "$pidfile" --host "unix://$sock" "${net[@]}" >"$log" 2>&1 </dev/null &
  local pid=$!
  for _ in $(seq 1 300); do
    if answers; then
      echo "export DOCKER_HOST=unix://$sock"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "dockerd.sh: dockerd did not answer on $sock; last lines of $log:" >&2
  tail -n 20 "$log" >&2
  kill "$pid" 2>/dev/null
  return 1
}

# Processes whose command line names our exec root (containerd and its shims), by pid.
ours() {
  local p
  for p in /proc/[0-9]*; do
    if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$dir/exec"; then echo "${p#/proc/}"; fi
  done
}

stop() {
  if [ ! -d "$dir" ]; then return 0; fi
  if alive; then
    local pid
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  local p
  for p in $(ours); do kill -KILL "$p" 2>/dev/null; done
  # Unmount whatever is left under our folder (overlay layers, netns), deepest first.
  awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  if [ -e "$dir/made-docker0" ] && ! pgrep -x dockerd >/dev/null 2>&1; then
    ip link delete docker0 2>/dev/null
  fi
  rm -rf "$dir"
  return 0
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop STATE_DIR" >&2; exit 2 ;;
esac
