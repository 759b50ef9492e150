#!/usr/bin/env bash
# Installs what the tests need besides the Rust toolchain, idempotently (a second run only checks):
#   - promtool and prometheus, from Debian's `prometheus` package (rule checks and unit tests, the
#     end-to-end scrape by a real Prometheus);
#   - a Python virtualenv at <repo>/.venv with boto3 (a second SWF client against swf-local) and
#     moto[server] (a third-party SWF implementation to compare with).
# Needs root (or sudo) only when the Debian package is missing. Never starts a daemon: the package's
# service is stopped and disabled if the package manager started it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "install-test-deps: need root to run: $*" >&2
        return 1
    fi
}

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    echo "prometheus and promtool already installed: $(promtool --version 2>&1 | head -n1)"
else
    echo "installing Debian's prometheus package (prometheus, promtool)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends prometheus
    # The package enables a system-wide prometheus on :9090; tests start their own on loopback
    # ports, so a packaged daemon would only compete for the port and the CPU.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
        as_root systemctl disable --now prometheus || true
    fi
fi

if ! command -v python3 >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q python3 python3-venv
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv"
    if ! python3 -m venv "$venv"; then
        # Debian splits venv support (ensurepip) into its own package.
        export DEBIAN_FRONTEND=noninteractive
        as_root apt-get update -q
        as_root apt-get install -y -q python3-venv
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
fi

if "$venv/bin/python" -c 'import boto3, moto.server' >/dev/null 2>&1 && [ -x "$venv/bin/moto_server" ]; then
    echo "boto3 and moto[server] already installed in $venv"
else
    echo "installing boto3 and moto[server] into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check boto3 'moto[server]'
fi

echo "test dependencies ready: $(command -v promtool), $venv/bin/moto_server"
