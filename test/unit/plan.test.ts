import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { planReload, type Down } from '../../src/fleet/plan.js';
import { loadManifest } from '../../src/manifest/load.js';
import type { ServerSpec } from '../../src/manifest/types.js';

const servers = (yaml: string): ServerSpec[] => {
  const result = loadManifest({ file: 'm.yaml', bytes: yaml, env: {}, baseDir: '/srv' });
  if (!result.manifest) throw new Error(JSON.stringify(result.diagnostics));
  return result.manifest.servers;
};

const actions = (before: string, after: string, down: Record<string, Down> = {}) =>
  planReload(servers(before), servers(after), new Map(Object.entries(down))).map(
    (s) => `${s.name}:${s.action}${s.changed.length ? `(${s.changed.join(',')})` : ''}`,
  );

const BASE = `
servers:
  a: { command: node, args: [a.js], env: { X: '1', Y: '2' } }
  b: { url: 'https://b.example/mcp', headers: { K: v } }
  c: { command: node, args: [c.js] }
`;

test('an unchanged manifest keeps everything', () => {
  assert.equal(actions(BASE, BASE), ['a:keep', 'b:keep', 'c:keep']);
});

test('key order inside env and headers is not a change', () => {
  const reordered = BASE.replace("{ X: '1', Y: '2' }", "{ Y: '2', X: '1' }");
  assert.equal(actions(BASE, reordered), ['a:keep', 'b:keep', 'c:keep']);
});

test('added and removed servers', () => {
  const after = `
servers:
  a: { command: node, args: [a.js], env: { X: '1', Y: '2' } }
  d: { command: node, args: [d.js] }
`;
  assert.equal(actions(BASE, after), ['a:keep', 'd:add', 'b:remove', 'c:remove']);
});

test('what changes the running upstream restarts it', () => {
  const cases: [string, string][] = [
    ['args: [a.js]', 'args: [a2.js]'],
    ["env: { X: '1', Y: '2' }", "env: { X: '1', Y: '3' }"],
    ['a: { command: node,', 'a: { command: python,'],
    [
      "a: { command: node, args: [a.js], env: { X: '1', Y: '2' } }",
      "a: { command: node, args: [a.js], env: { X: '1', Y: '2' }, isolation: session }",
    ],
    [
      "a: { command: node, args: [a.js], env: { X: '1', Y: '2' } }",
      "a: { command: node, args: [a.js], env: { X: '1', Y: '2' }, cwd: /tmp }",
    ],
    [
      "a: { command: node, args: [a.js], env: { X: '1', Y: '2' } }",
      "a: { command: node, args: [a.js], env: { X: '1', Y: '2' }, useWorkloadIdentity: true }",
    ],
  ];
  for (const [from, to] of cases) {
    const [a] = planReload(servers(BASE), servers(BASE.replace(from, to)));
    assert.is(a!.action, 'restart', `${from} -> ${to}`);
  }
  const [, b] = planReload(servers(BASE), servers(BASE.replace('{ K: v }', '{ K: w }')));
  assert.equal([b!.action, b!.changed], ['restart', ['headers']]);
});

test('a remote server changing kind to stdio restarts', () => {
  const after = BASE.replace(
    "b: { url: 'https://b.example/mcp', headers: { K: v } }",
    'b: { command: node }',
  );
  assert.is(planReload(servers(BASE), servers(after))[1]!.action, 'restart');
});

test('settings that can change live are updates', () => {
  const after = BASE.replace(
    'c: { command: node, args: [c.js] }',
    'c: { command: node, args: [c.js], description: new, maxSessions: 3, idleTimeout: 1m, timeout: 5s, restart: never, drainTimeout: 1s }',
  );
  assert.equal(actions(BASE, after), [
    'a:keep',
    'b:keep',
    'c:update(description,drainTimeoutMs,idleTimeoutMs,maxSessions,restart,timeoutMs)',
  ]);
});

test('a server that had failed is started again, whatever changed; the others are not touched', () => {
  const failed = { c: 'failed' } as const;
  assert.equal(actions(BASE, BASE, failed), ['a:keep', 'b:keep', 'c:restart(failed)']);
  const updated = BASE.replace(
    'c: { command: node, args: [c.js] }',
    'c: { command: node, args: [c.js], restart: never }',
  );
  assert.equal(actions(BASE, updated, failed), ['a:keep', 'b:keep', 'c:restart(restart,failed)']);
  const moved = BASE.replace('args: [c.js]', 'args: [c2.js]');
  assert.equal(actions(BASE, moved, failed), ['a:keep', 'b:keep', 'c:restart(args,failed)']);
  // Removed or disabled, it goes as any other server would.
  const without = BASE.replace('  c: { command: node, args: [c.js] }\n', '');
  assert.equal(actions(BASE, without, failed), ['a:keep', 'b:keep', 'c:remove']);
});

test('a server its restart policy let stop stays stopped, until its entry changes', () => {
  const stopped = { c: 'stopped' } as const;
  assert.equal(actions(BASE, BASE, stopped), ['a:keep', 'b:keep', 'c:keep']);
  // A new policy (or anything else) for it is the operator's word: it is started again under it.
  const always = BASE.replace(
    'c: { command: node, args: [c.js] }',
    'c: { command: node, args: [c.js], restart: on-failure }',
  );
  assert.equal(actions(BASE, always, stopped), ['a:keep', 'b:keep', 'c:restart(restart,stopped)']);
  const described = BASE.replace('args: [c.js] }', 'args: [c.js], description: d }');
  assert.equal(actions(BASE, described, stopped), ['a:keep', 'b:keep', 'c:restart(description,stopped)']);
});

test('what does not change the connection does not restart it: header name case, an unused scope', () => {
  assert.equal(actions(BASE, BASE.replace('{ K: v }', '{ k: v }')), ['a:keep', 'b:keep', 'c:keep']);
  const scoped = BASE.replace('headers: { K: v } }', "headers: { K: v }, scope: 'api://x/.default' }");
  assert.equal(actions(BASE, scoped), ['a:keep', 'b:update(scope)', 'c:keep']);
  const identity = BASE.replace(
    'headers: { K: v } }',
    "headers: { K: v }, useWorkloadIdentity: true, scope: 'api://x/.default' }",
  );
  const otherScope = identity.replace('api://x/', 'api://y/');
  assert.equal(actions(identity, otherScope), ['a:keep', 'b:restart(scope)', 'c:keep']);
});

test('disabling a server removes it, enabling adds it', () => {
  const disabled = BASE.replace(
    'c: { command: node, args: [c.js] }',
    'c: { command: node, args: [c.js], disabled: true }',
  );
  assert.equal(actions(BASE, disabled), ['a:keep', 'b:keep', 'c:remove(disabled)']);
  assert.equal(actions(disabled, BASE), ['a:keep', 'b:keep', 'c:add']);
  assert.equal(actions(disabled, disabled), ['a:keep', 'b:keep']);
});

test('defaults are part of each server: changing them reaches every server they apply to', () => {
  const withDefaults = `defaults: { idleTimeout: 1m }\n${BASE}`;
  assert.equal(actions(BASE, withDefaults), [
    'a:update(idleTimeoutMs)',
    'b:update(idleTimeoutMs)',
    'c:update(idleTimeoutMs)',
  ]);
});

test.run();
