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

/** The listening side demands a client certificate from the CA and refuses every other. */
export function serverTlsOptions(material: TlsMaterial): TlsOptions {
  return {
    ca: material.ca,
    cert: material.cert,
    key: material.key,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
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
    checkServerIdentity: () => undefined,
  };
}
