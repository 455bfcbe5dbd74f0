#!/usr/bin/env bash
# Runs every fuzz target (cargo-fuzz, libFuzzer) for SECONDS each, starting from the committed
# seeds (fuzz/seeds/) and the growing local corpus (fuzz/corpus/, not committed): the device
# decoders (native, OwnTracks, face terminals), the face terminals' sync answers, other
# consoles' incident messages, and the employee CSV import.
#
#   scripts/fuzz.sh            30 s per target (what the test suite runs)
#   scripts/fuzz.sh 3600       an hour per target, offline
#
# Any toolchain (stable included), no sanitizer (-s none): the decoders are safe Rust, so what fuzzing looks for is a
# panic, an abort or runaway memory, which libFuzzer reports without ASan. With a nightly
# toolchain, `cargo +nightly fuzz run TARGET` adds AddressSanitizer for the C parts (none today).
# A crash leaves its input in fuzz/artifacts/TARGET/; add it to the decoder's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
seconds=${1:-30}
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  # The version this script was written against: a newer one may need a newer Rust.
  cargo install cargo-fuzz --locked --version 0.13.2 --quiet
fi
logs=${FUZZ_LOGS:-test-artifacts}
mkdir -p "$logs"
failed=()
for target in native owntracks face face_sync incident csv_import; do
  mkdir -p "fuzz/corpus/$target"
  # -rss_limit_mb: a decoder that balloons on one input is a finding too. The whole output
  # (a build error, the crashing input's file) goes to the target's log; its summary here.
  status=0
  cargo fuzz run -s none "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=512 -print_final_stats=0 >"$logs/fuzz-$target.log" 2>&1 || status=$?
  grep -E '^(Done |==[0-9]+== ERROR|.*panicked|Test unit written)' "$logs/fuzz-$target.log" | sed "s/^/fuzz $target: /" || true
  if ((status != 0)); then
    # The other targets still run: one failure does not hide another.
    echo "fuzz $target: failed (exit $status); the last lines of $logs/fuzz-$target.log:" >&2
    tail -n 30 "$logs/fuzz-$target.log" >&2
    failed+=("$target")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
