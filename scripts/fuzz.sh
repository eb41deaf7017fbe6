#!/usr/bin/env bash
# Fuzzes the HTTP request head and the web-config parser with cargo fuzz
# (libFuzzer), each target for FUZZ_SECONDS (default 60). Needs a nightly
# Rust toolchain (cargo fuzz uses its sanitizer flags); installs cargo-fuzz
# from crates.io. Crashes are saved under fuzz/artifacts/<target>/.
#   scripts/fuzz.sh                 # both targets, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh web_config
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
secs=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(request_head web_config)
cargo +nightly --version >/dev/null 2>&1 || { echo "fuzz: needs a nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz
for t in "${targets[@]}"; do
  echo "fuzz: $t for ${secs}s" >&2
  mkdir -p "fuzz/corpus/$t"
  cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -max_len=16384
done
