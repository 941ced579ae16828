#!/usr/bin/env node
// Synthetic C-CDA corpus for benches/bluebutton_compare.sh --synthesize N.
//
// Usage: node ccda_synthesize.js OUT_DIR N [SOURCE_DIR] [SEED]
//
// Derives N documents from the structured fixtures in SOURCE_DIR (default tests/fixtures/ccda):
// every section's <entry> elements are replicated to reach a target size drawn log-uniformly
// between 50 KB and 2 MB, patient names, ids (extension attributes) and numeric values are varied
// per document and per replica, so no two documents are byte-identical. Every 4th document
// derived from a US Realm Header document has that templateId (2.16.840.1.113883.10.20.22.1.1)
// removed (file name ends in _norealm.xml); documents derived from fixtures that never had it
// (R1.1 prefixed, no templates at all) keep that property. All data stays invented.
'use strict';

const fs = require('fs');
const path = require('path');

const [outDir, nArg, srcArg, seedArg] = process.argv.slice(2);
if (!outDir || !nArg) {
  console.error('usage: ccda_synthesize.js OUT_DIR N [SOURCE_DIR] [SEED]');
  process.exit(2);
}
const N = parseInt(nArg, 10);
const sourceDir = srcArg || 'tests/fixtures/ccda';
let seed = parseInt(seedArg || '20241125', 10) >>> 0;

// xorshift32: deterministic, so a corpus can be regenerated exactly.
function rand() {
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];

const GIVEN = ['Ada', 'Bram', 'Cleo', 'Dmitri', 'Esme', 'Farouk', 'Greta', 'Hiro', 'Ines', 'Jonas',
  'Kaia', 'Luis', 'Mina', 'Nils', 'Oona', 'Pavel', 'Quinn', 'Rosa', 'Sami', 'Tove'];
const FAMILY = ['Testperson', 'Example', 'Sampleton', 'Mockery', 'Fakeworth', 'Dummyford', 'Placeholder',
  'Synthetica', 'Notreal', 'Fictitious'];
const REALM = /[ \t]*<((?:\w+:)?templateId)\s+root=["']2\.16\.840\.1\.113883\.10\.20\.22\.1\.1["'][^>]*\/>\s*\n?/g;
const ENTRY = /<((?:\w+:)?)entry[\s>][\s\S]*?<\/\1entry>/g;

function loadSources() {
  const out = [];
  for (const name of fs.readdirSync(sourceDir).sort()) {
    if (!name.endsWith('.xml')) continue;
    const text = fs.readFileSync(path.join(sourceDir, name), 'utf8');
    const entries = text.match(ENTRY) || [];
    if (entries.length === 0) continue; // unstructured bodies cannot be grown realistically
    const entryBytes = entries.reduce((n, e) => n + e.length, 0);
    out.push({ name: name.replace(/\.xml$/, ''), text, entryBytes, realm: REALM.test(text) });
    REALM.lastIndex = 0;
  }
  if (out.length === 0) throw new Error('no fixture with <entry> elements in ' + sourceDir);
  return out;
}

function vary(xml, tag) {
  return xml
    .replace(/extension="([^"]*)"/g, (m, v) => (v === 'POCD_HD000040' || /^\d{4}-\d{2}-\d{2}$/.test(v)
      ? m : `extension="${v}-${tag}"`))
    .replace(/(<(?:\w+:)?value\b[^>]*\bvalue=")(\d+(?:\.\d+)?)"/g, (m, pre, num) => {
      const x = parseFloat(num) * (0.9 + rand() * 0.2);
      return `${pre}${num.includes('.') ? x.toFixed(1) : Math.round(x)}"`;
    });
}

function synthesize(src, i) {
  const target = Math.exp(Math.log(50e3) + rand() * (Math.log(2e6) - Math.log(50e3)));
  const fixed = src.text.length - src.entryBytes;
  const k = Math.max(1, Math.ceil((target - fixed) / src.entryBytes));
  let j = 0;
  let text = src.text.replace(ENTRY, (e) => {
    const parts = [];
    for (let r = 0; r < k; r++) parts.push(r === 0 ? e : vary(e, `d${i}r${r}e${j}`));
    j++;
    return parts.join('\n');
  });
  const given = pick(GIVEN), family = pick(FAMILY);
  text = text
    .replace(/(<(?:\w+:)?given>)[^<]*(<\/(?:\w+:)?given>)/, `$1${given}$2`)
    .replace(/(<(?:\w+:)?family>)[^<]*(<\/(?:\w+:)?family>)/, `$1${family}$2`)
    .replace(/(<(?:\w+:)?id\s+root="[^"]*"\s+extension=")([^"]*)"/, `$1$2-DOC${i}"`);
  let suffix = '';
  if (src.realm && i % 4 === 3) {
    text = text.replace(REALM, '');
    suffix = '_norealm';
  } else if (!src.realm) {
    suffix = '_norealm';
  }
  return { name: `synth_${String(i).padStart(4, '0')}_${src.name}${suffix}.xml`, text };
}

function main() {
  const sources = loadSources();
  // Weight towards the full CCD: it is the realistic shape; the others keep their quirks present.
  const weighted = [];
  for (const s of sources) for (let w = 0; w < (s.realm && /ccd/i.test(s.name) ? 4 : 1); w++) weighted.push(s);
  fs.mkdirSync(outDir, { recursive: true });
  let bytes = 0, norealm = 0;
  for (let i = 0; i < N; i++) {
    const src = weighted[i % weighted.length];
    const d = synthesize(src, i);
    fs.writeFileSync(path.join(outDir, d.name), d.text);
    bytes += Buffer.byteLength(d.text);
    if (d.name.endsWith('_norealm.xml')) norealm++;
  }
  console.error(`synthesized ${N} documents (${(bytes / 1e6).toFixed(1)} MB, ${norealm} without the US Realm Header templateId) in ${outDir} from ${sources.map((s) => s.name).join(', ')}`);
}

main();
