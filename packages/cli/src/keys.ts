/**
 * `tandem keys generate`: this server's CURVE key pair for the link between node managers
 * (DESIGN.md section 2). The secret key stays in the state directory (mode 0600), where tandem-nm
 * reads it; the public key goes into this server's entry of cluster.yaml on every server.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { curveKeyPair } from 'zeromq';
import { TandemError, writeFileAtomic, type Paths } from '@tandem/core';

export interface GeneratedKeys {
  publicKey: string;
  secretPath: string;
  publicPath: string;
}

/** Writes a new key pair where tandem-nm reads it; an existing secret key is kept unless `force`. */
export function generateKeys(paths: Pick<Paths, 'curveSecretKey' | 'curvePublicKey'>, force: boolean): GeneratedKeys {
  const secretPath = paths.curveSecretKey;
  const publicPath = paths.curvePublicKey;
  if (!force && (existsSync(secretPath) || existsSync(publicPath))) {
    throw new TandemError(
      'CONFLICT',
      `${secretPath} already exists: a new key pair would lock this server out until every server's configuration has its new publicKey (use --force to replace it)`,
    );
  }
  const { publicKey, secretKey } = curveKeyPair();
  mkdirSync(dirname(secretPath), { recursive: true, mode: 0o700 });
  // Through a fresh temporary file, so the secret never sits in a file with wider permissions.
  writeFileAtomic(secretPath, `${secretKey}\n`, 0o600);
  writeFileAtomic(publicPath, `${publicKey}\n`, 0o644);
  return { publicKey, secretPath, publicPath };
}
