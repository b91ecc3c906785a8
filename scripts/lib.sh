# Shared by scripts/run and scripts/test: install what is missing, then build with a CMake preset.
# shellcheck shell=bash

# Everything duet needs to build, all from Debian 12's own packages (GoogleTest and Google Benchmark too: the
# build has tests and micro-benchmarks).
DUET_BUILD_PACKAGES=(
  g++ cmake ninja-build
  libboost1.81-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libgtest-dev libbenchmark-dev liburing-dev
)
# What the test suite runs besides duet: promtool and a real Prometheus, to check /metrics; python3 and PyYAML, to
# check the deployment files under docker/; chromium, for the dashboard's browser test (with Node.js, below)
DUET_TEST_PACKAGES=(prometheus python3 python3-yaml chromium)
# Node.js and npm run the browser test; Debian's are enough (Node.js 18), and a newer one already here is kept.
command -v npm >/dev/null || DUET_TEST_PACKAGES+=(nodejs npm)

duet_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# Installs the packages named that are missing (as root, or through sudo); does nothing when all are present.
duet_install_missing() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "duet: need root or sudo to install: ${missing[*]}" >&2; return 1; }
    sudo=(sudo)
  fi
  echo "duet: installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The browser test's npm packages (tests/browser), exactly as its lock file pins them; none downloads a browser.
duet_install_browser_test_packages() {
  local dir=tests/browser
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "duet: installing $dir's npm packages"
    (cd "$dir" && npm ci --no-audit --no-fund)
  fi
}

# Configures (once) and builds a preset: release, debug, asan or tsan. Extra arguments go to cmake --build.
duet_build() {
  local preset=$1
  shift
  [ -f "build/$preset/CMakeCache.txt" ] || cmake --preset "$preset"
  cmake --build --preset "$preset" "$@"
}

# Benchmark helpers, shared by the bench-* scripts.
# The median of the numbers on standard input, one per line.
duet_median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# A wrk duration on standard input (850.00us, 1.20ms, 1.05s) in milliseconds, with DECIMALS decimals.
duet_to_ms() {
  awk -v d="${1:-3}" '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)}
    else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.*f", d, v}'
}
