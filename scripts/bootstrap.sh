#!/usr/bin/env bash
# Idempotent set-up for a fresh machine, then run what was asked:
#   scripts/bootstrap.sh run    set up, then run the platform (what `make run` does)
#   scripts/bootstrap.sh test   set up, install the system tools the tests use, then run pytest (`make test`)
#   scripts/bootstrap.sh check  the Python environment and system tools, then the unit tier (`make check`; no JDK)
#   scripts/bootstrap.sh        set up only
# Needs Python 3.11+ and a JDK 17+; everything else comes from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8  # keep equal to the uv pin in pyproject.toml's dev group
PYTHON=${PYTHON:-python3}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31merror: %s\033[0m\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python 3.11 or newer (or set PYTHON=/path/to/python3.11)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python 3.11+ is required, $PYTHON is $("$PYTHON" -V 2>&1); set PYTHON=/path/to/python3.11"

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv || die "could not create .venv (Debian/Ubuntu: apt-get install python3-venv)"
fi
if ! .venv/bin/uv --version 2>/dev/null | grep -q " $UV_VERSION"; then
  say "installing uv $UV_VERSION"
  .venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip --upgrade >/dev/null
  .venv/bin/python -m pip install --quiet "uv==$UV_VERSION"
fi
say "syncing the Python environment with uv.lock"
.venv/bin/uv sync --frozen --quiet --extra aws  # the aws profile's adapters: its tests compile and run them

# System packages the tests drive; installed from Debian's archive when missing.
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "please install: ${missing[*]} (needed by the tests)"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  say "installing ${missing[*]}"
  $sudo apt-get update -qq >/dev/null || die "apt-get update failed; install ${missing[*]} by hand"
  DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "could not install ${missing[*]}; install them by hand"
}

test_tools() {
  if ! command -v docker-compose >/dev/null; then apt_install docker-compose; fi
  # a real PostgreSQL server for the warehouse tests (started per test session on loopback)
  if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then apt_install postgresql; fi
  # the dashboard's browser test drives Debian's chromium headless (Playwright, no browser download)
  if ! command -v chromium >/dev/null; then apt_install chromium; fi
}

setup() {
  say "resolving JVM jars and preparing the dbt project (first run only)"
  .venv/bin/smartcity setup
}

case "${1:-}" in
  run)
    shift
    setup
    exec .venv/bin/smartcity run "$@"
    ;;
  test)
    shift
    setup
    test_tools
    say "fetching the aws test bed's Trino (first run only)"
    .venv/bin/smartcity aws testbed install
    exec .venv/bin/pytest "$@"
    ;;
  check)
    shift
    test_tools
    exec .venv/bin/pytest -m unit "$@"
    ;;
  "") setup ;;
  *) die "unknown action '$1' (use: run, test, check, or nothing to only set up)" ;;
esac
