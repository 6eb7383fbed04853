// The login proof-of-work (seed 001), off the page's thread: find `count` distinct
// strings p with sha256(random + p) starting with `difficulty` zero bits.
// crypto.subtle where the page is a secure context (https, localhost, 127.0.0.1);
// the vendored js-sha256 where it is not (plain HTTP on a LAN address).
//
// In:  {random, count, difficulty}
// Out: {engine}, then {progress: {tried, found, expected}} every ~100 ms, then
//      {done: [p, ...]} or {error: message}.

"use strict";

function zeroBits(bytes) {
  let bits = 0;
  for (const byte of bytes) {
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

const encoder = new TextEncoder();

async function solveSubtle(random, count, difficulty, report) {
  const found = [];
  const batch = 512;
  for (let n = 0; ; n += batch) {
    const candidates = [];
    for (let i = n; i < n + batch; i += 1) candidates.push(i.toString(16));
    const digests = await Promise.all(
      candidates.map((p) => crypto.subtle.digest("SHA-256", encoder.encode(random + p))),
    );
    for (let i = 0; i < batch; i += 1) {
      if (zeroBits(new Uint8Array(digests[i])) >= difficulty) {
        found.push(candidates[i]);
        if (found.length === count) return found;
      }
    }
    report(n + batch, found.length);
  }
}

function solveJs(random, count, difficulty, report) {
  importScripts("/ui/vendor/js-sha256/sha256.min.js");
  const found = [];
  for (let n = 0; ; n += 1) {
    const candidate = n.toString(16);
    if (zeroBits(self.sha256.array(random + candidate)) >= difficulty) {
      found.push(candidate);
      if (found.length === count) return found;
    }
    if ((n & 0x3fff) === 0) report(n, found.length);
  }
}

self.onmessage = async (event) => {
  const { random, count, difficulty } = event.data;
  const expected = count * 2 ** difficulty;
  let last = 0;
  const report = (tried, found) => {
    const now = Date.now();
    if (now - last < 100) return;
    last = now;
    self.postMessage({ progress: { tried, found, expected } });
  };
  try {
    const subtle = self.isSecureContext && self.crypto && self.crypto.subtle;
    self.postMessage({ engine: subtle ? "crypto.subtle" : "js-sha256" });
    const proofs = subtle
      ? await solveSubtle(random, count, difficulty, report)
      : solveJs(random, count, difficulty, report);
    self.postMessage({ done: proofs });
  } catch (err) {
    self.postMessage({ error: String((err && err.message) || err) });
  }
};
