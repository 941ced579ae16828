#!/usr/bin/env bash
# Install OpenLDAP's slapd for the LDAP certificate discovery tests (tests/smime_ldap.rs start a
# private instance on a loopback port with a generated configuration). Idempotent. The system
# service is never started: policy-rc.d refuses it during the install, debconf is told to skip
# configuring a system directory, and a slapd the package may still have started is stopped.
set -euo pipefail

packages=(slapd)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-slapd: already installed: $(/usr/sbin/slapd -VV 2>&1 | head -n1 || true)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# No system directory: the postinst would otherwise create one for the host's domain.
echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections

policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

# The tests need the port range and the CPU to themselves: stop a system slapd if one started
# anyway (its pid file is the package's, so only that process is touched).
if [ -f /run/slapd/slapd.pid ]; then
    $SUDO kill "$(cat /run/slapd/slapd.pid)" 2>/dev/null || true
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now slapd >/dev/null 2>&1 || true
fi
/usr/sbin/slapd -VV 2>&1 | head -n1 || true
echo "install-slapd: installed ${missing[*]}"
