#!/usr/bin/env bash
# Fuzzes the HTTP request head and the web-config parser with cargo fuzz
# (libFuzzer), each target for FUZZ_SECONDS (default 60). Installs cargo-fuzz
# from crates.io. With a nightly toolchain the targets run under
# AddressSanitizer; without one they run on the default toolchain with
# `--sanitizer none` (still coverage-guided; a panic, a hang past
# FUZZ_TIMEOUT seconds (default 10) or memory past 2 GiB is a crash).
# Seeds come from fuzz/seeds/<target>/ and a dictionary from
# fuzz/<target>.dict when there is one; new inputs go to fuzz/corpus/<target>/,
# crashes to fuzz/artifacts/<target>/. Runs at nice 19.
#   scripts/fuzz.sh                 # both targets, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh web_config
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
secs=${FUZZ_SECONDS:-60}
timeout=${FUZZ_TIMEOUT:-10}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(request_head web_config)
if cargo +nightly --version >/dev/null 2>&1; then
  fuzz=(cargo +nightly fuzz)
  sanitizer=()
else
  echo "fuzz: no nightly toolchain; fuzzing without a sanitizer" >&2
  fuzz=(cargo fuzz)
  sanitizer=(--sanitizer none)
fi
command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz
for t in "${targets[@]}"; do
  echo "fuzz: $t for ${secs}s" >&2
  mkdir -p "fuzz/corpus/$t"
  dirs=("fuzz/corpus/$t")
  [ -d "fuzz/seeds/$t" ] && dirs+=("fuzz/seeds/$t")
  extra=()
  [ -f "fuzz/$t.dict" ] && extra+=("-dict=fuzz/$t.dict")
  nice -n 19 "${fuzz[@]}" run "${sanitizer[@]}" "$t" "${dirs[@]}" -- \
    -max_total_time="$secs" -max_len=16384 -timeout="$timeout" -rss_limit_mb=2048 \
    -print_final_stats=1 "${extra[@]}"
done
