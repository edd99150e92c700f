import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { childEnvironment, WORKLOAD_IDENTITY_ENVIRONMENT } from '../../src/upstream/environment.js';

const proxyEnv = {
  PATH: '/usr/local/bin:/usr/bin',
  HOME: '/home/proxy',
  LANG: 'C.UTF-8',
  LC_ALL: 'C.UTF-8',
  LC_TIME: 'en_GB.UTF-8',
  TMPDIR: '/scratch',
  HTTPS_PROXY: 'http://egress:3128',
  no_proxy: 'localhost',
  NODE_EXTRA_CA_CERTS: '/etc/ssl/corp.pem',
  npm_config_cache: '/cache/npm',
  UV_CACHE_DIR: '/cache/uv',
  AZURE_CLIENT_ID: 'client-id',
  AZURE_TENANT_ID: 'tenant-id',
  AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/token',
  AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com/',
  INTERNAL_KEY: 'secret-from-the-manifest',
  AZURE_CLIENT_SECRET: 'never-passed',
  NODE_OPTIONS: '--inspect',
  PATHEXT: 'not-a-prefix-match',
  UNSET: undefined,
};

const base = {
  PATH: '/usr/local/bin:/usr/bin',
  HOME: '/home/proxy',
  LANG: 'C.UTF-8',
  LC_ALL: 'C.UTF-8',
  LC_TIME: 'en_GB.UTF-8',
  TMPDIR: '/scratch',
  HTTPS_PROXY: 'http://egress:3128',
  no_proxy: 'localhost',
  NODE_EXTRA_CA_CERTS: '/etc/ssl/corp.pem',
  npm_config_cache: '/cache/npm',
  UV_CACHE_DIR: '/cache/uv',
};

test('a child gets the base and nothing else of the proxy environment', () => {
  assert.equal(childEnvironment({ env: {}, useWorkloadIdentity: false }, proxyEnv), base);
});

test('workload identity variables reach the child only when it asks for them', () => {
  const env = childEnvironment({ env: {}, useWorkloadIdentity: true }, proxyEnv);
  assert.equal(env, {
    ...base,
    AZURE_CLIENT_ID: 'client-id',
    AZURE_TENANT_ID: 'tenant-id',
    AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/token',
    AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com/',
  });
  assert.is(env.AZURE_CLIENT_SECRET, undefined);
  assert.equal(
    [...WORKLOAD_IDENTITY_ENVIRONMENT].sort(),
    Object.keys(env)
      .filter((k) => k.startsWith('AZURE_'))
      .sort(),
  );
});

test("the server's own env wins over the base and over workload identity", () => {
  const env = childEnvironment(
    {
      env: { PATH: '/opt/tool/bin', AZURE_CLIENT_ID: 'other-client', INTERNAL_KEY: 'given-on-purpose' },
      useWorkloadIdentity: true,
    },
    proxyEnv,
  );
  assert.is(env.PATH, '/opt/tool/bin');
  assert.is(env.AZURE_CLIENT_ID, 'other-client');
  assert.is(env.AZURE_TENANT_ID, 'tenant-id');
  assert.is(env.INTERNAL_KEY, 'given-on-purpose');
});

test('a variable missing from the proxy is missing from the child, an empty one stays empty', () => {
  const env = childEnvironment({ env: {}, useWorkloadIdentity: true }, { PATH: '', UNSET: undefined });
  assert.equal(env, { PATH: '' });
});

test('the result is a fresh object: neither input is changed', () => {
  const spec = { env: { A: '1' }, useWorkloadIdentity: false };
  const env = childEnvironment(spec, proxyEnv);
  env.A = '2';
  assert.equal(spec.env, { A: '1' });
  assert.is(proxyEnv.PATH, '/usr/local/bin:/usr/bin');
});

test.run();
