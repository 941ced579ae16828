#!/usr/bin/env bash
# The reliability benchmark table in one command: builds the release benches and binary once, runs
#   - C-CDA extraction      benches/ingest_bench.rs            (CCDA_CORPUS, default tests/fixtures/ccda)
#   - C-CDA bulk ingest     release `directd ingest DIR`, fresh store on disk, against BlueButton.js
#                           and quick-xml's bare tokenizer on the same files (INGEST_CORPUS, else
#                           BlueButton.js's samples + INGEST_SYNTH synthesized documents, default 200)
#   - S/MIME seal/open      benches/smime_bench.rs             (SMIME_SECS per case, default 3)
#   - openssl baseline      openssl speed -seconds 3 rsa2048   (RSA-2048 private-key ops/s)
#   - end to end            benches/e2e_bench.rs               (E2E_MESSAGES, default 500)
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
  && cargo bench --no-run --message-format=json --bench ingest_bench --bench smime_bench --bench e2e_bench \
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

# --- C-CDA bulk ingest (issue 18): `directd ingest` vs BlueButton.js vs the bare tokenizer ------
# All three on the same *.xml files, one core each (taskset), in this run. Ours is the command as
# users run it: the release binary, a fresh store on disk, timed from outside (process start to
# exit, store commits included); median of INGEST_RUNS (default 3).
say "C-CDA bulk ingest: corpus"
iwork=$TARGET/bench-ingest
rm -rf "$iwork" && mkdir -p "$iwork/corpus"
IPIN=()
command -v taskset >/dev/null 2>&1 && IPIN=(taskset -c "${BENCH_CPU:-0}")
bb_prefix=${BLUEBUTTON_PREFIX:-$iwork/npm}
bb_ok=0
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  if [ -f "$bb_prefix/node_modules/bluebutton/package.json" ] \
    || npm install --no-save --no-audit --no-fund --prefix "$bb_prefix" bluebutton >"$LOG_DIR/npm.log" 2>&1; then
    bb_ok=1
  fi
fi
if [ -n "${INGEST_CORPUS:-}" ]; then
  find -L "$INGEST_CORPUS" -maxdepth 1 -type f -iname '*.xml' -exec cp -t "$iwork/corpus" {} +
  icorpus_desc="$(basename "$INGEST_CORPUS")"
else
  [ "$bb_ok" = 1 ] || die "C-CDA bulk ingest needs node + npm (BlueButton.js), or INGEST_CORPUS"
  samples=$bb_prefix/node_modules/bluebutton/_site/bower_components/sample_ccdas
  find -L "$samples" -type f -iname '*.xml' -print0 | while IFS= read -r -d '' f; do
    rel=${f#"$samples"/}; rel=${rel//\//__}; cp "$f" "$iwork/corpus/bb__${rel// /_}"
  done
  node benches/ccda_synthesize.js "$iwork/synth" "${INGEST_SYNTH:-200}" tests/fixtures/ccda >&2
  cp "$iwork"/synth/*.xml "$iwork/corpus/"
  icorpus_desc="BlueButton.js samples + ${INGEST_SYNTH:-200} synthesized"
fi
ifiles=$(find "$iwork/corpus" -maxdepth 1 -name '*.xml' | wc -l)
ibytes=$(find "$iwork/corpus" -maxdepth 1 -name '*.xml' -printf '%s\n' | awk '{ s += $1 } END { print s }')
[ "$ifiles" -gt 0 ] || die "empty C-CDA corpus"
imb=$(awk -v b="$ibytes" 'BEGIN { printf "%.1f", b / 1e6 }')

say "C-CDA bulk ingest: directd ingest on $ifiles files ($imb MB)"
irates=()
for run in $(seq "${INGEST_RUNS:-3}"); do
  rm -f "$iwork"/store.db*
  t0=$(date +%s%N)
  "${IPIN[@]}" "$BIN" --db "$iwork/store.db" ingest --json "$iwork/corpus" >"$LOG_DIR/ingest-cmd-$run.json" 2>"$LOG_DIR/ingest-cmd-$run.err" \
    || [ -s "$LOG_DIR/ingest-cmd-$run.json" ] || die "directd ingest failed: $(tail -3 "$LOG_DIR/ingest-cmd-$run.err")"
  t1=$(date +%s%N)
  irates+=("$(awk -v b="$ibytes" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", b / (ns / 1e9) / 1e6 }')")
done
ingest_cmd_mbs=$(printf '%s\n' "${irates[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
ingest_cmd_docs=$(awk -F'"documents":' 'NF > 1 { split($2, a, /[,}]/); print a[1] }' "$LOG_DIR/ingest-cmd-1.json")

say "C-CDA bulk ingest: quick-xml tokenizer alone"
cargo bench --no-run --message-format=json --bench xml_tokenizer >"$LOG_DIR/build-tokenizer.json" 2>>"$LOG_DIR/build.log" \
  || die "building xml_tokenizer failed"
tok_exe=$(grep -F '"name":"xml_tokenizer"' "$LOG_DIR/build-tokenizer.json" | grep -F '"kind":["bench"]' \
  | grep -oE '"executable":"[^"]+"' | tail -1 | cut -d'"' -f4)
CCDA_CORPUS=$iwork/corpus ITERATIONS=${TOKENIZER_ITERATIONS:-5} "${IPIN[@]}" "$tok_exe" >"$LOG_DIR/tokenizer.log" 2>&1 \
  || die "xml_tokenizer failed: $(tail -3 "$LOG_DIR/tokenizer.log")"
tokenizer_mbs=$(result "$LOG_DIR/tokenizer.log" xml_tokenizer_mbs)

bb_mbs=""
if [ "$bb_ok" = 1 ]; then
  say "C-CDA bulk ingest: BlueButton.js (${BB_ITERATIONS:-1} pass)"
  BLUEBUTTON_PREFIX=$bb_prefix "${IPIN[@]}" node --max-old-space-size=4096 benches/bluebutton_run.js \
    "$iwork/corpus" "${BB_ITERATIONS:-1}" >"$iwork/bb.json" 2>"$LOG_DIR/bluebutton.err" || die "BlueButton.js failed"
  bb_mbs=$(node -e 'const o = JSON.parse(require("fs").readFileSync(process.argv[1]));
    console.log((o.bytes * o.iterations / o.seconds / 1e6).toFixed(1), o.version, o.failures)' "$iwork/bb.json")
  read -r bb_mbs bb_version bb_failures <<<"$bb_mbs"
fi
rm -rf "$iwork/corpus" "$iwork/synth" "$iwork"/store.db*
# --- end C-CDA bulk ingest ---------------------------------------------------------------------

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
# --- C-CDA bulk ingest rows (issue 18) ---
echo "| C-CDA bulk ingest: release \`directd ingest DIR\`, fresh store on disk, 1 core ($ifiles files, $imb MB: $icorpus_desc; $ingest_cmd_docs documents; median of ${INGEST_RUNS:-3}: ${irates[*]}) | $ingest_cmd_mbs MB/s |"
if [ -n "$bb_mbs" ]; then
  echo "| BlueButton.js $bb_version on the same files, 1 core ($bb_failures not extracted) | $bb_mbs MB/s (ours $(ratio "$ingest_cmd_mbs" "$bb_mbs")×) |"
else
  echo "| BlueButton.js on the same files | not run (node/npm unavailable) |"
fi
echo "| quick-xml tokenizer alone on the same files, 1 core (the limit) | $tokenizer_mbs MB/s (ours $(ratio "$ingest_cmd_mbs" "$tokenizer_mbs")× of it) |"
# --- end C-CDA bulk ingest rows ---
echo "| S/MIME seal, 10 KB, RSA-2048 (sign + encrypt, 1 thread) | $seal10 msgs/s ($(ratio "$seal10" "$rsa_sign")× openssl rsa2048 sign/s) |"
echo "| S/MIME open, 10 KB (decrypt + verify + chain) | $open10 msgs/s ($(ratio "$open10" "$rsa_sign")×) |"
echo "| S/MIME seal, 1 MB | $seal1m msgs/s ($(ratio "$seal1m" "$rsa_sign")×) |"
echo "| S/MIME open, 1 MB | $open1m msgs/s ($(ratio "$open1m" "$rsa_sign")×) |"
echo "| \`openssl speed -seconds 3 rsa2048\`, private-key (sign) ops/s | $rsa_sign |"
echo "| End to end via sandbox: A → B, final delivery, stored + ingested + dispatched (\`e2e_bench\`, $e2e_n messages) | $e2e msgs/s |"
echo "| Daemon idle RSS (release \`directd run\`, 1 account, ${IDLE_SECS} s idle, $threads threads) | $idle_mib MiB |"
