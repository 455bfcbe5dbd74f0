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
# ca-certificates: rustup's and cargo's downloads check TLS against them, and a minimal image
# (a container) has none.
# mosquitto-clients: the Quick start publishes to the console with mosquitto_pub.
packages=(build-essential pkg-config curl ca-certificates file libwebkit2gtk-4.1-dev libgtk-3-dev
  libayatana-appindicator3-dev librsvg2-dev libssl-dev libxdo-dev mosquitto-clients)
if [[ $want_tests == 1 ]]; then
  # Tests: a real broker and its clients, a virtual display, the WebKit WebDriver, screenshots,
  # Mesa's software OpenGL for MapLibre's WebGL under Xvfb, xdotool to read window titles, and a
  # private session bus with GNOME Keyring for the OS-keyring tests, and Python D-Bus bindings
  # for the stand-in tray host and notification daemon of the GUI tests (desktop_host.py).
  # dbus: the bus daemon and dbus-run-session (its own package, dbus-daemon, on Debian 12 and
  # Ubuntu 24.04, which dbus depends on; inside dbus on Ubuntu 22.04).
  packages+=(mosquitto openssl xvfb xauth webkit2gtk-driver imagemagick libgl1-mesa-dri git xdotool dbus gnome-keyring python3-dbus python3-gi)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Runs apt-get as root (through sudo when not root), non-interactively.
apt_get() {
  if [[ $(id -u) -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get "$@"
  elif command -v sudo >/dev/null; then
    sudo env DEBIAN_FRONTEND=noninteractive apt-get "$@"
  else
    say "not root and no sudo: run as root: apt-get $*"
    exit 1
  fi
}
apt_updated=0
apt_install() {
  if ! command -v apt-get >/dev/null; then
    say "missing system packages ($*) and no apt-get: install their equivalents, see README 'Prerequisites'"
    exit 1
  fi
  if ((apt_updated == 0)); then
    apt_get update -qq
    apt_updated=1
  fi
  apt_get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ((${#missing[@]})); then
  say "installing system packages: ${missing[*]}"
  apt_install "${missing[@]}"
fi

# --- Rust ------------------------------------------------------------------------------------
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null; then
  say "installing Rust with rustup (https://rustup.rs)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
fi
# A rustup install without the formatter or the linter (a `minimal` profile) gets them.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  if ! command -v rustup >/dev/null; then
    say "this Rust has no rustfmt or clippy, and no rustup to add them: install Rust with rustup (https://rustup.rs)"
    exit 1
  fi
  say "adding rustfmt and clippy to the Rust toolchain"
  rustup component add rustfmt clippy
fi
# The workspace builds with 1.90 (its rust-version); the test suite's cargo-fuzz 0.13.2 needs
# 1.91 (its locked dependencies do). A rustup install is brought up to date.
rust_needed=90
[[ $want_tests == 1 ]] && rust_needed=91
rust_minor() { rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/'; }
if (($(rust_minor) < rust_needed)) && command -v rustup >/dev/null; then
  say "Rust $(rustc --version) is older than 1.$rust_needed: updating the stable toolchain with rustup"
  rustup update stable --no-self-update
fi
if (($(rust_minor) < rust_needed)); then
  say "Rust $(rustc --version) is older than 1.$rust_needed: install a newer one (rustup update stable)"
  exit 1
fi

# --- Node.js and the UI's packages -----------------------------------------------------------
node_ok() {
  command -v node >/dev/null &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)||(a===20&&b>=19)?0:1)'
}
if ! node_ok; then
  # Debian 12 and Ubuntu 24.04 package Node 18, Ubuntu 22.04 Node 12: too old for Vite 8. Their
  # Node and npm fetch a current one from the npm registry (the `node` package carries the
  # official binary for this platform), with npm 11, into /usr/local.
  say "Node.js 20.19+ or 22.12+ is needed ($(node --version 2>/dev/null || echo 'none') here): installing Node.js 22 from the npm registry"
  command -v npm >/dev/null || apt_install nodejs npm
  npm_g=(npm install --global --prefix /usr/local --no-audit --no-fund --loglevel=error node@22 npm@11)
  if [[ $(id -u) -eq 0 ]]; then
    "${npm_g[@]}"
  elif command -v sudo >/dev/null; then
    sudo "${npm_g[@]}"
  else
    say "not root and no sudo: run as root: ${npm_g[*]}"
    exit 1
  fi
  export PATH="/usr/local/bin:$PATH"
  hash -r
  if ! node_ok; then
    say "Node.js $(node --version) is still too old: install 20.19+ or 22.12+ (README 'Prerequisites')"
    exit 1
  fi
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
  # The version these tests were written against: a newer one may need a newer Rust.
  cargo install tauri-driver --locked --version 2.1.0 --quiet
fi
