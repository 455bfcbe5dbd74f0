#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, then
#   UI: type check (svelte-check), unit tests (Vitest), production build;
#   Rust: rustfmt, clippy -D warnings, unit and end-to-end tests (real Mosquitto, embedded broker,
#         the real binary), and a check that the generated TypeScript types are committed;
#   GUI: the real desktop app under Xvfb, driven through WebKitWebDriver (tauri-driver);
#   Fuzz: every decoder's libFuzzer target for 30 s (scripts/fuzz.sh).
# Logs and screenshots land in test-artifacts/. Ends with each runner's summary lines.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
# Rust as setup.sh checked it (rustup's, first); the Node.js setup.sh may have put in
# /usr/local/bin ahead of the distribution's; and the sbin folders, where Debian installs
# mosquitto (not on a normal user's PATH there).
export PATH="$HOME/.cargo/bin:/usr/local/bin:$PATH:/usr/local/sbin:/usr/sbin:/sbin"
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
# A one-shot CI build gains nothing from incremental compilation's cache (over a GB on disk).
if [[ "${CI:-}" == true ]]; then export CARGO_INCREMENTAL=0; fi

artifacts=test-artifacts
rm -rf "$artifacts" && mkdir -p "$artifacts"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# A test runner that fails does not stop the others: every runner's summary is printed, and the
# script fails at the end. (Type checks, lints and builds still stop it at once.)
failed=()

step "UI: type check"
npm --prefix ui run check --silent
step "UI: unit tests"
npm --prefix ui test --silent -- --reporter=default 2>&1 | tee "$artifacts/vitest.log" || failed+=("UI unit tests")
step "UI: production build"
npm --prefix ui run build --silent

step "Rust: format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Rust: unit and end-to-end tests"
# --no-fail-fast: a failing test binary does not stop the others (nor hide their counts).
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$artifacts/cargo-test.log" || failed+=("Rust tests")

step "Generated TypeScript types match the Rust types"
# safe.directory: a checkout owned by another user (a CI volume) is still this repository.
# Git reads it only from a global or system config (not from -c before 2.40): a global config
# of this run's own, which includes the user's.
git_config=$(mktemp)
trap 'rm -f "$git_config"' EXIT
printf '[include]\n\tpath = %s/.gitconfig\n[safe]\n\tdirectory = %s\n' "$HOME" "$PWD" >"$git_config"
git_here() { GIT_CONFIG_GLOBAL="$git_config" git "$@"; }
if [[ ! -e .git ]]; then
  echo "skipped: not a git checkout, nothing to compare the generated types with"
elif ! git_here rev-parse --git-dir >/dev/null; then
  echo "git cannot read this checkout: the generated types were not compared" >&2
  failed+=("generated types")
else
  if ! git_here diff --exit-code --stat -- ui/src/lib/backend/generated; then
    echo "ui/src/lib/backend/generated drifted from the Rust types: run 'cargo test' and commit the result" >&2
    failed+=("generated types")
  fi
  untracked=$(git_here ls-files --others --exclude-standard -- ui/src/lib/backend/generated)
  if [[ -n "$untracked" ]]; then
    echo "new generated types are not committed: $untracked" >&2
    failed+=("generated types")
  fi
fi

step "GUI: the desktop app under Xvfb"
# Software OpenGL for WebGL; no DMA-BUF renderer (there is no GPU under Xvfb).
export LIBGL_ALWAYS_SOFTWARE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1
export WATCHFLOOR_BIN="$target_dir/debug/watchfloor" WATCHFLOOR_ARTIFACTS="$PWD/$artifacts"
# The files by name (Node 22 takes a directory argument as a file), one at a time: they share
# one display, and two file dialogs on it at once could take each other's keys.
xvfb-run -a -s "-screen 0 1600x1000x24" node --test --test-concurrency=1 --test-reporter=spec tests/gui/*.test.mjs 2>&1 | tee "$artifacts/gui-test.log" || failed+=("GUI tests")

step "Fuzz: every decoder, 30 s each"
scripts/fuzz.sh 30 2>&1 | tee "$artifacts/fuzz.log" || failed+=("fuzzing")

step "Summary"
du -sh "$target_dir" fuzz/target 2>/dev/null | sed 's/^/disk used by /' || true
grep -E '^test result:' "$artifacts/cargo-test.log" || true
sed 's/\x1b\[[0-9;]*m//g' "$artifacts/vitest.log" | grep -E '^\s*(Test Files|Tests)\s' || true
grep -E '^\S+ (tests|pass|fail|cancelled|skipped) [0-9]+$' "$artifacts/gui-test.log" || true
grep -E '^fuzz ' "$artifacts/fuzz.log" || true
rust=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p+0, f+0 }' "$artifacts/cargo-test.log")
ui=$(sed 's/\x1b\[[0-9;]*m//g' "$artifacts/vitest.log" | awk '/^ *Tests / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p+0, f+0 }')
# A cancelled GUI test (its file crashed, or timed out) counts as failed.
gui=$(awk 'NF == 3 && $2 == "pass" { p = $3 } NF == 3 && ($2 == "fail" || $2 == "cancelled") { f += $3 } END { print p+0, f+0 }' "$artifacts/gui-test.log")
read -r rp rf <<<"$rust"; read -r up uf <<<"$ui"; read -r gp gf <<<"$gui"
echo "Total: $((rp + up + gp)) passed, $((rf + uf + gf)) failed"
# A runner that failed with no failing test counted stopped before its tests did (a build error,
# a crashed test binary): the total above is then short of what did not run.
if [[ " ${failed[*]} " == *" Rust tests "* ]] && ((rf == 0)); then
  echo "incomplete: the Rust tests failed without a failing test counted (a build error or a crash: $artifacts/cargo-test.log)" >&2
fi
if [[ " ${failed[*]} " == *" GUI tests "* ]] && ((gf == 0)); then
  echo "incomplete: the GUI tests failed without a failing test counted ($artifacts/gui-test.log)" >&2
fi
if ((${#failed[@]})); then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
