#!/usr/bin/env bash
# Installs the system packages the test suite needs when they are missing:
# PostgreSQL server binaries (the tests start a throwaway cluster as the `postgres` user) and
# Debian's chromium (the browser tests drive it through Playwright); R (r-base-core) parses the
# generated nlmixr2 model code.
set -euo pipefail

need=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
if ! command -v chromium >/dev/null 2>&1; then
  need+=(chromium)
fi
if ! command -v Rscript >/dev/null 2>&1; then
  need+=(r-base-core)  # R parses the generated nlmixr2 model code (tests/interop)
fi
if ! Rscript -e 'library(foreign)' >/dev/null 2>&1; then
  need+=(r-cran-foreign)  # R's read.xport is the oracle of the SAS transport writer (tests/interop)
fi
if ((${#need[@]})); then
  echo "installing system packages for the tests: ${need[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
