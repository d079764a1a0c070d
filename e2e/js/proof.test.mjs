// Checks every event of a running server against its latest signed
// checkpoint with the explorer's own proof module (explorer/static/js/proof.js),
// the code the event view runs in the browser: leaf fields against the
// event, the SHA-256 path to the checkpoint's root, and the Ed25519
// signature of the note with WebCrypto. Run by e2e/tlog_test.go with
// HINDSIGHT_URL set; prints "ok N" at the end.
import { parseLeaf, leafMismatches, rootFromInclusion, openNote, fromHex, toHex } from '../../explorer/static/js/proof.js';

const base = process.env.HINDSIGHT_URL;
async function q(query, variables = {}) {
  const r = await fetch(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const j = await r.json();
  if (j.errors) throw new Error(JSON.stringify(j.errors));
  return j.data;
}
function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

const { checkpoint: cp } = await q('{ checkpoint { origin treeSize rootHash note verifierKey } }');
if (!cp) fail('no checkpoint');
const lines = await openNote(cp.note, cp.verifierKey);
if (lines === null) fail('this Node has no Ed25519 in WebCrypto');
if (lines[0] !== cp.origin || lines[1] !== cp.treeSize) fail(`note says ${lines.slice(0, 2)}`);
const { events } = await q('{ events(first: 1000) { edges { node { id streamId version position type data metadata recordedAt hash } } } }');
let n = 0;
for (const { node: ev } of events.edges) {
  if (Number(ev.position) > Number(cp.treeSize)) continue;
  const { inclusionProof: p } = await q('query($p: Position!, $n: Position) { inclusionProof(position: $p, treeSize: $n) { leafHash leafData hashes } }',
    { p: ev.position, n: cp.treeSize });
  const leaf = Uint8Array.from(atob(p.leafData), (c) => c.charCodeAt(0));
  const bad = leafMismatches(parseLeaf(leaf), ev);
  if (bad.length) fail(`position ${ev.position}: the leaf does not carry ${bad}`);
  const lh = new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array([0, ...leaf])));
  if (toHex(lh) !== p.leafHash) fail(`position ${ev.position}: leaf hash`);
  const root = await rootFromInclusion(Number(ev.position) - 1, Number(cp.treeSize), lh, p.hashes.map(fromHex));
  if (toHex(root) !== cp.rootHash) fail(`position ${ev.position}: the path leads to ${toHex(root)}, not ${cp.rootHash}`);
  // The same proof must not pass for the event with other data.
  if (leafMismatches(parseLeaf(leaf), { ...ev, data: { altered: true } }).join() !== 'data') fail('an altered event passed');
  n++;
}
try {
  await openNote(cp.note.replace(`\n${cp.treeSize}\n`, `\n${Number(cp.treeSize) + 1}\n`), cp.verifierKey);
  fail('a note with another size verified');
} catch (e) {
  if (!/does not verify/.test(e.message)) fail(`forged note: ${e.message}`);
}
console.log(`ok ${n}`);
