import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { bypassesProxy, egressRoute } from '../../src/upstream/egress-proxy.js';

const bypasses = (url: string, noProxy: string) => bypassesProxy(new URL(url), noProxy);

test('NO_PROXY: a name matches itself and the names under it, with or without a leading dot or *.', () => {
  for (const entry of ['example.com', '.example.com', '*.example.com', 'EXAMPLE.com']) {
    assert.ok(bypasses('https://example.com/mcp', entry), `${entry} matches example.com`);
    assert.ok(bypasses('https://api.example.com/mcp', entry), `${entry} matches api.example.com`);
    assert.ok(bypasses('https://a.b.example.com/mcp', entry), `${entry} matches a.b.example.com`);
    assert.not.ok(bypasses('https://notexample.com/mcp', entry), `${entry} does not match notexample.com`);
    assert.not.ok(bypasses('https://example.com.evil.org/mcp', entry), `${entry} is a suffix match only`);
  }
  assert.ok(bypasses('https://API.Example.COM/mcp', 'example.com'), 'names are compared without case');
});

test('NO_PROXY: a list is split on commas and white space; any entry may match', () => {
  const list = ' internal.corp ,\t.svc.cluster.local  example.org,,';
  assert.ok(bypasses('https://mcp.ns.svc.cluster.local/mcp', list));
  assert.ok(bypasses('https://example.org/', list));
  assert.ok(bypasses('http://internal.corp:8080/', list));
  assert.not.ok(bypasses('https://example.com/', list));
  assert.not.ok(bypasses('https://example.com/', ''));
  assert.not.ok(bypasses('https://example.com/', ' , '));
});

test('NO_PROXY: * alone sends everything directly; inside a name it is no wildcard', () => {
  assert.ok(bypasses('https://anything.example/', '*'));
  assert.ok(bypasses('http://10.1.2.3/', 'example.org,*'));
  assert.not.ok(bypasses('https://api.example.com/', 'api.*.com'));
});

test('NO_PROXY: :port limits an entry to that port, the scheme’s port when the URL names none', () => {
  assert.ok(bypasses('https://example.com:8443/', 'example.com:8443'));
  assert.not.ok(bypasses('https://example.com/', 'example.com:8443'));
  assert.ok(bypasses('https://example.com/', 'example.com:443'));
  assert.ok(bypasses('http://example.com/', 'example.com:80'));
  assert.not.ok(bypasses('http://example.com/', 'example.com:443'));
  assert.ok(bypasses('https://10.0.0.5:9000/', '10.0.0.5:9000'));
  assert.not.ok(bypasses('https://10.0.0.5:9001/', '10.0.0.5:9000'));
  assert.ok(bypasses('https://[fd00::1]:9000/', '[fd00::1]:9000'));
  assert.not.ok(bypasses('https://[fd00::1]:9001/', '[fd00::1]:9000'));
  assert.not.ok(bypasses('https://example.com:8443/', 'example.com:0'), 'port 0 is no port: ignored');
});

test('NO_PROXY: an address matches that address, a range the addresses in it; never a name', () => {
  const aks = 'localhost,127.0.0.1,10.0.0.0/16,10.224.0.0/12,fd00:1::/64,konnectivity,.svc,.cluster.local';
  assert.ok(bypasses('https://10.0.12.3/', aks));
  assert.ok(bypasses('https://10.230.1.1:8443/', aks));
  assert.not.ok(bypasses('https://10.1.0.1/', aks));
  assert.ok(bypasses('https://[fd00:1::abcd]/', aks));
  assert.not.ok(bypasses('https://[fd00:2::abcd]/', aks));
  assert.ok(bypasses('https://[fd00::1]/', 'fd00::1'), 'a bare IPv6 address');
  assert.ok(bypasses('https://[fd00::1]/', '[fd00:0:0::1]'), 'written differently, the same address');
  assert.ok(bypasses('https://192.168.1.7/', '192.168.1.7'));
  assert.not.ok(bypasses('https://192.168.1.70/', '192.168.1.7'), 'an address is no prefix of another');
  assert.not.ok(bypasses('https://192.168.1.7/', '1.7'), 'part of an address is no suffix of it');
  // Names are not resolved: a name is matched by names only, even one that looks like part of an address.
  assert.not.ok(bypasses('https://db.10.0.0.1.nip.io/', '10.0.0.1'));
  assert.not.ok(bypasses('https://mcp.example/', '10.0.0.0/8'));
});

test('NO_PROXY: entries that are no name, address or range are left out, not matched loosely', () => {
  for (const entry of ['10.0.0.0/33', 'fd00::/129', '10.0.0.0/x', 'example.com/8', '.', '*.']) {
    assert.not.ok(bypasses('https://10.0.0.1/', entry), entry);
    assert.not.ok(bypasses('https://example.com/', entry), entry);
  }
  assert.ok(bypasses('https://example.com/', '10.0.0.0/33,example.com'), 'the other entries still count');
});

const proxyOf = (url: string, env: Record<string, string>) => {
  const route = egressRoute(new URL(url), env);
  return route.kind === 'proxy' ? route.proxy : route;
};

test('no proxy variable: direct', () => {
  assert.equal(egressRoute(new URL('https://example.com/mcp'), {}), { kind: 'direct' });
  assert.equal(egressRoute(new URL('https://example.com/mcp'), { HTTPS_PROXY: '' }), { kind: 'direct' });
});

test('https servers use HTTPS_PROXY, http servers HTTP_PROXY, each ignoring the other', () => {
  const env = { HTTPS_PROXY: 'http://secure-egress:3128', HTTP_PROXY: 'http://plain-egress:8080' };
  assert.equal(proxyOf('https://example.com/mcp', env), {
    variable: 'HTTPS_PROXY',
    host: 'secure-egress',
    port: 3128,
    name: 'secure-egress:3128',
  });
  assert.equal(proxyOf('http://example.com/mcp', env), {
    variable: 'HTTP_PROXY',
    host: 'plain-egress',
    port: 8080,
    name: 'plain-egress:8080',
  });
  assert.equal(proxyOf('https://example.com/mcp', { HTTP_PROXY: 'http://p:1' }), { kind: 'direct' });
  assert.equal(proxyOf('http://example.com/mcp', { HTTPS_PROXY: 'http://p:1' }), { kind: 'direct' });
});

test('the lower-case variable wins over the upper-case one, unless it is empty', () => {
  const both = { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2', no_proxy: '', NO_PROXY: 'x' };
  assert.is((proxyOf('https://example.com/', both) as { name: string }).name, 'lower:1');
  assert.is(
    (proxyOf('https://example.com/', { ...both, https_proxy: '' }) as { name: string }).name,
    'upper:2',
  );
  assert.equal(proxyOf('https://x/', both), { kind: 'direct' }, 'an empty no_proxy gives way to NO_PROXY');
  assert.is(
    (proxyOf('https://x/', { ...both, no_proxy: 'y' }) as { name: string }).name,
    'lower:1',
    'no_proxy wins over NO_PROXY',
  );
});

test('a proxy URL without scheme or port is http:// on port 80; IPv6 hosts lose their brackets', () => {
  assert.equal(proxyOf('https://example.com/', { HTTPS_PROXY: 'egress.corp' }), {
    variable: 'HTTPS_PROXY',
    host: 'egress.corp',
    port: 80,
    name: 'egress.corp:80',
  });
  assert.equal(proxyOf('https://example.com/', { HTTPS_PROXY: 'http://[fd00::3128]:3128/' }), {
    variable: 'HTTPS_PROXY',
    host: 'fd00::3128',
    port: 3128,
    name: '[fd00::3128]:3128',
  });
});

test('credentials in the proxy URL become Basic authorization, decoded first; the name keeps none', () => {
  const proxy = proxyOf('https://example.com/', { HTTPS_PROXY: 'http://svc%40corp:p%3Ass%20w@egress:3128' });
  assert.equal(proxy, {
    variable: 'HTTPS_PROXY',
    host: 'egress',
    port: 3128,
    name: 'egress:3128',
    authorization: `Basic ${Buffer.from('svc@corp:p:ss w').toString('base64')}`,
  });
  const userOnly = proxyOf('https://example.com/', { HTTPS_PROXY: 'http://token@egress:3128' });
  assert.is((userOnly as { authorization: string }).authorization, `Basic ${btoa('token:')}`);
});

test('a proxy URL that cannot be used is reported without quoting it', () => {
  const cases: [string, string][] = [
    ['socks5://user:hunter2@egress:1080', 'HTTPS_PROXY is a socks5: URL; only http:// proxies are supported'],
    ['https://user:hunter2@egress:3128', 'HTTPS_PROXY is a https: URL; only http:// proxies are supported'],
    ['http://user:hunter2@[egress:3128', 'HTTPS_PROXY is not a URL'],
    [
      'http://user:hunter2%zz@egress:3128',
      'HTTPS_PROXY has a user or password that is not valid percent-encoding',
    ],
  ];
  for (const [value, reason] of cases) {
    assert.equal(egressRoute(new URL('https://example.com/'), { HTTPS_PROXY: value }), {
      kind: 'unusable',
      reason,
    });
  }
});

test('loopback is never proxied, whatever NO_PROXY says; names that merely look like it are', () => {
  const env = {
    HTTPS_PROXY: 'http://egress:3128',
    HTTP_PROXY: 'http://egress:3128',
    NO_PROXY: 'example.org',
  };
  for (const url of [
    'https://localhost:8443/',
    'http://127.0.0.1/',
    'https://127.1.2.3/',
    'http://[::1]:8080/',
  ]) {
    assert.equal(egressRoute(new URL(url), env), { kind: 'direct' }, url);
  }
  for (const url of ['https://127.example.com/', 'https://localhost.example.com/', 'https://[::2]/']) {
    assert.is(egressRoute(new URL(url), env).kind, 'proxy', url);
  }
});

test('NO_PROXY keeps a matching server from the proxy, and from an unusable proxy URL', () => {
  const env = { HTTPS_PROXY: 'socks5://egress:1080', NO_PROXY: '.corp' };
  assert.equal(egressRoute(new URL('https://mcp.corp/'), env), { kind: 'direct' });
  assert.is(egressRoute(new URL('https://mcp.example/'), env).kind, 'unusable');
});

test.run();
