#!/bin/sh
# Make `promtool` available for the rule tests (tests/ops/test_prometheus_rules.py).
# Installs Debian's `prometheus` package when promtool is missing and apt-get can run.
# Never fails the build: where it cannot be installed the tests skip with a clear message.
set -u
if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-promtool: no apt-get here; install Prometheus (promtool) by hand to run the rule tests" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "ensure-promtool: not root and no password-less sudo; rule tests will be skipped" >&2
        exit 0
    fi
fi
echo "ensure-promtool: installing the 'prometheus' package for promtool" >&2
$SUDO apt-get update -qq >/dev/null 2>&1 || echo "ensure-promtool: apt-get update failed (offline?)" >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus \
    >/dev/null 2>&1 || echo "ensure-promtool: could not install prometheus; rule tests will be skipped" >&2
command -v promtool >/dev/null 2>&1 && promtool --version 2>&1 | head -1 >&2
exit 0
