/**
 * Throwaway certificates for TLS tests and benchmarks (openssl on PATH): EC P-256 CAs valid for a day, and
 * certificates they sign that serve as TLS server and client for 127.0.0.1. Files in `dir`: NAME-ca.crt and
 * NAME-ca.key for a CA, NAME.crt and NAME.key for a certificate.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const EXTENSIONS = 'ext.cnf';

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

export function makeCa(dir: string, name: string): void {
  openssl(
    dir,
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    `${name}-ca.key`,
    '-out',
    `${name}-ca.crt`,
    '-subj',
    `/CN=${name} test CA`,
    '-days',
    '1',
  );
}

export function makeCert(dir: string, ca: string, name: string): void {
  if (!existsSync(join(dir, EXTENSIONS))) {
    writeFileSync(join(dir, EXTENSIONS), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  }
  openssl(dir, 'req', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}-ca.crt`,
    '-CAkey',
    `${ca}-ca.key`,
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '1',
    '-extfile',
    EXTENSIONS,
  );
}

/** The files of certificate `name` signed by CA `ca`, as the TLS config names them. */
export function pkiFiles(dir: string, ca: string, name: string): { ca: string; cert: string; key: string } {
  return { ca: join(dir, `${ca}-ca.crt`), cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}
