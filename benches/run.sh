#!/usr/bin/env bash
# The reliability benchmark table in one command: builds the release benches and binary once, runs
#   - C-CDA extraction      benches/ingest_bench.rs            (CCDA_CORPUS, default tests/fixtures/ccda)
#   - C-CDA bulk ingest     release `directd ingest DIR`, fresh store on disk, against BlueButton.js
#                           and quick-xml's bare tokenizer on the same files (INGEST_CORPUS, else
#                           BlueButton.js's samples + INGEST_SYNTH synthesized documents, default 200;
#                           then each of those two halves alone, both tools)
#   - S/MIME seal/open      benches/smime_bench.rs             (SMIME_SECS per case, default 3, alternating
#                           with as long of RSA-2048 signing in the same process)
#   - openssl baseline      openssl speed -seconds 3 rsa2048   (RSA-2048 private-key ops/s)
#   - S/MIME limit          openssl speed -evp sha256 / aes-128-cbc (both ways), openssl base64
#                           (both ways), RSA-2048 private + public: what OpenSSL needs per message
#   - S/MIME memory         peak RSS sealing (in the bench) and opening (`directd inspect`, under
#                           /usr/bin/time) a RSS_MB (20) MB message
#   - end to end            benches/e2e_bench.rs               (E2E_MESSAGES, default 500)
#   - web console pages     benches/web_bench.rs               (WEB_MESSAGES/WEB_SENT/WEB_DOCUMENTS, one CPU)
#   - idle RSS              release `directd run` against a `directd sandbox`, idle IDLE_SECS (3)
#   - daemon large message  peak RSS of release `directd run` receiving a DAEMON_RSS_MB (15) MiB
#                           attachment that a second daemon sends it through the sandbox
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
# The address a `directd sandbox` started with its stdout in OUT announces (waits up to 10 s);
# dies with its LOG when it does not.
sandbox_addr() {
  local addr=""
  for _ in $(seq 100); do
    addr=$(sed -nE 's/^sandbox HISP listening on ([0-9.]+:[0-9]+).*/\1/p' "$1")
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || die "sandbox did not start: $(cat "$2")"
  echo "$addr"
}
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

# MB/s of `directd ingest DIR` on a fresh store: the median of INGEST_RUNS runs is left in $irate,
# every run's rate in $irates, the JSON of the first run in $LOG_DIR/ingest-cmd-$2-1.json.
ingest_rate() {
  local dir=$1 tag=$2 bytes run t0 t1
  bytes=$(find "$dir" -maxdepth 1 -name '*.xml' -printf '%s\n' | awk '{ s += $1 } END { print s }')
  irates=()
  for run in $(seq "${INGEST_RUNS:-3}"); do
    rm -f "$iwork"/store.db*
    t0=$(date +%s%N)
    "${IPIN[@]}" "$BIN" --db "$iwork/store.db" ingest --json "$dir" >"$LOG_DIR/ingest-cmd-$tag-$run.json" 2>"$LOG_DIR/ingest-cmd-$tag-$run.err" \
      || [ -s "$LOG_DIR/ingest-cmd-$tag-$run.json" ] || die "directd ingest failed: $(tail -3 "$LOG_DIR/ingest-cmd-$tag-$run.err")"
    t1=$(date +%s%N)
    irates+=("$(awk -v b="$bytes" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", b / (ns / 1e9) / 1e6 }')")
  done
  irate=$(printf '%s\n' "${irates[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
}

# The two halves of the default corpus, each measured on its own as well: BlueButton.js is much
# slower on the large synthesized documents than on its own samples, so the whole corpus's ratio
# says little about documents like its samples (or the public documents issue 18 measured).
subsets=()
if [ -z "${INGEST_CORPUS:-}" ]; then
  mkdir -p "$iwork/sub-samples" "$iwork/sub-synth"
  # Hard links: `directd ingest` does not follow symbolic links in a folder.
  find "$iwork/corpus" -maxdepth 1 -name 'bb__*.xml' -exec cp -l -t "$iwork/sub-samples" {} +
  find "$iwork/synth" -maxdepth 1 -name '*.xml' -exec cp -l -t "$iwork/sub-synth" {} +
  subsets=(samples synth)
fi

say "C-CDA bulk ingest: directd ingest on $ifiles files ($imb MB)"
ingest_rate "$iwork/corpus" all
ingest_cmd_mbs=$irate
all_rates=("${irates[@]}")
ingest_cmd_docs=$(awk -F'"documents":' 'NF > 1 { split($2, a, /[,}]/); print a[1] }' "$LOG_DIR/ingest-cmd-all-1.json")
declare -A sub_mbs sub_files sub_mb sub_bb
for sub in "${subsets[@]}"; do
  say "C-CDA bulk ingest: directd ingest on the $sub half"
  ingest_rate "$iwork/sub-$sub" "$sub"
  sub_mbs[$sub]=$irate
  sub_files[$sub]=$(find "$iwork/sub-$sub" -maxdepth 1 -name '*.xml' | wc -l)
  sub_mb[$sub]=$(find "$iwork/sub-$sub" -maxdepth 1 -name '*.xml' -printf '%s\n' | awk '{ s += $1 } END { printf "%.1f", s / 1e6 }')
done

say "C-CDA bulk ingest: quick-xml tokenizer alone"
cargo bench --no-run --message-format=json --bench xml_tokenizer >"$LOG_DIR/build-tokenizer.json" 2>>"$LOG_DIR/build.log" \
  || die "building xml_tokenizer failed"
tok_exe=$(grep -F '"name":"xml_tokenizer"' "$LOG_DIR/build-tokenizer.json" | grep -F '"kind":["bench"]' \
  | grep -oE '"executable":"[^"]+"' | tail -1 | cut -d'"' -f4)
CCDA_CORPUS=$iwork/corpus ITERATIONS=${TOKENIZER_ITERATIONS:-5} "${IPIN[@]}" "$tok_exe" >"$LOG_DIR/tokenizer.log" 2>&1 \
  || die "xml_tokenizer failed: $(tail -3 "$LOG_DIR/tokenizer.log")"
tokenizer_mbs=$(result "$LOG_DIR/tokenizer.log" xml_tokenizer_mbs)

bb_mbs=""
bb_mb_s() {
  node -e 'const o = JSON.parse(require("fs").readFileSync(process.argv[1]));
    console.log((o.bytes * o.iterations / o.seconds / 1e6).toFixed(1), o.version, o.failures, o.bytes * o.iterations, o.seconds)' "$1"
}
if [ "$bb_ok" = 1 ]; then
  # Run on each half when there are halves (the whole corpus's figure is their sum), else on all.
  bb_dirs=("${subsets[@]}")
  [ ${#bb_dirs[@]} -gt 0 ] || bb_dirs=(all)
  bb_bytes=0 bb_secs=0 bb_failures=0
  for sub in "${bb_dirs[@]}"; do
    dir=$iwork/sub-$sub
    [ "$sub" = all ] && dir=$iwork/corpus
    say "C-CDA bulk ingest: BlueButton.js on $sub (${BB_ITERATIONS:-1} pass)"
    BLUEBUTTON_PREFIX=$bb_prefix "${IPIN[@]}" node --max-old-space-size=4096 benches/bluebutton_run.js \
      "$dir" "${BB_ITERATIONS:-1}" >"$iwork/bb-$sub.json" 2>"$LOG_DIR/bluebutton-$sub.err" || die "BlueButton.js failed"
    read -r mbs bb_version failures bytes secs <<<"$(bb_mb_s "$iwork/bb-$sub.json")"
    sub_bb[$sub]=$mbs
    bb_bytes=$(awk -v a="$bb_bytes" -v b="$bytes" 'BEGIN { print a + b }')
    bb_secs=$(awk -v a="$bb_secs" -v b="$secs" 'BEGIN { print a + b }')
    bb_failures=$((bb_failures + failures))
  done
  bb_mbs=$(awk -v b="$bb_bytes" -v s="$bb_secs" 'BEGIN { printf "%.1f", b / s / 1e6 }')
fi
rm -rf "$iwork/corpus" "$iwork/synth" "$iwork"/sub-* "$iwork"/store.db*
# --- end C-CDA bulk ingest ---------------------------------------------------------------------

say "smime_bench"
run_bench smime_bench >"$LOG_DIR/smime.log" 2>&1 || { cat "$LOG_DIR/smime.log" >&2; die "smime_bench failed"; }
seal10=$(result "$LOG_DIR/smime.log" smime_seal_10kb)
open10=$(result "$LOG_DIR/smime.log" smime_open_10kb)
# RSA-2048 signs/s of the same OpenSSL in the bench's own process, in slices alternating with
# seal and with open: the ratio to them is not moved by the machine's speed between steps.
seal10_sign=$(result "$LOG_DIR/smime.log" smime_seal_10kb_sign)
open10_sign=$(result "$LOG_DIR/smime.log" smime_open_10kb_sign)
seal1m=$(result "$LOG_DIR/smime.log" smime_seal_1mb)
open1m=$(result "$LOG_DIR/smime.log" smime_open_1mb)
[ -n "$seal10" ] && [ -n "$open1m" ] && [ -n "$seal10_sign" ] && [ -n "$open10_sign" ] || die "no results in smime.log"

say "openssl speed -seconds 3 rsa2048"
openssl speed -seconds 3 rsa2048 >"$LOG_DIR/openssl-speed.log" 2>&1 || die "openssl speed failed"
# "rsa 2048 bits 0.000631s 0.000018s   1584.8  54794.0": sign/s is the 6th field, verify/s the 7th.
rsa_sign=$(awk '$1 == "rsa" && $2 == "2048" && $3 == "bits" { print $6 }' "$LOG_DIR/openssl-speed.log")
rsa_verify=$(awk '$1 == "rsa" && $2 == "2048" && $3 == "bits" { print $7 }' "$LOG_DIR/openssl-speed.log")
[ -n "$rsa_sign" ] && [ -n "$rsa_verify" ] || die "cannot parse openssl speed output"

# --- S/MIME limit (smime-perf) ---------------------------------------------------------------
# What OpenSSL needs for the same work as one message: SHA-256 and AES-128-CBC over the inner
# message, base64 over the sealed size, one RSA-2048 private and one public operation. Seal
# encrypts and encodes; open decodes and decrypts (CBC decryption is the faster direction).
say "openssl speed -evp sha256 / aes-128-cbc, openssl base64 (the S/MIME limit)"
# The 16384-byte column (the last), in 1000s of bytes per second: "sha256 ... 1551354.75k".
evp_speed() {
  openssl speed -seconds 3 "$@" 2>/dev/null | tee -a "$LOG_DIR/openssl-speed.log" \
    | awk 'NF >= 7 && $NF ~ /k$/ { v = $NF } END { sub(/k$/, "", v); print v * 1000 }'
}
sha_bps=$(evp_speed -evp sha256)
aes_enc_bps=$(evp_speed -evp aes-128-cbc)
aes_dec_bps=$(evp_speed -decrypt -evp aes-128-cbc)
b64_in=$(mktemp)
b64_out=$(mktemp)
head -c $((64 << 20)) /dev/urandom >"$b64_in"
# Bytes of base64 text per second, encoding and decoding (the text is the sealed message's size).
b64_rate() {
  local t0 t1
  t0=$(date +%s%N)
  openssl base64 "$@" >/dev/null
  t1=$(date +%s%N)
  awk -v n="$(stat -c %s "$b64_out")" -v t=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (t / 1e9) }'
}
openssl base64 -in "$b64_in" -out "$b64_out"
b64_enc_bps=$(b64_rate -in "$b64_in")
b64_dec_bps=$(b64_rate -d -in "$b64_out")
rm -f "$b64_in" "$b64_out"
for v in "$sha_bps" "$aes_enc_bps" "$aes_dec_bps" "$b64_enc_bps" "$b64_dec_bps"; do
  awk -v v="$v" 'BEGIN { exit !(v > 0) }' || die "cannot measure the S/MIME limit (see openssl-speed.log)"
done
# Messages per second OpenSSL alone could seal or open: INNER and SEALED sizes in bytes.
limit_seal() {
  awk -v i="$1" -v s="$2" -v h="$sha_bps" -v a="$aes_enc_bps" -v b="$b64_enc_bps" \
    -v pr="$rsa_sign" -v pu="$rsa_verify" 'BEGIN { printf "%.1f", 1 / (i/h + i/a + s/b + 1/pr + 1/pu) }'
}
limit_open() {
  awk -v i="$1" -v s="$2" -v h="$sha_bps" -v a="$aes_dec_bps" -v b="$b64_dec_bps" \
    -v pr="$rsa_sign" -v pu="$rsa_verify" 'BEGIN { printf "%.1f", 1 / (i/h + i/a + s/b + 1/pr + 1/pu) }'
}
inner10=$(result "$LOG_DIR/smime.log" smime_inner_10kb)
sealed10=$(result "$LOG_DIR/smime.log" smime_sealed_10kb)
inner1m=$(result "$LOG_DIR/smime.log" smime_inner_1mb)
sealed1m=$(result "$LOG_DIR/smime.log" smime_sealed_1mb)
lim_seal10=$(limit_seal "$inner10" "$sealed10")
lim_open10=$(limit_open "$inner10" "$sealed10")
lim_seal1m=$(limit_seal "$inner1m" "$sealed1m")
lim_open1m=$(limit_open "$inner1m" "$sealed1m")
mbps() { awk -v v="$1" 'BEGIN { printf "%.0f", v / 1e6 }'; }

# Peak memory for one large message, each in its own process.
RSS_MB=${RSS_MB:-20}
say "S/MIME memory: seal and open (directd inspect) of a $RSS_MB MB message"
smime_exe=$(bench_exe smime_bench)
rss_dir=$(mktemp -d)
"$smime_exe" --rss-seal "$RSS_MB" >"$LOG_DIR/rss-seal.log" 2>&1 || die "rss-seal failed: $(cat "$LOG_DIR/rss-seal.log")"
kv() { sed -nE "s/.* $2=([0-9]+).*/\1/p" "$1"; }
seal_inner=$(kv "$LOG_DIR/rss-seal.log" inner)
seal_before_kb=$(kv "$LOG_DIR/rss-seal.log" hwm_before_kb)
seal_peak_kb=$(kv "$LOG_DIR/rss-seal.log" hwm_kb)
# inspect's peak for an empty message is the binary's own; the big message's is compared to it.
inspect_peak() {
  mkdir -p "$rss_dir/$1"
  "$smime_exe" --write-case "$rss_dir/$1" "$1" >"$rss_dir/$1/case" 2>&1 || die "write-case failed"
  /usr/bin/time -f %M -o "$rss_dir/$1/time" "$BIN" --config "$rss_dir/$1/directd.toml" inspect \
    "$rss_dir/$1/msg.eml" --key "$rss_dir/$1/bob.key" --cert "$rss_dir/$1/bob.crt" \
    --anchor "$rss_dir/$1/root.pem" >"$rss_dir/$1/out" 2>"$LOG_DIR/rss-inspect-$1.log" \
    || die "inspect of the $1 MB message failed: $(cat "$rss_dir/$1/out")"
  grep -q '^ACCEPTED' "$rss_dir/$1/out" || die "inspect did not accept the $1 MB message"
  tail -1 "$rss_dir/$1/time"
}
open_base_kb=$(inspect_peak 0)
open_peak_kb=$(inspect_peak "$RSS_MB")
open_inner=$(kv "$rss_dir/$RSS_MB/case" inner)
open_sealed=$(kv "$rss_dir/$RSS_MB/case" sealed)
rm -rf "$rss_dir"
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# Peak over the message's size: the whole process, and what the message added.
per_size() { awk -v k="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.2f× / %.2f×", k * 1024 / n, (k - b) * 1024 / n }'; }
# --- end S/MIME limit (smime-perf) ------------------------------------------------------------

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
addr=$(sandbox_addr "$work/sandbox.out" "$LOG_DIR/idle-sandbox.log") || exit 1
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

# --- Daemon receiving a large message (issue 18 item 3) ----------------------------------------
# Two release daemons against one sandbox: A sends B one message with a DAEMON_RSS_MB (15) MiB
# attachment (about 20 MB once base64-encoded: the usual HISP ceiling); B's peak RSS (VmHWM) is
# read once the message is stored and its attachment handled by ingestion. The 1 s poll
# interval only shortens the wait; the receive path is the production one.
DAEMON_RSS_MB=${DAEMON_RSS_MB:-15}
say "daemon peak RSS receiving a $DAEMON_RSS_MB MiB attachment"
work=$(mktemp -d)
spid=""
apid=""
bpid=""
rcleanup() {
  for p in "$apid" "$bpid"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  [ -n "$spid" ] && kill -INT "$spid" 2>/dev/null && wait "$spid" 2>/dev/null || true
  rm -rf "$work"
}
trap rcleanup EXIT
head -c $((DAEMON_RSS_MB << 20)) /dev/urandom >"$work/big.bin"
"$BIN" sandbox --listen 127.0.0.1:0 --cert-dir "$work/certs" --account a@sandbox.local:pw \
  --account b@sandbox.local:pw >"$work/sandbox.out" 2>"$LOG_DIR/rss-daemon-sandbox.log" &
spid=$!
addr=$(sandbox_addr "$work/sandbox.out" "$LOG_DIR/rss-daemon-sandbox.log") || exit 1
for who in a b; do
  cat >"$work/$who.toml" <<EOF
[store]
path = "$work/$who.db"

[daemon]
poll_interval_secs = 1

[hisp]
host = "127.0.0.1"
port = ${addr##*:}
ca_file = "$work/certs/sandbox-ca.pem"

[[accounts]]
address = "$who@sandbox.local"
password = "pw"
EOF
  chmod 600 "$work/$who.toml"
done
"$BIN" --config "$work/b.toml" run 2>"$LOG_DIR/rss-daemon-b.log" &
bpid=$!
"$BIN" --config "$work/a.toml" send --from a@sandbox.local --to b@sandbox.local \
  --attach "$work/big.bin" >/dev/null 2>"$LOG_DIR/rss-daemon-send.log" || die "directd send failed"
"$BIN" --config "$work/a.toml" run 2>"$LOG_DIR/rss-daemon-a.log" &
apid=$!
handled="SELECT count(*) FROM attachments WHERE ingest_state <> 'pending'"
for _ in $(seq 600); do
  [ "$(sqlite3 "$work/b.db" "$handled" 2>/dev/null)" = 1 ] && break
  sleep 0.2
done
[ "$(sqlite3 "$work/b.db" "$handled" 2>/dev/null)" = 1 ] \
  || die "the large message was not stored and ingested: $(tail -3 "$LOG_DIR/rss-daemon-b.log")"
rdaemon_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$bpid/status")
rcleanup
trap - EXIT
rdaemon_mib=$(awk -v k="$rdaemon_kb" 'BEGIN { printf "%.1f", k / 1024 }')
# --- end daemon receiving a large message ------------------------------------------------------

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "Machine: $(nproc) CPUs ($cpu), Linux $(uname -r), $(rustc --version), $(openssl version | cut -d' ' -f1-2); $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| measurement | result |"
echo "|---|---|"
echo "| C-CDA extraction (\`ingest_bench\`, $corpus_line) | $ingest_mbs MB/s, $ingest_docs documents/s |"
# --- C-CDA bulk ingest rows (issue 18) ---
echo "| C-CDA bulk ingest: release \`directd ingest DIR\`, fresh store on disk, 1 core ($ifiles files, $imb MB: $icorpus_desc; $ingest_cmd_docs documents; median of ${INGEST_RUNS:-3}: ${all_rates[*]}) | $ingest_cmd_mbs MB/s |"
if [ -n "$bb_mbs" ]; then
  echo "| BlueButton.js $bb_version on the same files, 1 core ($bb_failures not extracted) | $bb_mbs MB/s (ours $(ratio "$ingest_cmd_mbs" "$bb_mbs")×) |"
else
  echo "| BlueButton.js on the same files | not run (node/npm unavailable) |"
fi
for sub in "${subsets[@]}"; do
  what="BlueButton.js's own samples"
  [ "$sub" = synth ] && what="the synthesized documents"
  bb_cell="BlueButton.js not run"
  [ -n "${sub_bb[$sub]:-}" ] && bb_cell="BlueButton.js ${sub_bb[$sub]} MB/s, ours $(ratio "${sub_mbs[$sub]}" "${sub_bb[$sub]}")×"
  echo "| … of which $what alone (${sub_files[$sub]} files, ${sub_mb[$sub]} MB), each tool run on them alone | ours ${sub_mbs[$sub]} MB/s; $bb_cell |"
done
echo "| quick-xml tokenizer alone on the same files, 1 core (the limit) | $tokenizer_mbs MB/s (ours $(ratio "$ingest_cmd_mbs" "$tokenizer_mbs")× of it) |"
# --- end C-CDA bulk ingest rows ---
# --- S/MIME rows (smime-perf) ----------------------------------------------------------------
echo "| S/MIME seal, 10 KB, RSA-2048 (sign + encrypt, 1 thread) | $seal10 msgs/s ($(ratio "$seal10" "$rsa_sign")× openssl rsa2048 sign/s; $(ratio "$seal10" "$lim_seal10")× the OpenSSL limit of $lim_seal10; $(ratio "$seal10" "$seal10_sign")× the $seal10_sign sign/s measured in slices alternating with it) |"
echo "| S/MIME open, 10 KB (decrypt + verify + chain) | $open10 msgs/s ($(ratio "$open10" "$rsa_sign")× sign/s; $(ratio "$open10" "$lim_open10")× the limit of $lim_open10; $(ratio "$open10" "$open10_sign")× the $open10_sign sign/s alternating with it) |"
echo "| S/MIME seal, 1 MB | $seal1m msgs/s ($(ratio "$seal1m" "$lim_seal1m")× the OpenSSL limit of $lim_seal1m msgs/s) |"
echo "| S/MIME open, 1 MB | $open1m msgs/s ($(ratio "$open1m" "$lim_open1m")× the limit of $lim_open1m msgs/s) |"
echo "| \`openssl speed -seconds 3 rsa2048\`, private-key (sign) / public-key (verify) ops/s | $rsa_sign / $rsa_verify |"
echo "| OpenSSL for the limit: \`speed -evp sha256\`; \`-evp aes-128-cbc\` encrypt / decrypt; \`openssl base64\` encode / decode (MB/s of text) | $(mbps "$sha_bps"); $(mbps "$aes_enc_bps") / $(mbps "$aes_dec_bps"); $(mbps "$b64_enc_bps") / $(mbps "$b64_dec_bps") MB/s |"
echo "| S/MIME seal, $RSS_MB MB message ($seal_inner B): peak RSS (VmHWM in the bench; ÷ message size, whole process / added by sealing) | $(mib "$seal_peak_kb") MiB ($(per_size "$seal_peak_kb" "$seal_before_kb" "$seal_inner"); $(mib "$seal_before_kb") MiB before sealing, message included) |"
echo "| S/MIME open, $RSS_MB MB message ($open_inner B, $open_sealed B sealed): peak RSS of release \`directd inspect\` (÷ message size, whole process / above inspect of an empty message) | $(mib "$open_peak_kb") MiB ($(per_size "$open_peak_kb" "$open_base_kb" "$open_inner"); empty message $(mib "$open_base_kb") MiB) |"
# --- end S/MIME rows (smime-perf) -------------------------------------------------------------
echo "| End to end via sandbox: A → B, final delivery, stored + ingested + dispatched (\`e2e_bench\`, $e2e_n messages) | $e2e msgs/s |"
echo "| Web console p95, one CPU, 80,000 received + 20,000 sent messages, 20,000 documents (\`web_bench\`): inbox / sent / message / document | $web_inbox / $web_sent / $web_message / $web_document ms |"
echo "| Daemon idle RSS (release \`directd run\`, 1 account, ${IDLE_SECS} s idle, $threads threads) | $idle_mib MiB |"
echo "| Daemon receiving one message with a $DAEMON_RSS_MB MiB attachment (about $((DAEMON_RSS_MB * 4 / 3)) MiB encoded) through the sandbox, stored + ingested: peak RSS (VmHWM of release \`directd run\`) | $rdaemon_mib MiB (limit 100 MB = 95.4 MiB) |"
