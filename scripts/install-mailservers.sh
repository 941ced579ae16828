#!/usr/bin/env bash
# Installs the mail servers the edge transport's integration tests run against: Postfix (SMTP
# submission, STARTTLS and implicit TLS, SASL through Dovecot) and Dovecot (IMAPS, LMTP delivery,
# SASL auth socket). Idempotent: installs only what is missing, never configures or starts the
# system-wide instances (the tests run their own private instances under a temp dir).
set -euo pipefail

packages=(postfix dovecot-core dovecot-imapd dovecot-lmtpd)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-mailservers: all present (${packages[*]})"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-mailservers: need root to install: ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Without this preseed postfix's postinst asks which kind of mail system this host is.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string localhost" | debconf-set-selections

apt-get update -qq
# policy-rc.d: the packages' postinst must not start the system-wide daemons; the tests run their
# own instances. The file is removed again whatever happens.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-mailservers: installed ${missing[*]}"
