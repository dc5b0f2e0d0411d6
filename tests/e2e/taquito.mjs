// The Taquito side of pawl's end-to-end tests.
//
// Usage: node taquito.mjs COMMANDS.json  — runs the commands in order and prints one JSON array
// of results on stdout. No stdin. Every command is independent of pawl's code: RemoteSigner
// verifies each signature it gets (blake2b + Ed25519 / secp256k1 / P-256), local-forging forges
// operations, InMemorySigner computes reference signatures and proofs of possession.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const { RemoteSigner } = require('@taquito/remote-signer');
const { InMemorySigner } = require('@taquito/signer');
const { LocalForger } = require('@taquito/local-forging');
const utils = require('@taquito/utils');

function errorInfo(ex) {
  const cause = ex && ex.cause;
  return {
    ok: false,
    error: ex && ex.name ? ex.name : String(ex),
    message: ex && ex.message ? String(ex.message) : String(ex),
    status: (ex && ex.status) ?? (cause && cause.status) ?? null,
  };
}

const handlers = {
  // RemoteSigner.sign: POST /keys/<pkh>, then GET /keys/<pkh>, pkh check and signature check.
  async remote_sign({ url, pkh, hex, watermark }) {
    const signer = new RemoteSigner(pkh, url);
    const wm = watermark === undefined ? undefined : utils.hex2buf(watermark);
    const r = await signer.sign(hex, wm);
    return { ok: true, prefixSig: r.prefixSig, sig: r.sig, sbytes: r.sbytes };
  },
  async remote_pk({ url, pkh }) {
    const signer = new RemoteSigner(pkh, url);
    return { ok: true, publicKey: await signer.publicKey() };
  },
  // @taquito/utils verifySignature: Ed25519 / secp256k1 / P-256 over blake2b-256, BLS (POP
  // ciphersuite) over the raw bytes; `pop` checks a proof of possession instead.
  async verify({ hex, pk, sig, pop }) {
    return { ok: true, valid: utils.verifySignature(hex, pk, sig, undefined, pop === true) };
  },
  async forge({ operation }) {
    return { ok: true, hex: await new LocalForger().forge(operation) };
  },
  async key_info({ secret }) {
    const s = await InMemorySigner.fromSecretKey(secret);
    return { ok: true, pk: await s.publicKey(), pkh: await s.publicKeyHash() };
  },
  async local_sign({ secret, hex }) {
    const s = await InMemorySigner.fromSecretKey(secret);
    const r = await s.sign(hex);
    return { ok: true, prefixSig: r.prefixSig };
  },
  async prove_possession({ secret }) {
    const s = await InMemorySigner.fromSecretKey(secret);
    const r = await s.provePossession();
    return { ok: true, prefixSig: r.prefixSig };
  },
};

// HTTPS: the CA comes from NODE_EXTRA_CA_CERTS; a command may name a client certificate and key
// (PEM files) for mutual TLS. RemoteSigner's HTTP backend (node-fetch 2) uses Node's https
// global agent, whose options every request takes.
const https = require('node:https');

const commands = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const results = [];
for (const cmd of commands) {
  delete https.globalAgent.options.cert;
  delete https.globalAgent.options.key;
  if (cmd.tls_cert) {
    https.globalAgent.options.cert = readFileSync(cmd.tls_cert);
    https.globalAgent.options.key = readFileSync(cmd.tls_key);
  }
  const handler = handlers[cmd.op];
  if (!handler) {
    results.push({ ok: false, error: 'UnknownCommand', message: cmd.op, status: null });
    continue;
  }
  try {
    results.push(await handler(cmd));
  } catch (ex) {
    results.push(errorInfo(ex));
  }
}
process.stdout.write(JSON.stringify(results));
