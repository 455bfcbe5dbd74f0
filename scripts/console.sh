#!/usr/bin/env bash
# Quick start: installs what is missing, builds the UI and the app (release), and opens the
# console with its embedded broker and a simulated fleet, so something moves on the map at once.
# Extra arguments go to watchfloor, e.g. `scripts/console.sh --simulate 500`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

npm --prefix ui run build --silent
cargo build --release --quiet

args=()
[[ " $* " == *" --simulate "* ]] || args+=(--simulate 50)
if [[ " $* " != *" --listen "* && " $* " != *" --broker "* ]] && (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  # Something (often a system Mosquitto) already holds the MQTT port: let the embedded broker
  # take a free one instead. The console's status bar shows which.
  echo "console: port 1883 is in use; the embedded broker will listen on a free port" >&2
  args+=(--listen 127.0.0.1:0)
fi
exec target/release/watchfloor "${args[@]}" "$@"
