#!/usr/bin/env bash
# Builds every JavaScript op component under guest-examples/js/ (each directory's op.js) into
# guest-examples/target/js/<directory>.wasm, with jco's QuickJS backend (componentize-qjs).
# Run from anywhere; needs the tools of .ci/tools-js on PATH, or installed in
# ${SHOAL_TOOLS:-target/tools}/js (run `bash .ci/tools-js` first):
#
#   bash .ci/tools-js && bash guest-examples/js/build.sh            # all examples
#   bash guest-examples/js/build.sh fanout                          # one
#
# QuickJS (the default): `jco componentize --backend quickjs` (componentize-qjs), ~1.8 MB
# components; `--backend-qjs-disable-async` picks the synchronous runtime (the host does not
# enable component-model async); `--cwd <repo>` makes the repository the module root (op.js
# imports sdk/js/shoal.js from outside its own directory). QuickJS has no wasi:http or
# fetch-event to disable: its components import only wasi:cli, clocks, filesystem, io and random
# (0.2), plus shoal:op.
#
# SHOAL_JS_BACKEND=starlingmonkey builds with componentize-js (SpiderMonkey) instead, with
# `--disable http fetch-event` (no wasi:http import): ~12.7 MB components, 30 s to build, about
# 90 s for the host's first compile, and several times the fuel and time per step.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"

if ! command -v jco >/dev/null; then
  tools_bin="${SHOAL_TOOLS:-$repo/target/tools}/js/node_modules/.bin"
  if [ -x "$tools_bin/jco" ]; then
    export PATH="$tools_bin:$PATH"
  else
    echo "error: jco not found on PATH nor in $tools_bin; run 'bash .ci/tools-js' first" >&2
    exit 1
  fi
fi
if [ "$(jco --version)" != "1.35.0" ]; then
  echo "warning: jco $(jco --version) on PATH; the SDK is tested with the pinned 1.35.0 (.ci/tools-js)" >&2
fi

# The SDK's copy of the WIT must be the host's.
if ! cmp -s sdk/js/wit/op.wit wit/op.wit; then
  echo "error: sdk/js/wit/op.wit differs from wit/op.wit; copy it: cp wit/op.wit sdk/js/wit/op.wit" >&2
  exit 1
fi

out=guest-examples/target/js
mkdir -p "$out"
if [ $# -gt 0 ]; then names=("$@"); else
  names=()
  for dir in guest-examples/js/*/; do
    [ -f "$dir/op.js" ] && names+=("$(basename "$dir")")
  done
fi
for name in "${names[@]}"; do
  src="$repo/guest-examples/js/$name/op.js"
  [ -f "$src" ] || { echo "error: no $src" >&2; exit 1; }
  case "${SHOAL_JS_BACKEND:-quickjs}" in
    quickjs)
      # jco resolves the entry against --cwd: give it absolute paths.
      jco componentize "$src" \
        --wit "$repo/sdk/js/wit" --world-name op-component \
        --backend quickjs --backend-qjs-disable-async \
        --cwd "$repo" \
        -o "$repo/$out/$name.wasm" >/dev/null
      ;;
    starlingmonkey)
      # componentize-js directly: jco 1.35's StarlingMonkey path cannot read the WIT directory
      # (its preview2-shim 0.26 filesystem fails with os error 44).
      componentize-js "guest-examples/js/$name/op.js" \
        --wit sdk/js/wit --world-name op-component \
        --disable http fetch-event \
        -o "$out/$name.wasm" >/dev/null
      ;;
    *)
      echo "error: SHOAL_JS_BACKEND must be quickjs or starlingmonkey, not '$SHOAL_JS_BACKEND'" >&2
      exit 1
      ;;
  esac
  echo "built $out/$name.wasm (${SHOAL_JS_BACKEND:-quickjs}, $(wc -c <"$out/$name.wasm") bytes)"
done
