#!/usr/bin/env bash
# Installs the built package on this (throwaway CI) machine and checks what it installed:
# the user, the file modes, the unit (systemd-analyze verify), and the unit's sandboxing score.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls -t target/debian/directd_*.deb | head -1)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$deb" >/dev/null
fail() { echo "package check FAILED: $*" >&2; exit 1; }
getent passwd directd >/dev/null || fail "no directd user"
[ "$(stat -c %a /etc/directd/directd.toml)" = 640 ] || fail "/etc/directd/directd.toml is not 0640"
[ "$(stat -c %G /etc/directd/directd.toml)" = directd ] || fail "/etc/directd/directd.toml is not group directd"
/usr/bin/directd --version
man -w directd >/dev/null 2>&1 || [ -f /usr/share/man/man1/directd.1.gz ] || [ -f /usr/share/man/man1/directd.1 ] || fail "no man page"
# Every page the main page refers to (directd-send(1), ...) is installed too.
for page in $(zcat -f /usr/share/man/man1/directd.1* | grep -o 'directd\\-[a-z\-]*(1)' | sed 's/\\-/-/g; s/(1)//' | sort -u); do
  ls /usr/share/man/man1/"$page".1* >/dev/null 2>&1 || fail "directd.1 refers to $page(1), which is not installed"
done
for unit in directd.service directd-web.service; do
  systemd-analyze verify "/lib/systemd/system/$unit" || fail "systemd-analyze verify $unit"
  score=$(systemd-analyze security --offline=yes "/lib/systemd/system/$unit" 2>/dev/null | sed -n "s/.*Overall exposure level for $unit: \([0-9.]*\).*/\1/p")
  echo "systemd-analyze security $unit: exposure $score"
  awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' || fail "$unit: exposure $score is above 2.0"
done
# As a user who may not read /etc/directd (0750 root:directd), the README's first steps work: the
# demo, then the store commands on its store with --db, which need no configuration or secrets.
work=$(mktemp -d)
chown nobody:nogroup "$work"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$work" "$@"; }
as_nobody /usr/bin/directd demo --dir "$work/demo" >/dev/null || fail "directd demo as a non-root user"
as_nobody /usr/bin/directd --db "$work/demo/demo.db" messages | grep -q "Demo referral" \
  || fail "directd --db DIR/demo.db messages as a non-root user"
# (captured first: the command fails on purpose, and pipefail would count that against grep)
out=$(as_nobody /usr/bin/directd --config /etc/directd/directd.toml messages 2>&1 || true)
grep -q "permission denied" <<<"$out" || fail "an unreadable config is not reported as permission denied: $out"
rm -rf "$work"
# Leave the machine as it was: later test runs here must not find an installed /etc/directd.
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq directd >/dev/null
rm -rf /etc/directd
echo "package check passed"
