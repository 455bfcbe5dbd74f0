#!/usr/bin/env bash
# Installs what Watchfloor needs to build, run and test on Debian/Ubuntu, skipping what is there:
# system packages (apt, via sudo when not root), the UI's npm packages, and tauri-driver for the
# GUI tests. Used by scripts/console.sh and scripts/test.sh; safe to run again.
#
#   scripts/setup.sh            build and run the console
#   scripts/setup.sh --tests    also what the test suite needs (Mosquitto, Xvfb, WebDriver)
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[[ "${1:-}" == "--tests" ]] && want_tests=1

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

# --- System packages -------------------------------------------------------------------------
# Tauri 2 on Linux: WebKitGTK 4.1, GTK 3, appindicator, rsvg, OpenSSL headers, a C toolchain.
packages=(build-essential pkg-config curl file libwebkit2gtk-4.1-dev libgtk-3-dev
  libayatana-appindicator3-dev librsvg2-dev libssl-dev libxdo-dev)
if [[ $want_tests == 1 ]]; then
  # Tests: a real broker and its clients, a virtual display, the WebKit WebDriver, screenshots,
  # Mesa's software OpenGL for MapLibre's WebGL under Xvfb, xdotool to read window titles, and a
  # private session bus with GNOME Keyring for the OS-keyring tests, and Python D-Bus bindings
  # for the stand-in tray host and notification daemon of the GUI tests (desktop_host.py).
  packages+=(mosquitto mosquitto-clients openssl xvfb xauth webkit2gtk-driver imagemagick libgl1-mesa-dri git xdotool dbus-daemon gnome-keyring python3-dbus python3-gi)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null; then
    say "missing system packages (${missing[*]}) and no apt-get: install their equivalents, see README 'Prerequisites'"
    exit 1
  fi
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  say "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Rust ------------------------------------------------------------------------------------
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null; then
  say "installing Rust with rustup (https://rustup.rs)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
fi
rust_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if ((rust_minor < 90)); then
  say "Rust $(rustc --version) is older than 1.90: run 'rustup update stable'"
  exit 1
fi

# --- Node.js and the UI's packages -----------------------------------------------------------
if ! command -v node >/dev/null; then
  say "Node.js 20.19+ (or 22.12+) is required and not installed: see README 'Prerequisites'"
  exit 1
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)||(a===20&&b>=19)?0:1)'; then
  say "Node.js $(node --version) is too old for Vite 8: install 20.19+ or 22.12+ (README 'Prerequisites')"
  exit 1
fi
if [[ ! -d ui/node_modules ]] || [[ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]]; then
  say "installing the UI's npm packages"
  # `npm install` rather than `npm ci`: the lock file holds the Tauri CLI binaries that the
  # registry served when it was written (linux-x64/arm64 here), and `npm ci` refuses a lock that
  # lacks other platforms' optional binaries. `npm install` follows the lock and fetches the
  # binary for this platform; versions stay pinned by the lock either way.
  npm --prefix ui install --no-audit --no-fund --loglevel=error
fi

# --- tauri-driver (GUI tests) ----------------------------------------------------------------
if [[ $want_tests == 1 ]] && ! command -v tauri-driver >/dev/null; then
  say "installing tauri-driver (WebDriver bridge for the GUI tests)"
  cargo install tauri-driver --locked --version '^2' --quiet
fi
