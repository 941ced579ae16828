#!/usr/bin/env bash
# The reliability benchmark table in one command: builds the release benches and binary once, runs
#   - C-CDA extraction      benches/ingest_bench.rs            (CCDA_CORPUS, default tests/fixtures/ccda)
#   - S/MIME seal/open      benches/smime_bench.rs             (SMIME_SECS per case, default 3)
#   - openssl baseline      openssl speed -seconds 3 rsa2048   (RSA-2048 private-key ops/s)
#   - end to end            benches/e2e_bench.rs               (E2E_MESSAGES, default 500)
#   - web console pages     benches/web_bench.rs               (WEB_MESSAGES/WEB_SENT/WEB_DOCUMENTS, one CPU)
#   - idle RSS              release `directd run` against a `directd sandbox`, idle IDLE_SECS (3)
# and prints the machine and ONE markdown table on stdout. Progress and the raw output of every
# step go to stderr and to $LOG_DIR (default $CARGO_TARGET_DIR/bench-logs).
#
# Usage: benches/run.sh            (from anywhere; honours CARGO_TARGET_DIR)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET
LOG_DIR=${LOG_DIR:-$TARGET/bench-logs}
mkdir -p "$LOG_DIR"
CORPUS=${CCDA_CORPUS:-$ROOT/tests/fixtures/ccda}
export CCDA_CORPUS=$CORPUS
IDLE_SECS=${IDLE_SECS:-3}

say() { echo "run.sh: $*" >&2; }
die() { say "$*"; exit 1; }
# The value after "NAME" on a "RESULT NAME VALUE ..." line of a log.
result() { awk -v k="$2" '$1 == "RESULT" && $2 == k { print $3 }' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

say "building release benches and binary (logs in $LOG_DIR)"
# Built once; the bench executables are then run directly so no step can trigger a rebuild.
cargo build --release --bin directd >"$LOG_DIR/build.log" 2>&1 \
  && cargo bench --no-run --message-format=json --bench ingest_bench --bench smime_bench --bench e2e_bench --bench web_bench \
    2>>"$LOG_DIR/build.log" >"$LOG_DIR/build.json" \
  || { tail -30 "$LOG_DIR/build.log" >&2; die "build failed"; }
BIN=$TARGET/release/directd
# The executable cargo built for bench NAME, from its JSON build messages.
bench_exe() {
  grep -F "\"name\":\"$1\"" "$LOG_DIR/build.json" | grep -F '"kind":["bench"]' \
    | grep -oE '"executable":"[^"]+"' | tail -1 | cut -d'"' -f4
}
run_bench() {
  local exe
  exe=$(bench_exe "$1")
  [ -x "$exe" ] || die "no executable for bench $1 in $LOG_DIR/build.json"
  "$exe" --bench
}

say "ingest_bench on $CORPUS"
run_bench ingest_bench >"$LOG_DIR/ingest.log" 2>&1 || { cat "$LOG_DIR/ingest.log" >&2; die "ingest_bench failed"; }
ingest_line=$(grep -E 'passes in .* MB/s' "$LOG_DIR/ingest.log") || die "no result in ingest.log"
ingest_mbs=$(sed -E 's/.*: ([0-9.]+) MB\/s.*/\1/' <<<"$ingest_line")
ingest_docs=$(sed -E 's/.*, ([0-9.]+) documents\/s.*/\1/' <<<"$ingest_line")
corpus_line=$(grep -E '^corpus ' "$LOG_DIR/ingest.log" | sed -E 's/^corpus [^:]*: //')

say "smime_bench"
run_bench smime_bench >"$LOG_DIR/smime.log" 2>&1 || { cat "$LOG_DIR/smime.log" >&2; die "smime_bench failed"; }
seal10=$(result "$LOG_DIR/smime.log" smime_seal_10kb)
open10=$(result "$LOG_DIR/smime.log" smime_open_10kb)
seal1m=$(result "$LOG_DIR/smime.log" smime_seal_1mb)
open1m=$(result "$LOG_DIR/smime.log" smime_open_1mb)
[ -n "$seal10" ] && [ -n "$open1m" ] || die "no results in smime.log"

say "openssl speed -seconds 3 rsa2048"
openssl speed -seconds 3 rsa2048 >"$LOG_DIR/openssl-speed.log" 2>&1 || die "openssl speed failed"
# "rsa 2048 bits 0.000631s 0.000018s   1584.8  54794.0": sign/s is the 6th field.
rsa_sign=$(awk '$1 == "rsa" && $2 == "2048" && $3 == "bits" { print $6 }' "$LOG_DIR/openssl-speed.log")
[ -n "$rsa_sign" ] || die "cannot parse openssl speed output"

say "e2e_bench (${E2E_MESSAGES:-500} messages)"
run_bench e2e_bench >"$LOG_DIR/e2e.log" 2>&1 || { tail -20 "$LOG_DIR/e2e.log" >&2; die "e2e_bench failed"; }
e2e=$(result "$LOG_DIR/e2e.log" e2e_msgs_per_s)
e2e_n=$(awk '$1 == "RESULT" && $2 == "e2e_msgs_per_s" { gsub(/\(/, "", $4); print $4 }' "$LOG_DIR/e2e.log")
[ -n "$e2e" ] || die "no result in e2e.log"

say "web_bench (pinned to one CPU)"
exe=$(bench_exe web_bench)
[ -x "$exe" ] || die "no executable for bench web_bench in $LOG_DIR/build.json"
taskset -c 0 "$exe" --bench >"$LOG_DIR/web.log" 2>&1 || { tail -20 "$LOG_DIR/web.log" >&2; die "web_bench failed"; }
for page in inbox sent message document; do
  declare "web_$page=$(result "$LOG_DIR/web.log" "web_${page}_p95_ms")"
done
[ -n "$web_inbox" ] && [ -n "$web_document" ] || die "no results in web.log"

say "idle RSS of the release daemon"
work=$(mktemp -d)
spid=""
dpid=""
cleanup() {
  [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null || true
  [ -n "$spid" ] && kill -INT "$spid" 2>/dev/null && wait "$spid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$BIN" sandbox --listen 127.0.0.1:0 --cert-dir "$work/certs" \
  --account idle@sandbox.local:pw >"$work/sandbox.out" 2>"$LOG_DIR/idle-sandbox.log" &
spid=$!
addr=""
for _ in $(seq 100); do
  addr=$(sed -nE 's/^sandbox HISP listening on ([0-9.]+:[0-9]+).*/\1/p' "$work/sandbox.out")
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || die "sandbox did not start: $(cat "$LOG_DIR/idle-sandbox.log")"
# Production timings (config/directd.example.toml defaults); only the HISP and paths differ.
cat >"$work/directd.toml" <<EOF
[store]
path = "$work/idle.db"

[hisp]
host = "127.0.0.1"
port = ${addr##*:}
ca_file = "$work/certs/sandbox-ca.pem"

[[accounts]]
address = "idle@sandbox.local"
password = "pw"
EOF
chmod 600 "$work/directd.toml"
RUST_LOG=debug "$BIN" --config "$work/directd.toml" run 2>"$LOG_DIR/idle-daemon.log" &
dpid=$!
sleep "$IDLE_SECS"
grep -q 'poll complete' "$LOG_DIR/idle-daemon.log" || die "daemon did not complete a poll: $(tail -5 "$LOG_DIR/idle-daemon.log")"
rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$dpid/status")
threads=$(awk '/^Threads:/ { print $2 }' "/proc/$dpid/status")
cleanup
trap - EXIT
idle_mib=$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "Machine: $(nproc) CPUs ($cpu), Linux $(uname -r), $(rustc --version), $(openssl version | cut -d' ' -f1-2); $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| measurement | result |"
echo "|---|---|"
echo "| C-CDA extraction (\`ingest_bench\`, $corpus_line) | $ingest_mbs MB/s, $ingest_docs documents/s |"
echo "| S/MIME seal, 10 KB, RSA-2048 (sign + encrypt, 1 thread) | $seal10 msgs/s ($(ratio "$seal10" "$rsa_sign")× openssl rsa2048 sign/s) |"
echo "| S/MIME open, 10 KB (decrypt + verify + chain) | $open10 msgs/s ($(ratio "$open10" "$rsa_sign")×) |"
echo "| S/MIME seal, 1 MB | $seal1m msgs/s ($(ratio "$seal1m" "$rsa_sign")×) |"
echo "| S/MIME open, 1 MB | $open1m msgs/s ($(ratio "$open1m" "$rsa_sign")×) |"
echo "| \`openssl speed -seconds 3 rsa2048\`, private-key (sign) ops/s | $rsa_sign |"
echo "| End to end via sandbox: A → B, final delivery, stored + ingested + dispatched (\`e2e_bench\`, $e2e_n messages) | $e2e msgs/s |"
echo "| Web console p95, one CPU, 80,000 received + 20,000 sent messages, 20,000 documents (\`web_bench\`): inbox / sent / message / document | $web_inbox / $web_sent / $web_message / $web_document ms |"
echo "| Daemon idle RSS (release \`directd run\`, 1 account, ${IDLE_SECS} s idle, $threads threads) | $idle_mib MiB |"
