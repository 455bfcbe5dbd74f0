#!/usr/bin/env bash
# Quick start: installs what is missing, builds the UI and the app (release), and opens the
# console with its embedded broker and a simulated fleet, so something moves on the map at once.
# Extra arguments go to watchfloor, e.g. `scripts/console.sh --simulate 500`. With a broker or
# a config of a site (flag or environment) it adds nothing: no simulated fleet, no --listen.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Rust as setup.sh checked it (rustup's, first), and the Node.js setup.sh may have put in
# /usr/local/bin ahead of the distribution's.
export PATH="$HOME/.cargo/bin:/usr/local/bin:$PATH"

npm --prefix ui run build --silent
cargo build --release --quiet

# given FLAG ARGS...: whether ARGS name FLAG, as `--flag value` or `--flag=value`.
given() {
  local flag=$1 a
  shift
  for a in "$@"; do
    [[ $a == "$flag" || $a == "$flag="* ]] && return 0
  done
  return 1
}

args=()
# A site's broker or config is left alone: no simulated fleet is sent into it unasked (a config
# can ask, with [simulator] devices), and its broker or listen address is its own.
site=0
if given --broker "$@" || given --config "$@" || [[ -n ${WATCHFLOOR_BROKER:-}${WATCHFLOOR_CONFIG:-} ]]; then
  site=1
fi
if [[ $site == 0 ]] && ! given --simulate "$@" && [[ -z ${WATCHFLOOR_SIMULATE:-} ]]; then
  args+=(--simulate 50)
fi
# Where the broker is, when nothing says: the embedded one on 1883.
if [[ $site == 0 ]] && ! given --listen "$@" && [[ -z ${WATCHFLOOR_LISTEN:-} ]] \
  && (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  # Something (often a system Mosquitto) already holds the MQTT port: let the embedded broker
  # take a free one instead. The console's status bar shows which; give it to mosquitto_pub
  # with -p, or the messages go to whatever holds 1883.
  echo "console: port 1883 is in use; the embedded broker will listen on a free port (the status bar says which: mosquitto_pub -p PORT)" >&2
  args+=(--listen 127.0.0.1:0)
fi
exec "${CARGO_TARGET_DIR:-target}/release/watchfloor" "${args[@]}" "$@"
