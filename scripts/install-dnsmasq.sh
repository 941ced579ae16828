#!/bin/sh
# Install dnsmasq for the DNS CERT discovery tests (tests/dnsmasq.rs start a private instance).
# Idempotent. dnsmasq-base ships only the binary: no system service is enabled or started.
set -eu
if command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ]; then
    echo "dnsmasq already installed: $(/usr/sbin/dnsmasq --version 2>/dev/null | head -n1 || true)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends dnsmasq-base
/usr/sbin/dnsmasq --version | head -n1
