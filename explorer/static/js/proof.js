// The event view's proof panel: it shows in which signed checkpoint an event
// is, and checks that in the page, with WebCrypto, without trusting the
// server's arithmetic:
//
//   1. the leaf: the canonical leaf encoding the server sends (package tlog's
//      LeafData) carries exactly the fields of the event shown, and hashes,
//      as SHA-256(0x00 || leaf), to the leaf hash;
//   2. the path: the inclusion proof's sibling hashes lead from that leaf to
//      a root (RFC 9162 section 2.1.3.2), and it is the checkpoint's root;
//   3. the checkpoint: its note says that tree size and root, and its Ed25519
//      signature verifies with the verifier key (when the browser's WebCrypto
//      has Ed25519). The key is the one this server serves: compare it with
//      the one you keep, since a server that lies can serve another.

import { gql } from './api.js';
import { h } from './dom.js';

const Q_CHECKPOINT = `query { checkpoint { origin treeSize rootHash note verifierKey } }`;
const Q_INCLUSION = `query($p: Position!, $n: Position) {
  inclusionProof(position: $p, treeSize: $n) { treeSize leafHash leafData hashes rootHash } }`;

const LEAF_FIELDS = ['domain', 'position', 'streamId', 'version', 'id', 'type', 'data', 'metadata', 'recordedAt', 'hash'];

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', concat(...parts)));
}

export function fromHex(s) {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(b) {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function fromBase64(s) {
  const bin = atob(s);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** Splits the canonical leaf encoding into its named fields (strings). */
export function parseLeaf(bytes) {
  const dec = new TextDecoder('utf-8', { fatal: true });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields = {};
  let off = 0;
  for (const name of LEAF_FIELDS) {
    if (off + 4 > bytes.length) throw new Error('the leaf is too short');
    const n = view.getUint32(off);
    fields[name] = dec.decode(bytes.subarray(off + 4, off + 4 + n));
    off += 4 + n;
  }
  if (off !== bytes.length || fields.domain !== 'hindsight-event-v1') throw new Error('not a hindsight-event-v1 leaf');
  return fields;
}

// The page has data and metadata parsed, not their stored bytes: compare
// them as JSON values (numbers beyond double precision compare as doubles).
function sameJSON(text, value) {
  const norm = (v) => (Array.isArray(v) ? v.map(norm)
    : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, norm(v[k])])) : v);
  return JSON.stringify(norm(text === '' ? null : JSON.parse(text))) === JSON.stringify(norm(value));
}

/** The fields of the event that the leaf does not carry as shown; [] when it matches. */
export function leafMismatches(leaf, ev) {
  const bad = [];
  for (const k of ['position', 'streamId', 'version', 'id', 'type', 'recordedAt', 'hash']) {
    if (leaf[k] !== String(ev[k])) bad.push(k);
  }
  if (!sameJSON(leaf.data, ev.data)) bad.push('data');
  if (!sameJSON(leaf.metadata, ev.metadata ?? null)) bad.push('metadata');
  return bad;
}

/**
 * The root that an RFC 6962 inclusion proof leads to (RFC 9162 section
 * 2.1.3.2), for leaf index in a tree of size leaves. Indexes are plain
 * numbers (exact up to 2^53); no 32-bit bit operations.
 */
export async function rootFromInclusion(index, size, leafHash, path) {
  if (index >= size) throw new Error('the leaf is not in the tree');
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  const one = new Uint8Array([1]);
  for (const p of path) {
    if (sn === 0) throw new Error('the proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(one, p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await sha256(one, r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error('the proof is too short');
  return r;
}

/**
 * Checks a signed note (C2SP signed-note, Ed25519) with a verifier key
 * name+hash+base64(0x01 || key). Returns the note's text lines; throws when
 * the signature does not verify, and returns null when WebCrypto lacks
 * Ed25519.
 */
export async function openNote(note, vkey) {
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new Error('the checkpoint is not a signed note');
  const text = note.slice(0, split + 1);
  const p1 = vkey.indexOf('+');
  const p2 = vkey.indexOf('+', p1 + 1);
  const name = vkey.slice(0, p1);
  const keyHash = vkey.slice(p1 + 1, p2);
  const key = fromBase64(vkey.slice(p2 + 1));
  if (key.length !== 33 || key[0] !== 1) throw new Error('not an Ed25519 verifier key');
  const prefix = `\u2014 ${name} `;
  const line = note.slice(split + 2).split('\n').find((l) => l.startsWith(prefix));
  if (!line) throw new Error(`the checkpoint has no signature by ${name}`);
  const sig = fromBase64(line.slice(prefix.length));
  if (toHex(sig.subarray(0, 4)) !== keyHash) throw new Error('the signature is by another key');
  let pub;
  try {
    pub = await crypto.subtle.importKey('raw', key.subarray(1), { name: 'Ed25519' }, false, ['verify']);
  } catch {
    return null; // no Ed25519 in this browser
  }
  const ok = await crypto.subtle.verify('Ed25519', pub, sig.subarray(4), new TextEncoder().encode(text));
  if (!ok) throw new Error('the signature does not verify');
  return text.split('\n');
}

/** Checks that ev is in the latest signed checkpoint; returns what was checked. */
export async function checkInclusion(ev) {
  const { checkpoint: cp } = await gql(Q_CHECKPOINT);
  if (!cp) return { status: 'none' };
  const size = Number(cp.treeSize);
  if (Number(ev.position) > size) return { status: 'pending', size };
  const { inclusionProof: p } = await gql(Q_INCLUSION, { p: String(ev.position), n: cp.treeSize });
  const checks = [];
  const leafBytes = fromBase64(p.leafData);
  const bad = leafMismatches(parseLeaf(leafBytes), ev);
  const leafHash = await sha256(new Uint8Array([0]), leafBytes);
  checks.push({
    ok: bad.length === 0 && toHex(leafHash) === p.leafHash,
    text: bad.length ? `Leaf: does not carry this event's ${bad.join(', ')}`
      : `Leaf: the event's fields, encoded canonically, hash to ${p.leafHash.slice(0, 16)}…`,
  });
  const root = await rootFromInclusion(Number(ev.position) - 1, size, leafHash, p.hashes.map(fromHex));
  checks.push({
    ok: toHex(root) === cp.rootHash,
    text: `Path: ${p.hashes.length} sibling hash${p.hashes.length === 1 ? '' : 'es'} lead to root ${toHex(root).slice(0, 16)}…`
      + (toHex(root) === cp.rootHash ? ', the checkpoint\'s root' : `, not the checkpoint's root ${cp.rootHash.slice(0, 16)}…`),
  });
  try {
    const lines = await openNote(cp.note, cp.verifierKey);
    if (lines === null) {
      checks.push({ ok: null, text: 'Signature: not checked (this browser\'s WebCrypto has no Ed25519)' });
    } else {
      const noteRoot = toHex(fromBase64(lines[2] || ''));
      const agrees = lines[0] === cp.origin && lines[1] === cp.treeSize && noteRoot === cp.rootHash;
      checks.push({
        ok: agrees,
        text: agrees ? `Signature: the checkpoint "${cp.origin}", ${size} events, verifies with Ed25519 key ${cp.verifierKey}`
          : 'Signature: valid, but the signed note says another size or root',
      });
    }
  } catch (e) {
    checks.push({ ok: false, text: `Signature: ${e.message}` });
  }
  return { status: checks.every((c) => c.ok !== false) ? 'included' : 'failed', size, checks };
}

/** The proof panel of an event; it fills itself in. */
export function proofPanel(ev) {
  const el = h('div', { class: 'proof', id: 'event-proof', 'aria-live': 'polite' },
    h('p', { class: 'muted' }, 'Checking the inclusion proof…'));
  checkInclusion(ev).then((r) => {
    const mark = (ok) => h('span', { 'aria-hidden': 'true' }, ok === false ? '✗ ' : ok ? '✓ ' : '– ');
    switch (r.status) {
      case 'none':
        el.replaceChildren(h('p', { class: 'muted' }, 'No signed checkpoint yet.'));
        return;
      case 'pending':
        el.replaceChildren(h('p', { class: 'muted', id: 'proof-pending' },
          `Not in a signed checkpoint yet (the latest covers ${r.size} events).`));
        return;
    }
    el.replaceChildren(
      h('p', { class: r.status === 'included' ? 'ok' : 'bad', id: `proof-${r.status}` }, mark(r.status === 'included'),
        r.status === 'included' ? `Included in checkpoint ${r.size}` : `NOT proven to be in checkpoint ${r.size}`),
      h('ul', { class: 'proof-checks' }, r.checks.map((c) => h('li', { class: c.ok === false ? 'bad' : '' }, mark(c.ok), c.text))),
      h('p', { class: 'muted small' }, 'Checked in this page with WebCrypto. The key is the one this server serves: compare it with the one you keep.'));
  }).catch((e) => {
    el.replaceChildren(h('p', { class: e.code === 'NOT_FOUND' ? 'muted' : 'bad' },
      e.code === 'NOT_FOUND' ? 'This server keeps no verifiable log.' : `Inclusion not checked: ${e.message}`));
  });
  return el;
}
