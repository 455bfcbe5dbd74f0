#!/usr/bin/env bash
# Runs the benchmarks recorded in docs/BENCHMARKS.md on this machine and prints their tables.
# Release builds; Mosquitto and mosquitto_sub from the system packages (scripts/setup.sh --tests).
#
#   scripts/bench.sh                 all of them
#   scripts/bench.sh ingest|writer|prune|memory|facesync|panel|attendance
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release --locked --no-default-features -p watchfloor -p watchfloor-bench
bench=target/release/watchfloor-bench
what=${1:-all}

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), $(mosquitto -h 2>/dev/null | head -1 || /usr/sbin/mosquitto -h | head -1)"
[[ $what == all || $what == writer ]] && { $bench writer; echo; }
[[ $what == all || $what == prune ]] && { $bench prune --events 200000 --open 1000; echo; }
[[ $what == all || $what == ingest ]] && { $bench ingest --messages 200000 --devices 1000; echo; }
[[ $what == all || $what == memory ]] && { $bench memory --devices 10000; echo; }
[[ $what == all || $what == facesync ]] && { $bench facesync --employees 20000 --terminals 50 --person-ms 10; echo; }
[[ $what == all || $what == panel ]] && { $bench panel --employees 20000 --terminals 50; echo; }
[[ $what == all || $what == attendance ]] && { $bench attendance --employees 20000 --days 28 --per-day 4 --terminals 24; echo; }
exit 0
