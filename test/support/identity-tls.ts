import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCertificates {
  /** The throwaway CA's certificate: what NODE_EXTRA_CA_CERTS points at. */
  caFile: string;
  /** Key and certificate of a server at 127.0.0.1 (and the names asked for), signed by that CA. */
  key: Buffer;
  cert: Buffer;
}

/** EC keys: made in milliseconds, where RSA takes a noticeable while. */
const EC_KEY = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';

/**
 * Makes a CA and a server certificate for 127.0.0.1 and `names` with the openssl CLI, in `dir` (a temp dir
 * the caller removes): keys are made per run and never stored with the repository.
 */
export function makeTestCertificates(dir: string, names: readonly string[] = []): TestCertificates {
  /** `words` is split on spaces; `rest` (values with spaces) is passed as it is. */
  const openssl = (words: string, ...rest: string[]) =>
    execFileSync('openssl', [...words.split(' '), ...rest], { cwd: dir, stdio: 'pipe', timeout: 10_000 });
  openssl(
    `req -x509 ${EC_KEY} -keyout ca.key -out ca.pem -days 1`,
    '-subj',
    '/CN=mcp-proxy test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
  );
  openssl(`req ${EC_KEY} -keyout server.key -out server.csr -subj /CN=127.0.0.1`);
  // Node checks the address and names against subjectAltName, not the common name.
  writeFileSync(
    join(dir, 'server.ext'),
    `subjectAltName=${['IP:127.0.0.1', ...names.map((name) => `DNS:${name}`)].join(',')}\n` +
      'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  openssl(
    'x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile server.ext',
  );
  return {
    caFile: join(dir, 'ca.pem'),
    key: readFileSync(join(dir, 'server.key')),
    cert: readFileSync(join(dir, 'server.pem')),
  };
}
