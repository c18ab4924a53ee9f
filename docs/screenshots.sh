#!/usr/bin/env bash
# Saves screenshots of the web view's main pages to docs/screenshots/ (linked from the README):
# the browser test drives headless Chromium through them and, with SHOAL_SCREENSHOTS set, saves
# each page it checks. Needs chromium and chromium-driver (apt-get install chromium
# chromium-driver). Run from anywhere: `bash docs/screenshots.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/docs/screenshots"
mkdir -p "$out"
CI=true SHOAL_SCREENSHOTS="$out" cargo test --release --test e2e -- --exact \
  web::a_tenant_follows_inspects_and_reexecutes_runs_in_a_real_browser
ls -1 "$out"
