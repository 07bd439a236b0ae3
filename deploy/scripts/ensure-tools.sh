#!/bin/sh
# Make the machine programs the test suite and `make run` use available, from Debian's
# packages, when they are missing and apt-get can run:
#   promtool   (package prometheus)  rule tests, tests/ops/test_prometheus_rules.py; the same
#              package's `prometheus` server scrapes freshly started services in
#              tests/ops/test_fresh_start.py, so both binaries must be there
#   pg_ctl     (package postgresql)  the embedded PostgreSQL of the desk and notify (common/postgres.py)
#   chromium   (package chromium)    the desk's web-page tests, driven by Playwright (tests/desk)
# Usage: ensure-tools.sh [promtool] [postgresql] [chromium] ...
# Never fails the build: where something cannot be installed, the tests that need it skip
# with a one-line reason (and `make run` says what is missing).
set -u
have() {
    case "$1" in
        promtool) command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 ;;
        postgresql) ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 ;;
        *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}
package() {
    case "$1" in
        promtool) echo prometheus ;;
        *) echo "$1" ;;
    esac
}
missing=""
for tool in "$@"; do
    have "$tool" || missing="$missing $(package "$tool")"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-tools: no apt-get here; install by hand:$missing" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "ensure-tools: not root and no password-less sudo; missing:$missing" >&2
        exit 0
    fi
fi
echo "ensure-tools: installing$missing" >&2
$SUDO apt-get update -qq >/dev/null 2>&1 || echo "ensure-tools: apt-get update failed (offline?)" >&2
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing \
    >/dev/null 2>&1 || echo "ensure-tools: could not install:$missing" >&2
for tool in "$@"; do
    have "$tool" || echo "ensure-tools: $tool still missing; the tests that need it will skip" >&2
done
exit 0
