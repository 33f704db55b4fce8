/**
 * This server's CURVE key pair for the node managers' TCP link (DESIGN.md section 2): the secret
 * key in `<state>/curve.key` (Paths.curveSecretKey, written by `tandem keys generate`), the public keys of every server
 * in the configuration. A node manager that cannot prove the key the others expect does not start.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { TandemError, type Config } from '@tandem/core';
import { z85Decode, z85Encode } from './z85.js';

/** Written by `tandem keys generate` (the CLI keeps the same names). */

export interface CurveKeys {
  publicKey: string;
  secretKey: string;
}

// PKCS#8 header of a raw X25519 private key (RFC 8410): node:crypto takes the 32 key bytes after it.
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** The public key of a CURVE secret key (both Z85): CURVE keys are X25519 keys. Undefined when the text is not a key. */
export function curvePublicKeyOf(secretKey: string): string | undefined {
  const secret = z85Decode(secretKey);
  if (secret?.length !== 32) return undefined;
  const key = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, secret]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return z85Encode(spki.subarray(spki.length - 32));
}

/**
 * Loads this server's key pair and checks it against the configuration: this server and every
 * peer must have a publicKey, and the key file must hold the secret of this server's publicKey.
 */
export function loadCurveKeys(config: Config, server: string, path: string): CurveKeys {
  const own = config.servers.find((s) => s.name === server);
  if (!own?.publicKey) {
    throw new TandemError(
      'NOT_FOUND',
      `server ${server} has no publicKey in the configuration: run tandem keys generate on ${server} and add the publicKey line it prints to ${server}'s entry`,
    );
  }
  const unkeyed = config.servers.filter((s) => s.name !== server && !s.publicKey).map((s) => s.name);
  if (unkeyed.length > 0) {
    throw new TandemError(
      'NOT_FOUND',
      `server ${unkeyed.join(', ')} has no publicKey in the configuration: node managers refuse peers without a listed key (run tandem keys generate there)`,
    );
  }
  let secretKey: string;
  try {
    secretKey = readFileSync(path, 'utf8').trim();
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : `cannot be read (${(err as Error).message})`;
    throw new TandemError('NOT_FOUND', `CURVE secret key ${path} ${why}: run tandem keys generate on ${server}`);
  }
  // A secret others can read is no secret: whoever reads it can pose as this server.
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new TandemError('REFUSED', `CURVE secret key ${path} is readable by others (mode ${mode.toString(8)}): chmod 600 ${path}`);
  }
  const publicKey = curvePublicKeyOf(secretKey);
  if (!publicKey)
    throw new TandemError('BAD_REQUEST', `CURVE secret key ${path} is not a 40-character Z85 key: run tandem keys generate --force`);
  if (publicKey !== own.publicKey) {
    throw new TandemError(
      'CONFLICT',
      `CURVE secret key ${path} does not match ${server}'s publicKey in the configuration (the key file's public key is ${publicKey}): correct the configuration or run tandem keys generate --force`,
    );
  }
  return { publicKey, secretKey };
}
