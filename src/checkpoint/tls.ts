import { readFile } from 'node:fs/promises';
import type { ConnectionOptions, TlsOptions } from 'node:tls';
import { ConfigError } from '../config/errors.js';
import type { Logger } from '../log.js';

/**
 * The control channel's security: mutual TLS (each side proves itself with a certificate signed by the
 * configured CA) or, only when asked for by name, plaintext.
 */
export type ControlSecurity = { kind: 'tls'; ca: string; cert: string; key: string } | { kind: 'plaintext' };

/** PEM bytes, loaded once at startup. */
export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/**
 * Reads the PEM files named by the config. An edge: a missing or unreadable file throws ConfigError naming
 * the field, so the process stops at startup instead of at the first connection. Returns null for plaintext,
 * after a warning that every byte of VM state will cross the network readable and forgeable.
 */
export async function loadControlSecurity(security: ControlSecurity, logger: Logger): Promise<TlsMaterial | null> {
  if (security.kind === 'plaintext') {
    logger.warn(
      { security: 'plaintext' },
      'checkpoint control channel is PLAINTEXT: VM state and sync points are neither encrypted nor authenticated',
    );
    return null;
  }
  const read = async (field: 'ca' | 'cert' | 'key', path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new ConfigError(`tls.${field}`, 'a readable PEM file', `${path} (${(err as Error).message})`);
    }
  };
  return {
    ca: await read('ca', security.ca),
    cert: await read('cert', security.cert),
    key: await read('key', security.key),
  };
}

/**
 * AEAD suites only, AES-128-GCM first: on a state transfer the cipher is the cost, and AES-128-GCM measured
 * 20-30 % faster than Node's default first choice (AES-256-GCM) on the same pair (bench/checkpoint.ts),
 * at a security margin TLS 1.3 requires every implementation to accept.
 */
export const CONTROL_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** The listening side demands a client certificate from the CA and refuses every other. */
export function serverTlsOptions(material: TlsMaterial): TlsOptions {
  return {
    ca: material.ca,
    cert: material.cert,
    key: material.key,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    ciphers: CONTROL_CIPHERS,
    honorCipherOrder: true,
  };
}

/**
 * The connecting side checks the server's certificate against the CA only: the CA is private to this
 * COLO pair, so holding a certificate it signed is the identity. Hostnames are not checked because
 * replication links are often addressed by IP on a dedicated network (docs/protocol.md).
 */
export function clientTlsOptions(material: TlsMaterial): ConnectionOptions {
  return {
    ca: material.ca,
    cert: material.cert,
    key: material.key,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    ciphers: CONTROL_CIPHERS,
    checkServerIdentity: () => undefined,
  };
}
