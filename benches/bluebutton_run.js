#!/usr/bin/env node
// BlueButton.js side of benches/bluebutton_compare.sh.
//
// Usage: node bluebutton_run.js CORPUS_DIR [ITERATIONS]
//   env BLUEBUTTON_PREFIX: the `npm install --prefix` folder holding node_modules/bluebutton
//                          (default: resolve `bluebutton` normally)
//
// Parses every *.xml file in CORPUS_DIR (not recursive, symlinks followed) with BlueButton.js,
// once untimed (to record per-document results and warm the JIT), then ITERATIONS timed passes,
// all in this one Node process (JavaScript runs on one thread; pin the process with taskset to
// keep V8's GC helper threads on the same core). Prints one JSON object on stdout:
//   { tool, version, corpus, files, bytes, iterations, seconds, failures,
//     docs: [ { file, bytes, ok, type, error, counts: { section: n, ... } } ] }
// A document is a failure when BlueButton throws, or returns no data (it does not recognise the
// document type: it needs the US Realm Header or the C32 templateId). `counts` is the number of
// items BlueButton returned per section (raw array lengths: items whose fields are all null still
// count, as they would for an application iterating them).
'use strict';

const fs = require('fs');
const path = require('path');

const corpus = process.argv[2] || process.env.CCDA_CORPUS || 'tests/fixtures/ccda';
const iterations = parseInt(process.argv[3] || process.env.BB_ITERATIONS || '3', 10);

function loadBlueButton() {
  const prefix = process.env.BLUEBUTTON_PREFIX;
  const id = prefix ? path.join(path.resolve(prefix), 'node_modules', 'bluebutton') : 'bluebutton';
  const bb = require(id);
  let version = null;
  try {
    version = JSON.parse(fs.readFileSync(path.join(path.dirname(require.resolve(id)), '..', 'package.json'))).version;
  } catch (_) { /* unknown */ }
  return { bb, version };
}

// Same names as benches/ingest_sections.rs.
const LISTS = ['allergies', 'care_plan', 'encounters', 'functional_statuses', 'instructions',
  'medications', 'problems', 'procedures', 'results', 'vitals'];

function nonNull(v) {
  return v !== null && v !== undefined && !(typeof v === 'string' && v.trim() === '');
}

function counts(data) {
  const c = {};
  const d = data.demographics || {};
  const name = d.name || {};
  const given = Array.isArray(name.given) ? name.given.filter(nonNull) : [];
  c.demographics = (given.length || nonNull(name.family) || nonNull(d.dob) || nonNull(d.gender)) ? 1 : 0;
  for (const k of LISTS) c[k] = Array.isArray(data[k]) ? data[k].length : 0;
  // Results: count individual tests (ours counts observations per panel the same way).
  if (Array.isArray(data.results)) {
    c.results = data.results.reduce((n, p) => n + Math.max(1, (p.tests || []).length), 0);
  }
  if (Array.isArray(data.vitals)) {
    c.vitals = data.vitals.reduce((n, p) => n + Math.max(1, (p.results || []).length), 0);
  }
  c.immunizations = (Array.isArray(data.immunizations) ? data.immunizations.length : 0) +
    (Array.isArray(data.immunization_declines) ? data.immunization_declines.length : 0);
  const s = data.smoking_status || {};
  c.smoking_status = (nonNull(s.name) || nonNull(s.code)) ? 1 : 0;
  const cc = data.chief_complaint || {};
  c.chief_complaint = nonNull(cc.text) ? 1 : 0;
  c.family_history = null; // not extracted by BlueButton.js 0.4.x
  return c;
}

function main() {
  const { bb, version } = loadBlueButton();
  const names = fs.readdirSync(corpus)
    .filter((n) => n.toLowerCase().endsWith('.xml'))
    .filter((n) => fs.statSync(path.join(corpus, n)).isFile())
    .sort();
  const files = names.map((n) => ({ name: n, text: fs.readFileSync(path.join(corpus, n), 'utf8') }));
  const bytes = names.reduce((n, f) => n + fs.statSync(path.join(corpus, f)).size, 0);

  // Untimed pass: per-document results.
  const docs = [];
  let failures = 0;
  for (const f of files) {
    const doc = { file: f.name, bytes: Buffer.byteLength(f.text), ok: false, type: null, error: null, counts: {} };
    try {
      const out = bb(f.text);
      doc.type = out.type || null;
      if (!out.data) {
        doc.error = 'no data (document type not detected: ' + String(out.type) + ')';
      } else {
        doc.ok = true;
        doc.counts = counts(out.data);
      }
    } catch (e) {
      doc.error = 'threw: ' + String(e && e.message ? e.message : e).split('\n')[0].slice(0, 200);
    }
    if (!doc.ok) failures++;
    docs.push(doc);
  }

  // Timed passes.
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    for (const f of files) {
      try {
        const out = bb(f.text);
        if (out.data) sink++;
      } catch (_) {
        sink--;
      }
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

  process.stdout.write(JSON.stringify({
    tool: 'BlueButton.js', version, corpus: path.resolve(corpus), files: files.length, bytes,
    iterations, seconds, failures, sink, docs,
  }) + '\n');
}

main();
