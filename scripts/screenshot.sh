#!/usr/bin/env bash
# Full-page screenshot of a report: bash scripts/screenshot.sh REPORT_DIR OUT.png [WIDTH]
#
# Installs Debian's chromium if it is missing (needs root and the package mirror), then renders
# REPORT_DIR/index.html headless. Headless chromium has no "full page" switch, so the page's
# height is measured first (--dump-dom of a page that writes its own scrollHeight) and the
# window is made that tall.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 REPORT_DIR OUT.png [WIDTH]" >&2
  exit 2
fi
report_dir=$1
out=$2
width=${3:-1400}
page="$report_dir/index.html"
[[ -f $page ]] || { echo "no report at $page" >&2; exit 2; }

browser=""
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then browser=$name; break; fi
done
if [[ -z $browser ]]; then
  echo "installing chromium (apt-get)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  browser=chromium
fi

abs_page=$(realpath "$page")
abs_out=$(realpath -m "$out")
mkdir -p "$(dirname "$abs_out")"
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --disable-dev-shm-usage
       --no-first-run --no-default-browser-check --run-all-compositor-stages-before-draw)

# Measure: a copy of the page that writes its height into the DOM once laid out (the report
# itself has no script; its images are embedded, so the copy renders the same anywhere).
probe=$(mktemp --suffix=.html)
trap 'rm -f "$probe"' EXIT
sed 's#</body>#<script>document.title="H="+document.documentElement.scrollHeight;</script></body>#' \
  "$abs_page" >"$probe"
height=$("$browser" "${flags[@]}" --window-size="$width,1000" --virtual-time-budget=5000 \
  --dump-dom "file://$probe" 2>/dev/null | grep -o '<title>H=[0-9]*' | grep -o '[0-9]*$' || true)
height=${height:-4000}
height=$((height + 40))
(( height > 16000 )) && height=16000  # chromium's largest surface

"$browser" "${flags[@]}" --window-size="$width,$height" --virtual-time-budget=5000 \
  --screenshot="$abs_out" "file://$abs_page" 2>/dev/null
echo "$abs_out (${width}x${height})"
