/**
 * The authority's signature over a map: Ed25519 (RFC 8032) from node:crypto over a
 * domain-separation tag followed by the map's canonical bytes. The public key travels in
 * cluster.json (SPKI DER, base64); the private key stays in the authority's directory
 * (PKCS#8 PEM, mode 0600).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

const TAG = Buffer.from('cairn-map-signature-v1\0', 'utf8');

/** A new authority key pair: public key as base64 SPKI DER, private key as PKCS#8 PEM. */
export function generateAuthorityKeys(): { publicKey: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/** Parses a base64 SPKI DER Ed25519 public key. @throws Error when it is not one. */
export function parsePublicKey(base64: string): KeyObject {
  const k = createPublicKey({ key: Buffer.from(base64, 'base64'), format: 'der', type: 'spki' });
  if (k.asymmetricKeyType !== 'ed25519') throw new Error(`authority key is ${k.asymmetricKeyType}, not ed25519`);
  return k;
}

/** Parses a PKCS#8 PEM Ed25519 private key. @throws Error when it is not one. */
export function parsePrivateKey(pem: string): KeyObject {
  const k = createPrivateKey(pem);
  if (k.asymmetricKeyType !== 'ed25519') throw new Error(`authority key is ${k.asymmetricKeyType}, not ed25519`);
  return k;
}

/** Ed25519 signature (64 bytes) of canonical map bytes. */
export function signMapBytes(bytes: Uint8Array, key: KeyObject): Buffer {
  return sign(null, Buffer.concat([TAG, bytes]), key);
}

/** True when `signature` is the authority's signature of `bytes`. */
export function verifyMapBytes(bytes: Uint8Array, signature: Uint8Array, key: KeyObject): boolean {
  try {
    return verify(null, Buffer.concat([TAG, bytes]), key, signature);
  } catch {
    return false;
  }
}
