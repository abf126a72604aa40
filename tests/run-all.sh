#!/bin/bash
# tests/run-all.sh: the README's test command.  Installs what is missing,
# builds postern with AddressSanitizer and UBSan, and runs every test: unit
# tests, integration tests (the real daemon and real peers on loopback),
# conformance suites, and a short smoke run of every fuzz target.
#   FUZZ_SECONDS=n   seconds per fuzz target (default 10; 0 skips fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

tests/deps.sh

setup() {   # setup <dir> <meson args...>
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$top/tests/lsan.supp

echo "== build (asan+ubsan)"
setup build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
ninja -C build-asan

echo "== unit tests"
meson test -C build-asan --print-errorlogs --suite unit

echo "== integration and conformance tests"
export POSTERN_BIN=$top/build-asan/postern
export POSTERN_AUTH_BIN=$top/build-asan/postern-auth
export POSTERN_CONFORMANCE=${POSTERN_CONFORMANCE:-$top/../shared/conformance}
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration

secs=${FUZZ_SECONDS:-10}
if [ "$secs" != 0 ]; then
  echo "== fuzz smoke (${secs}s per target)"
  CC=clang setup build-fuzz --buildtype=debug -Dfuzz=true \
    -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link
  ninja -C build-fuzz
  for t in $(find build-fuzz/tests/fuzz -maxdepth 2 -type f -name 'fuzz_*' -executable | sort); do
    name=$(basename "$t")
    mod=$(basename "$(dirname "$t")")
    seeds=tests/fuzz/$mod/corpus/$name
    work=$(mktemp -d)
    echo "-- $name"
    if [ -d "$seeds" ]; then
      "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 "$work" "$seeds" 2>"$work.log" \
        || { tail -50 "$work.log"; exit 1; }
    else
      "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 "$work" 2>"$work.log" \
        || { tail -50 "$work.log"; exit 1; }
    fi
    rm -rf "$work" "$work.log"
  done
fi
echo "== all tests passed"
