#!/usr/bin/env bash
# One entry point for people and CI: sets up .venv, then runs the demo or the whole test suite.
#   ./dev.sh demo   install ci-modelver and run it on the example model (embedded default store)
#   ./dev.sh test   install test tools and run ruff, mypy --strict and pytest (unit + integration)
# Safe to run repeatedly; needs only python3 (>= 3.10) on a Debian-like machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$PWD
VENV="$ROOT/.venv"

say() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  say "installing $* with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

find_python() {
  local candidate
  for candidate in python3 python3.13 python3.12 python3.11 python3.10; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "error: ci-modelver needs Python >= 3.10 (python3 not found or too old)" >&2
  return 2
}

ensure_venv() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    return 0
  fi
  local py
  py=$(find_python)
  rm -rf "$VENV"
  if ! "$py" -m venv "$VENV" >/dev/null 2>&1; then
    # Debian splits ensurepip into python3-venv; a half-made venv has no pip.
    rm -rf "$VENV"
    local minor
    minor=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt_install "python${minor}-venv" || apt_install python3-venv || {
      echo "error: '$py -m venv' failed; install the python3-venv package and rerun" >&2
      exit 2
    }
    "$py" -m venv "$VENV"
  fi
}

pip_install() {
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 |
    grep -v "^WARNING: Location" >&2 || true
  "$VENV/bin/python" -c 'import ci_modelver' 2>/dev/null || {
    echo "error: installing ci-modelver into $VENV failed (see pip output above)" >&2
    exit 2
  }
}

demo() {
  ensure_venv
  say "installing ci-modelver into .venv"
  pip_install "$ROOT"
  say "validating the example model"
  "$VENV/bin/ci-modelver" validate examples/churn/modelver.yaml
  say "publishing it into the embedded store (oci:.modelver/churn-classifier)"
  "$VENV/bin/ci-modelver" publish examples/churn/modelver.yaml
  say "versions in the store"
  "$VENV/bin/ci-modelver" versions churn-classifier
}

ensure_test_tools() {
  # The integration tests need a real registry and a second OCI client (Debian packages).
  local missing=()
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
  # actionlint runs shellcheck on every run: script of every workflow.
  command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
  # npm fetches GitHub's OpenAPI description and webhook examples for the fake GitHub API.
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  # The site's browser tests drive the system chromium with Playwright (no browser download).
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}" ||
      say "could not install ${missing[*]}; their integration tests will be skipped (they fail under CI=true)"
  fi
}

run_tests() {
  ensure_venv
  say "installing ci-modelver and its test tools into .venv"
  pip_install "${ROOT}[test]"
  ensure_test_tools
  say "ruff"
  "$VENV/bin/ruff" check src tests
  say "mypy --strict"
  "$VENV/bin/mypy" --strict src
  # The gigabyte transfer tests need up to 5.5 GiB at once in the temp folder; say so up front
  # rather than leave a run of "No space left on device" failures to explain it.
  local tmp="${TMPDIR:-/tmp}" free_kib
  free_kib=$(df -Pk "$tmp" 2>/dev/null | awk 'NR == 2 { print $4 }') || free_kib=""
  if [ -n "$free_kib" ] && [ "$free_kib" -lt $((6 * 1024 * 1024)) ]; then
    say "warning: $((free_kib / 1024)) MiB free in $tmp; the tests need about 6 GiB (set TMPDIR to a bigger disk)"
  fi
  say "pytest"
  "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
}

case "${1:-}" in
  demo) shift; demo "$@" ;;
  test) shift; run_tests "$@" ;;
  *)
    echo "usage: ./dev.sh demo | ./dev.sh test [pytest args]" >&2
    exit 2
    ;;
esac
