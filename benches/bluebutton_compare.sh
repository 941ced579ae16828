#!/usr/bin/env bash
# Side-by-side benchmark of our C-CDA extractor (benches/ingest_bench.rs, benches/ingest_sections.rs)
# against BlueButton.js (npm package `bluebutton`) on the same *.xml files, one core each.
#
# Usage (from the crate root):
#   benches/bluebutton_compare.sh [options] [CORPUS_DIR]
#
#   CORPUS_DIR               folder of documents (default: $CCDA_CORPUS, else tests/fixtures/ccda).
#                            Only *.xml files are used, by both tools.
#   --bluebutton-samples     add the sample C-CDAs that the bluebutton npm tarball ships
#                            (chb/sample_ccdas: ~740 files, ~69 MB, mostly EMERGE) to the corpus
#   --synthesize N           add N synthetic documents (50 KB - 2 MB) derived from the fixtures in
#                            $CCDA_FIXTURES (default tests/fixtures/ccda); about one in four lacks
#                            the US Realm Header templateId
#   --keep                   keep the work folder (corpus links, raw outputs) and print its path
#
# Environment:
#   CRATE_DIR         crate whose benches are run (default .)
#   ITERATIONS        timed passes for our bench (default 20)
#   BB_ITERATIONS     timed passes for BlueButton.js (default 3)
#   BLUEBUTTON_PREFIX reuse an `npm install --prefix` folder instead of a throwaway one
#   BENCH_CPU         core both tools are pinned to with taskset (default 0)
#   CARGO_TARGET_DIR  as usual
#
# Needs: cargo, node + npm (for the BlueButton.js side and for the table). If BlueButton.js cannot
# be installed, our side still runs and the table shows it alone.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CRATE_DIR=${CRATE_DIR:-.}
ITERATIONS=${ITERATIONS:-20}
BB_ITERATIONS=${BB_ITERATIONS:-3}
BENCH_CPU=${BENCH_CPU:-0}

corpus_arg=""
samples=0
synth=0
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bluebutton-samples) samples=1 ;;
    --synthesize) synth=${2:?--synthesize needs a count}; shift ;;
    --synthesize=*) synth=${1#*=} ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) corpus_arg=$1 ;;
  esac
  shift
done
if [ -z "$corpus_arg" ] && [ "$samples" = 0 ] && [ "$synth" = 0 ]; then
  corpus_arg=${CCDA_CORPUS:-$CRATE_DIR/tests/fixtures/ccda}
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bbcompare.XXXXXX")
cleanup() { if [ "$keep" = 1 ]; then echo "work folder kept: $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
CORPUS=$WORK/corpus
mkdir -p "$CORPUS"

PIN=()
if command -v taskset >/dev/null 2>&1; then PIN=(taskset -c "$BENCH_CPU"); fi

# --- BlueButton.js install -------------------------------------------------------------------
have_node=0; bb_ok=0
if command -v node >/dev/null 2>&1; then have_node=1; fi
BB_PREFIX=${BLUEBUTTON_PREFIX:-$WORK/npm}
if [ "$have_node" = 1 ] && command -v npm >/dev/null 2>&1; then
  if [ -f "$BB_PREFIX/node_modules/bluebutton/package.json" ]; then
    bb_ok=1
  else
    mkdir -p "$BB_PREFIX"
    echo "installing bluebutton with npm into $BB_PREFIX ..." >&2
    if npm install --no-save --no-audit --no-fund --prefix "$BB_PREFIX" bluebutton >"$WORK/npm.log" 2>&1 \
        && [ -f "$BB_PREFIX/node_modules/bluebutton/package.json" ]; then
      bb_ok=1
    else
      echo "BlueButton.js: npm install failed; running our side only. npm said:" >&2
      { grep -E '^npm (error|ERR!)' "$WORK/npm.log" | grep -v '^npm error *at ' | head -n 8 \
          || tail -n 8 "$WORK/npm.log"; } | sed 's/^/  npm: /' >&2
    fi
  fi
else
  echo "BlueButton.js: node/npm not found; running our side only." >&2
fi

# --- corpus: links to *.xml files only, so both tools see exactly the same set ----------------
link_xml() { # SRC_DIR PREFIX [recursive]
  local src=$1 prefix=$2 depth=(-maxdepth 1)
  [ "${3:-}" = recursive ] && depth=()
  [ -d "$src" ] || { echo "corpus folder not found: $src" >&2; exit 2; }
  src=$(cd "$src" && pwd)
  find -L "$src" "${depth[@]}" -type f -iname '*.xml' -print0 | while IFS= read -r -d '' f; do
    local rel=${f#"$src"/}
    local name="${prefix}${rel//\//__}"
    name=${name// /_}
    ln -s "$f" "$CORPUS/$name"
  done
}
sources=()
if [ -n "$corpus_arg" ]; then link_xml "$corpus_arg" ""; sources+=("$corpus_arg"); fi
if [ "$samples" = 1 ]; then
  S=$BB_PREFIX/node_modules/bluebutton/_site/bower_components/sample_ccdas
  if [ -d "$S" ]; then
    link_xml "$S" "bbsample__" recursive; sources+=("bluebutton npm sample_ccdas")
  else
    echo "--bluebutton-samples: $S not found (bluebutton not installed?)" >&2
  fi
fi
if [ "$synth" != 0 ]; then
  if [ "$have_node" = 1 ]; then
    node "$SCRIPT_DIR/ccda_synthesize.js" "$WORK/synth" "$synth" "${CCDA_FIXTURES:-$CRATE_DIR/tests/fixtures/ccda}"
    link_xml "$WORK/synth" ""; sources+=("$synth synthetic")
  else
    echo "--synthesize needs node" >&2; exit 2
  fi
fi
n_files=$(find "$CORPUS" -maxdepth 1 -name '*.xml' | wc -l)
[ "$n_files" -gt 0 ] || { echo "no *.xml files in the corpus" >&2; exit 2; }
echo "corpus: $n_files *.xml files from: ${sources[*]}" >&2

# --- our side --------------------------------------------------------------------------------
echo "building benches (release) ..." >&2
(cd "$CRATE_DIR" && cargo bench --no-run --bench ingest_bench --bench ingest_sections) >"$WORK/build.log" 2>&1 \
  || { cat "$WORK/build.log" >&2; exit 1; }
echo "running ingest_sections (coverage, 1 pass) ..." >&2
(cd "$CRATE_DIR" && CCDA_CORPUS="$CORPUS" cargo bench --bench ingest_sections 2>"$WORK/sections.err") \
  | grep '^{' >"$WORK/ours_sections.jsonl" || { cat "$WORK/sections.err" >&2; exit 1; }
echo "running ingest_bench ($ITERATIONS passes, pinned to cpu $BENCH_CPU) ..." >&2
(cd "$CRATE_DIR" && CCDA_CORPUS="$CORPUS" ITERATIONS="$ITERATIONS" "${PIN[@]}" cargo bench --bench ingest_bench 2>"$WORK/bench.err") \
  >"$WORK/ours_bench.txt" || { cat "$WORK/bench.err" >&2; exit 1; }

# --- BlueButton.js side ------------------------------------------------------------------------
if [ "$bb_ok" = 1 ]; then
  echo "running BlueButton.js ($BB_ITERATIONS passes, pinned to cpu $BENCH_CPU) ..." >&2
  if ! BLUEBUTTON_PREFIX="$BB_PREFIX" "${PIN[@]}" node --max-old-space-size=4096 \
      "$SCRIPT_DIR/bluebutton_run.js" "$CORPUS" "$BB_ITERATIONS" >"$WORK/bb.json" 2>"$WORK/bb.err"; then
    echo "BlueButton.js run failed:" >&2; tail -n 15 "$WORK/bb.err" >&2
    rm -f "$WORK/bb.json"
  fi
fi

# --- fairness re-run: BlueButton.js does less work on documents it does not recognise, so when it
# failed on some, time both tools again on only the documents it extracted. -----------------------
if [ -s "$WORK/bb.json" ]; then
  node -e 'const o=JSON.parse(require("fs").readFileSync(process.argv[1]));
    if (o.failures > 0) for (const d of o.docs) if (d.ok) console.log(d.file);' "$WORK/bb.json" >"$WORK/bb_ok.txt"
  if [ -s "$WORK/bb_ok.txt" ]; then
    mkdir -p "$WORK/corpus_bbok"
    while IFS= read -r f; do cp -P "$CORPUS/$f" "$WORK/corpus_bbok/$f"; done <"$WORK/bb_ok.txt"
    echo "re-timing both on the $(wc -l <"$WORK/bb_ok.txt") documents BlueButton.js extracts ..." >&2
    (cd "$CRATE_DIR" && CCDA_CORPUS="$WORK/corpus_bbok" ITERATIONS="$ITERATIONS" "${PIN[@]}" cargo bench --bench ingest_bench 2>>"$WORK/bench.err") \
      >"$WORK/ours_bench_bbok.txt" || rm -f "$WORK/ours_bench_bbok.txt"
    BLUEBUTTON_PREFIX="$BB_PREFIX" "${PIN[@]}" node --max-old-space-size=4096 \
      "$SCRIPT_DIR/bluebutton_run.js" "$WORK/corpus_bbok" "$BB_ITERATIONS" >"$WORK/bb_bbok.json" 2>>"$WORK/bb.err" \
      || rm -f "$WORK/bb_bbok.json"
  fi
fi

# --- table -------------------------------------------------------------------------------------
cat "$WORK/ours_bench.txt" >&2
if [ "$have_node" = 0 ]; then exit 0; fi
node - "$WORK" "$ITERATIONS" <<'EOF'
'use strict';
const fs = require('fs');
const path = require('path');
const [work, itersArg] = process.argv.slice(2);
const corpus = path.join(work, 'corpus');

function oursBench(file) {
  const benchTxt = fs.readFileSync(path.join(work, file), 'utf8');
  const m1 = benchTxt.match(/: (\d+) files, (\d+) bytes, (\d+) documents\/pass, (\d+) refused\/pass/);
  const m2 = benchTxt.match(/(\d+) passes in ([\d.]+) s/);
  if (!m1 || !m2) { console.error('cannot parse ingest_bench output:\n' + benchTxt); process.exit(1); }
  return { tool: 'directd ingest', files: +m1[1], bytes: +m1[2], iterations: +m2[1], seconds: +m2[2] };
}
const readJson = (f) => { try { return JSON.parse(fs.readFileSync(path.join(work, f), 'utf8')); } catch (_) { return null; } };
const oursSec = fs.readFileSync(path.join(work, 'ours_sections.jsonl'), 'utf8').trim().split('\n')
  .filter(Boolean).map((l) => JSON.parse(l));
const ours = Object.assign(oursBench('ours_bench.txt'), { failures: oursSec.filter((d) => !d.ok).length, docs: oursSec });
const bb = readJson('bb.json');
const bbOk = readJson('bb_bbok.json');
const oursOk = fs.existsSync(path.join(work, 'ours_bench_bbok.txt')) ? oursBench('ours_bench_bbok.txt') : null;

const rate = (t) => ({ mbs: t.bytes * t.iterations / t.seconds / 1e6, dps: t.files * t.iterations / t.seconds });
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
const f1 = (x) => x >= 100 ? x.toFixed(0) : x.toFixed(x >= 10 ? 1 : 2);

console.log('');
console.log('Throughput (one core each; documents = *.xml files, failures = not extracted)');
const head = [pad('tool', 22), lpad('documents', 9), lpad('MB', 8), lpad('MB/s', 9), lpad('docs/s', 9), lpad('failures', 9), lpad('passes', 7), lpad('seconds', 8)];
console.log(head.join(' '));
const rows = [ours].concat(bb ? [Object.assign({}, bb, { tool: 'BlueButton.js ' + (bb.version || '') })] : []);
for (const t of rows) {
  const r = rate(t);
  console.log([pad(t.tool, 22), lpad(t.files, 9), lpad((t.bytes / 1e6).toFixed(2), 8), lpad(f1(r.mbs), 9), lpad(f1(r.dps), 9), lpad(t.failures, 9), lpad(t.iterations, 7), lpad(t.seconds.toFixed(2), 8)].join(' '));
}
let ratio = null;
const ratioRow = (label, o, b) => {
  const a = rate(o), c = rate(b);
  console.log([pad(label, 22), lpad('', 9), lpad('', 8), lpad((a.mbs / c.mbs).toFixed(1) + 'x', 9), lpad((a.dps / c.dps).toFixed(1) + 'x', 9)].join(' '));
  return a.mbs / c.mbs;
};
if (bb) {
  ratio = ratioRow('ratio ours/BlueButton', ours, bb);
  if (bbOk && oursOk) {
    console.log('');
    console.log(`Same, on only the ${bbOk.files} documents BlueButton.js extracts (it skips extraction on the others):`);
    for (const t of [Object.assign({}, oursOk, { failures: '-' }), Object.assign({}, bbOk, { tool: 'BlueButton.js ' + (bbOk.version || '') })]) {
      const r = rate(t);
      console.log([pad(t.tool, 22), lpad(t.files, 9), lpad((t.bytes / 1e6).toFixed(2), 8), lpad(f1(r.mbs), 9), lpad(f1(r.dps), 9), lpad(t.failures, 9), lpad(t.iterations, 7), lpad(t.seconds.toFixed(2), 8)].join(' '));
    }
    ratio = Math.min(ratio, ratioRow('ratio ours/BlueButton', oursOk, bbOk));
  }
} else {
  console.log('(BlueButton.js did not run: no comparison)');
}

const KINDS = ['demographics', 'allergies', 'care_plan', 'chief_complaint', 'encounters', 'functional_statuses',
  'immunizations', 'instructions', 'medications', 'problems', 'procedures', 'results', 'smoking_status', 'vitals',
  'family_history'];
const byFile = new Map();
for (const d of ours.docs) byFile.set(d.file, { ours: d });
if (bb) for (const d of bb.docs) (byFile.get(d.file) || byFile.set(d.file, {}).get(d.file)).bb = d;
const has = (d, k) => d && d.ok && d.counts && typeof d.counts[k] === 'number' && d.counts[k] > 0;

console.log('');
console.log('Section coverage: documents with >= 1 item extracted (items summed over the corpus)');
console.log([pad('section', 20), lpad('ours docs', 10), lpad('BB docs', 8), lpad('both', 6), lpad('BB only', 8), lpad('ours only', 10), lpad('ours items', 11), lpad('BB items', 9)].join(' '));
const gaps = [];
for (const k of KINDS) {
  let o = 0, b = 0, both = 0, bOnly = 0, oOnly = 0, oi = 0, bi = 0, bbNA = false;
  const bOnlyFiles = [];
  for (const [file, v] of byFile) {
    const ho = has(v.ours, k), hb = has(v.bb, k);
    if (v.bb && v.bb.ok && v.bb.counts[k] === null) bbNA = true;
    o += ho; b += hb; both += ho && hb;
    if (hb && !ho) { bOnly++; bOnlyFiles.push(file); }
    if (ho && !hb) oOnly++;
    if (v.ours && v.ours.ok) oi += v.ours.counts[k] || 0;
    if (v.bb && v.bb.ok) bi += v.bb.counts[k] || 0;
  }
  if (bOnly) gaps.push([k, bOnlyFiles]);
  const bbCell = !bb ? '-' : bbNA ? 'n/a' : b;
  console.log([pad(k, 20), lpad(o, 10), lpad(bbCell, 8), lpad(bb && !bbNA ? both : '-', 6), lpad(bb && !bbNA ? bOnly : '-', 8), lpad(bb && !bbNA ? oOnly : '-', 10), lpad(oi, 11), lpad(bb && !bbNA ? bi : '-', 9)].join(' '));
}
if (gaps.length) {
  console.log('');
  console.log('Documents where BlueButton.js extracted a section and we extracted nothing:');
  for (const [k, files] of gaps) console.log(`  ${k}: ${files.length}: ${files.slice(0, 5).join(', ')}${files.length > 5 ? ', ...' : ''}`);
}

// Documents without the US Realm Header templateId.
const REALM = /<(?:\w+:)?templateId\s[^>]*root=["']2\.16\.840\.1\.113883\.10\.20\.22\.1\.1["']/;
const noRealm = [];
for (const [file, v] of byFile) {
  let text = '';
  try { text = fs.readFileSync(path.join(corpus, file), 'utf8'); } catch (_) { continue; }
  if (!REALM.test(text)) noRealm.push([file, v]);
}
console.log('');
console.log(`Documents without the US Realm Header templateId: ${noRealm.length}`);
let noRealmOursFail = 0, noRealmBbFail = 0, listed = 0;
for (const [file, v] of noRealm) {
  const o = v.ours || {}, b = v.bb;
  if (!o.ok) noRealmOursFail++;
  if (b && !b.ok) noRealmBbFail++;
  const oSecs = o.ok ? KINDS.filter((k) => has(o, k)).join(',') : 'FAILED: ' + o.error;
  const bDesc = !b ? '-' : b.ok ? `parsed as ${b.type}: ${KINDS.filter((k) => has(b, k)).join(',') || '(nothing)'}` : b.error;
  if (listed < 12 || !o.ok || (b && b.ok)) {
    listed++;
    console.log(`  ${file}\n    ours: ${o.ok ? o.kind + ': ' : ''}${oSecs}\n    BlueButton.js: ${bDesc}`);
  }
}
if (listed < noRealm.length) console.log(`  (${noRealm.length - listed} more not listed: extracted by us, not by BlueButton.js)`);
console.log(`  failures: ours ${noRealmOursFail}, BlueButton.js ${bb ? noRealmBbFail : '-'}`);

const oursFailed = ours.docs.filter((d) => !d.ok);
if (oursFailed.length) {
  console.log('');
  console.log('Our failures:');
  for (const d of oursFailed.slice(0, 20)) console.log(`  ${d.file}: ${d.error}`);
}
if (bb) {
  const errs = new Map();
  for (const d of bb.docs.filter((x) => !x.ok)) errs.set(d.error, (errs.get(d.error) || 0) + 1);
  if (errs.size) {
    console.log('');
    console.log('BlueButton.js failures by reason:');
    for (const [e, n] of errs) console.log(`  ${n} x ${e}`);
  }
}

if (bb) {
  console.log('');
  console.log('Target (issue): >= 10x throughput, at least the same sections, 0 failures without US Realm Header');
  console.log(`  throughput ${ratio.toFixed(1)}x MB/s (lower of the ratios above): ${ratio >= 10 ? 'MET' : 'NOT MET'}`);
  console.log(`  sections: ${gaps.length ? 'NOT MET (' + gaps.map(([k, f]) => k + ' ' + f.length).join(', ') + ' documents)' : 'MET'}`);
  console.log(`  no-realm-header failures: ${noRealmOursFail} (${noRealm.length} such documents): ${noRealmOursFail === 0 ? 'MET' : 'NOT MET'}`);
}
EOF
