#!/usr/bin/env bash
# Builds the Python example components with componentize-py (installed, pinned, by
# .ci/tools-python into ${SHOAL_TOOLS:-target/tools}/venv) into guest-examples/target/python/:
#
#   bash guest-examples/python/build.sh              # dynamic_graph, fanout and orders.wasm
#   bash guest-examples/python/build.sh fanout       # only fanout.wasm
#
# Each component is the app module guest-examples/python/<name>/app.py, the SDK (sdk/python) and
# CPython with its standard library, pre-initialised (the app module already imported). One
# build takes about 25 s; a component newer than its sources (the app's directory, the SDK, the
# WIT, this script and the installed componentize-py) is left as it is unless SHOAL_REBUILD=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/tools-python
out=guest-examples/target/python
mkdir -p "$out"
apps=("$@")
((${#apps[@]})) || apps=(dynamic_graph fanout orders)
for app in "${apps[@]}"; do
  if [ ! -f "guest-examples/python/$app/app.py" ]; then
    echo "error: no guest-examples/python/$app/app.py" >&2
    exit 1
  fi
  wasm="$out/$app.wasm"
  if [ "${SHOAL_REBUILD:-0}" != 1 ] && [ -f "$wasm" ] && [ -z "$(find "guest-examples/python/$app" \
      sdk/python/shoal sdk/python/wit guest-examples/python/build.sh "$SHOAL_TOOLS"/venv/.componentize-py-* \
      -newer "$wasm" -not -path '*/__pycache__*' -print -quit)" ]; then
    echo "$wasm is up to date"
    continue
  fi
  PYTHONDONTWRITEBYTECODE=1 componentize-py --quiet \
    --wit-path sdk/python/wit --world op-component \
    componentize app \
    --python-path "guest-examples/python/$app" --python-path sdk/python \
    --output "$out/$app.wasm"
  echo "$out/$app.wasm ($(($(stat -c %s "$out/$app.wasm") / 1024)) KiB)"
done
