import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { once } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { heldAuth, heldKeys, OPS_KEY } from '../support/held-keys.js';
import { readAll } from '../support/http.js';
import { suite } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import {
  connect,
  fixtureCommand,
  isAlive,
  postInitialize,
  postToSession,
  startProxy,
  waitFor,
  within,
  type RunningProxy,
} from '../support/proxy.js';

// Hot reload on real files, with real children and SDK clients. Each test starts its own proxy.

const echo = fixtureCommand('echo');
const server = (name: string, extra = '') =>
  `  ${name}:\n    command: ${JSON.stringify(echo.command)}\n    args: ${JSON.stringify(echo.args)}\n${extra}`;
const manifestOf = (...servers: string[]) => `servers:\n${servers.join('')}`;

interface Listing {
  name: string;
  state: string;
  pids: number[];
  reloadError?: string;
}
interface Status {
  servers: Listing[];
  reload: { result: string; errors: string[]; time: string } | null;
}

const status = async (proxy: RunningProxy): Promise<Status> =>
  (await fetch(`${proxy.url}/servers`, { signal: AbortSignal.timeout(10_000) })).json() as Promise<Status>;
const pidOf = async (proxy: RunningProxy, name: string) =>
  (await status(proxy)).servers.find((s) => s.name === name)?.pids[0];
const text = (result: unknown) => (result as { content: { text: string }[] }).content[0]!.text;
/** The one JSON-RPC message of an answer, sent as JSON or as an SSE event. */
const messageOf = (body: string) => JSON.parse(/^data: (.*)$/m.exec(body)?.[1] ?? body);

/** True once an SDK client can initialize against the server and call echo. */
async function answers(proxy: RunningProxy, name: string): Promise<boolean> {
  try {
    const { client } = await connect(proxy.url, name);
    try {
      return text(await client.callTool({ name: 'echo', arguments: { text: 'x' } })) === 'x';
    } finally {
      await client.close();
    }
  } catch {
    return false;
  }
}

const test = suite('reload');

// How soon an added server answers is the bench's to measure (issue 7's reload figure), not a test's.
test('an added server answers after the write; a removed one answers 404', async () => {
  const proxy = await startProxy(manifestOf(server('one')));
  try {
    writeFileSync(proxy.manifestPath, manifestOf(server('two')));
    await waitFor(() => answers(proxy, 'two'), 10_000, 'the added server to answer');
    await waitFor(
      async () =>
        (await fetch(`${proxy.url}/servers/one/mcp`, { method: 'POST', signal: AbortSignal.timeout(10_000) }))
          .status === 404,
      2000,
      '404',
    );
  } finally {
    await proxy.stop();
  }
});

test('every way of replacing the file reloads: in place, atomic rename, delete and recreate', async () => {
  const proxy = await startProxy(manifestOf(server('base')));
  const path = proxy.manifestPath;
  const styles: [string, (text: string) => Promise<void> | void][] = [
    ['in-place', (t) => writeFileSync(path, t)],
    [
      'atomic',
      (t) => {
        writeFileSync(`${path}.tmp`, t);
        renameSync(`${path}.tmp`, path);
      },
    ],
    [
      'recreate',
      async (t) => {
        unlinkSync(path);
        await new Promise((r) => setTimeout(r, 300));
        writeFileSync(path, t);
      },
    ],
  ];
  try {
    for (const [style, replace] of styles) {
      await replace(manifestOf(server('base'), server(style)));
      await waitFor(() => answers(proxy, style), 10_000, `${style} to reload`);
    }
  } finally {
    await proxy.stop();
  }
});

test('a Kubernetes ConfigMap update (the ..data symlink swapped) reloads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'configmap-'));
  const version = (n: number, text: string) => {
    mkdirSync(join(dir, `..2026_11_21_0${n}`));
    writeFileSync(join(dir, `..2026_11_21_0${n}`, 'mcp-proxy.yaml'), text);
  };
  version(1, manifestOf(server('first')));
  symlinkSync('..2026_11_21_01', join(dir, '..data'));
  symlinkSync('..data/mcp-proxy.yaml', join(dir, 'mcp-proxy.yaml'));
  const proxy = await startProxy(undefined, { config: join(dir, 'mcp-proxy.yaml') });
  try {
    assert.ok(await answers(proxy, 'first'));
    // What kubelet does: a new folder, a temporary link to it, renamed over ..data, the old folder removed.
    version(2, manifestOf(server('first'), server('second')));
    symlinkSync('..2026_11_21_02', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    rmSync(join(dir, '..2026_11_21_01'), { recursive: true });
    await waitFor(() => answers(proxy, 'second'), 10_000, 'the ConfigMap update to reload');
  } finally {
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a changed server gets a new child; an untouched one keeps its pid and its session', async () => {
  const proxy = await startProxy(manifestOf(server('stable'), server('changing')));
  try {
    const { client } = await connect(proxy.url, 'stable');
    try {
      const stablePid = await pidOf(proxy, 'stable');
      const changingPid = await pidOf(proxy, 'changing');
      writeFileSync(
        proxy.manifestPath,
        manifestOf(server('stable'), server('changing', '    env: { V: "2" }\n')),
      );
      await waitFor(
        async () => (await pidOf(proxy, 'changing')) !== changingPid,
        10_000,
        'the changed server to restart',
      );
      assert.is(await pidOf(proxy, 'stable'), stablePid);
      assert.is(
        text(await client.callTool({ name: 'echo', arguments: { text: 'same session' } })),
        'same session',
      );
    } finally {
      await client.close();
    }
  } finally {
    await proxy.stop();
  }
});

test('a client on an untouched server sees zero failures through 20 reloads, valid and invalid', async () => {
  const proxy = await startProxy(manifestOf(server('stable'), server('churn')));
  let client: Client;
  try {
    ({ client } = await connect(proxy.url, 'stable'));
  } catch (error) {
    await proxy.stop();
    throw error;
  }
  let calls = 0;
  const failures: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const got = text(await client.callTool({ name: 'echo', arguments: { text: `c${calls}` } }));
        if (got !== `c${calls}`) failures.push(`wrong answer ${got}`);
      } catch (error) {
        failures.push((error as Error).message);
      }
      calls++;
    }
  })();
  try {
    let churnPid = await pidOf(proxy, 'churn');
    for (let i = 0; i < 20; i++) {
      const valid = i % 4 !== 3;
      const variant = valid
        ? manifestOf(
            server('stable'),
            server('churn', `    env: { ROUND: "${i}" }\n`),
            i % 2 ? server(`extra${i}`) : '',
          )
        : 'servers:\n  stable: [this is: not valid\n';
      const before = calls;
      const previous = (await status(proxy)).reload?.time;
      writeFileSync(proxy.manifestPath, variant);
      // The reload ran (a new report, with the result this text must get) and, if valid, restarted the
      // server it changed: or "zero failures through 20 reloads" would hold with no reload at all.
      const expected = valid ? 'applied' : 'failed';
      await waitFor(
        async () => {
          const now = await status(proxy);
          const churn = now.servers.find((s) => s.name === 'churn')?.pids[0];
          return (
            now.reload !== null &&
            now.reload.time !== previous &&
            now.reload.result === expected &&
            (!valid || (churn !== undefined && churn !== churnPid))
          );
        },
        10_000,
        `reload ${i} to be reported ${expected}${valid ? ' with a new churn child' : ''}`,
      );
      if (valid) churnPid = await pidOf(proxy, 'churn');
      // Calls went on across this reload, or "zero failures" would prove nothing.
      await waitFor(() => calls > before, 10_000, `a call after reload ${i}`);
    }
  } finally {
    running = false;
    await loop;
    await client.close();
    await proxy.stop();
  }
  assert.equal(failures, []);
});

test('a broken manifest changes nothing, is reported with its position, and fixing it reloads', async () => {
  const good = manifestOf(server('kept'));
  const proxy = await startProxy(good);
  try {
    const pid = await pidOf(proxy, 'kept');
    writeFileSync(proxy.manifestPath, `servers:\n  kept:\n    comand: node\n`);
    await waitFor(
      async () => (await status(proxy)).reload?.result === 'failed',
      10_000,
      'the failed reload to be reported',
    );
    const { reload } = await status(proxy);
    assert.match(
      reload!.errors.join('\n'),
      'mcp-proxy.yaml:3:5 servers.kept.comand: unknown key "comand"; did you mean "command"?',
    );
    assert.ok(await answers(proxy, 'kept'), 'the server still answers');
    assert.is(await pidOf(proxy, 'kept'), pid);
    writeFileSync(proxy.manifestPath, manifestOf(server('kept'), server('added')));
    await waitFor(() => answers(proxy, 'added'), 10_000, 'the fixed file to reload');
    assert.is((await status(proxy)).reload?.result, 'applied');
  } finally {
    await proxy.stop();
  }
});

test('a server whose new command does not exist keeps serving its old version, and says so', async () => {
  const proxy = await startProxy(manifestOf(server('svc')));
  try {
    const pid = await pidOf(proxy, 'svc');
    writeFileSync(proxy.manifestPath, 'servers:\n  svc:\n    command: /nonexistent/mcp-server\n');
    await waitFor(
      async () => (await status(proxy)).reload?.result === 'partial',
      10_000,
      'the partial reload',
    );
    const listing = (await status(proxy)).servers.find((s) => s.name === 'svc')!;
    assert.match(listing.reloadError!, 'command /nonexistent/mcp-server does not exist');
    assert.match(listing.reloadError!, 'still serving the previous version');
    assert.equal(listing.pids, [pid]);
    assert.ok(await answers(proxy, 'svc'));
  } finally {
    await proxy.stop();
  }
});

test('sessions on a replaced version keep it until drainTimeout, then get 404 and start over', async () => {
  const proxy = await startProxy(manifestOf(server('drainy', '    drainTimeout: 1500ms\n')));
  const clients: Client[] = [];
  try {
    const a = await connect(proxy.url, 'drainy');
    clients.push(a.client);
    const oldPid = JSON.parse(text(await a.client.callTool({ name: 'whoami', arguments: {} }))).pid;
    writeFileSync(
      proxy.manifestPath,
      manifestOf(server('drainy', '    drainTimeout: 1500ms\n    env: { V: "2" }\n')),
    );
    await waitFor(async () => (await pidOf(proxy, 'drainy')) !== oldPid, 10_000, 'the new version');
    // The open session still reaches its old child; a new session gets the new one.
    assert.is(JSON.parse(text(await a.client.callTool({ name: 'whoami', arguments: {} }))).pid, oldPid);
    const b = await connect(proxy.url, 'drainy');
    clients.push(b.client);
    const newPid = JSON.parse(text(await b.client.callTool({ name: 'whoami', arguments: {} }))).pid;
    assert.is.not(newPid, oldPid);
    // After the drain the old child is gone, and the old session is unknown (404) to the new version.
    await waitFor(() => !isAlive(oldPid), 10_000, 'the old child to stop after draining');
    const stale = await fetch(`${proxy.url}/servers/drainy/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': a.transport.sessionId!,
        'mcp-protocol-version': '2025-11-25',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'ping' }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.is(stale.status, 404);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await proxy.stop();
  }
});

test('an initialize still arriving when its server is replaced is answered by the old version', async () => {
  const proxy = await startProxy(manifestOf(server('swapped')));
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });
  const initialize = request(`${proxy.url}/servers/swapped/mcp`, {
    method: 'POST',
    signal: AbortSignal.timeout(20_000),
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'content-length': String(Buffer.byteLength(body)),
      // The proxy answers 100 Continue as it routes the request: to the version serving then.
      expect: '100-continue',
    },
  });
  // Node sends headers with Expect as soon as it connects.
  const taken = once(initialize, 'continue');
  const answered = once(initialize, 'response') as Promise<[IncomingMessage]>;
  for (const event of [taken, answered]) event.catch(() => {}); // awaited below, unless the test fails first
  try {
    const oldPid = await pidOf(proxy, 'swapped');
    await within(taken, 'the proxy to take the initialize up');
    writeFileSync(proxy.manifestPath, manifestOf(server('swapped', '    env: { V: "2" }\n')));
    await waitFor(async () => (await pidOf(proxy, 'swapped')) !== oldPid, 10_000, 'the new version');
    initialize.end(body);
    const [response] = await within(answered, 'the answer to the initialize');
    const answer = await within(readAll(response), 'the whole answer');
    assert.is(response.statusCode, 200, answer);
    assert.is(messageOf(answer).result.serverInfo.name, 'echo-fixture');
    const session = response.headers['mcp-session-id'] as string;
    const whoami = await postToSession(
      { endpoint: `${proxy.url}/servers/swapped/mcp`, session },
      JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'whoami', arguments: {} },
      }),
    );
    assert.is(JSON.parse(text(messageOf(await whoami.text()).result)).pid, oldPid);
  } finally {
    initialize.destroy();
    await proxy.stop();
  }
});

test('a failed server is started again by the next reload, once its cause is fixed outside the manifest', async () => {
  // As when `uvx` is missing from the image and then installed: the manifest is right all along, so only a
  // reload (SIGHUP, or saving any edit) can say "try again".
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-late-'));
  const launcher = join(dir, 'late-server');
  const proxy = await startProxy(
    manifestOf(server('steady'), `  late:\n    command: ${JSON.stringify(launcher)}\n`),
  );
  try {
    const lateState = async () => (await status(proxy)).servers.find((s) => s.name === 'late')?.state;
    await waitFor(async () => (await lateState()) === 'failed', 10_000, 'late to fail');
    const steadyPid = await pidOf(proxy, 'steady');
    const command = [echo.command, ...echo.args].map((word) => JSON.stringify(word)).join(' ');
    writeFileSync(launcher, `#!/bin/sh\nexec ${command}\n`, { mode: 0o755 });
    proxy.process.kill('SIGHUP');
    await waitFor(() => answers(proxy, 'late'), 10_000, 'late to answer after SIGHUP');
    assert.is(await lateState(), 'ready');
    assert.is(await pidOf(proxy, 'steady'), steadyPid, 'the untouched server is not disturbed');
  } finally {
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

const statusWithKey = async (proxy: RunningProxy): Promise<Status> =>
  (
    await fetch(`${proxy.url}/servers`, {
      headers: { 'x-api-key': OPS_KEY },
      signal: AbortSignal.timeout(10_000),
    })
  ).json() as Promise<Status>;

test('a request whose JWT is still being checked when its server is replaced goes to the new version', async () => {
  // The keys are held back by the test: the request waits in access control while a reload restarts its
  // server and stops the old version, which had nothing to do. It must not be handed to that version.
  const keys = await heldKeys();
  const proxy = await startProxy(heldAuth(keys) + manifestOf(server('guarded')), { env: { OPS_KEY } });
  const pidNow = async () => (await statusWithKey(proxy)).servers.find((s) => s.name === 'guarded')?.pids[0];
  try {
    const oldPid = await pidNow();
    const answer = postInitialize(`${proxy.url}/servers/guarded/mcp`, {
      authorization: `Bearer ${await keys.token('mcp')}`,
    });
    answer.catch(() => {}); // awaited below, unless the test fails first
    await within(keys.asked, 'the proxy to fetch the keys');
    writeFileSync(
      proxy.manifestPath,
      heldAuth(keys) + manifestOf(server('guarded', '    env: { V: "2" }\n')),
    );
    await waitFor(async () => ![undefined, oldPid].includes(await pidNow()), 10_000, 'the new version');
    await waitFor(() => !isAlive(oldPid!), 10_000, 'the old version, idle, to be stopped');
    keys.release();
    const response = await within(answer, 'the answer');
    const body = await response.text();
    assert.is(response.status, 200, body);
    assert.is(messageOf(body).result.serverInfo.name, 'echo-fixture');
  } finally {
    await proxy.stop();
    await keys.close();
  }
});

test('a request whose JWT is still being checked is authorized against the server as the reload left it', async () => {
  // Added while the request waited, with a role the token does not carry: the request must be refused, not
  // served unchecked because there was no server to check against when it came.
  const keys = await heldKeys();
  const proxy = await startProxy(heldAuth(keys) + manifestOf(server('open')), { env: { OPS_KEY } });
  try {
    const answer = postInitialize(`${proxy.url}/servers/late/mcp`, {
      authorization: `Bearer ${await keys.token('mcp', { roles: ['other'] })}`,
    });
    answer.catch(() => {}); // awaited below, unless the test fails first
    await within(keys.asked, 'the proxy to fetch the keys');
    writeFileSync(
      proxy.manifestPath,
      heldAuth(keys) + manifestOf(server('open'), server('late', '    requiredRoles: [late.user]\n')),
    );
    await waitFor(
      async () => (await statusWithKey(proxy)).servers.some((s) => s.name === 'late' && s.state === 'ready'),
      10_000,
      'late to be added',
    );
    keys.release();
    const response = await within(answer, 'the answer');
    assert.is(response.status, 403, await response.text());
  } finally {
    await proxy.stop();
    await keys.close();
  }
});

test('a failed server that fails again on a reload still takes its new settings', async () => {
  const gone = (extra = '') => `  gone:\n    command: /nonexistent/mcp-server\n${extra}`;
  const proxy = await startProxy(manifestOf(server('steady'), gone()));
  try {
    const listing = async () =>
      (await status(proxy)).servers.find((s) => s.name === 'gone') as Listing & { description?: string };
    await waitFor(async () => (await listing()).state === 'failed', 10_000, 'gone to fail');
    const boot = (await status(proxy)).reload!.time; // the boot's own report: partial, gone could not start
    // Renamed into place: a watcher reading a file half written would report a failed reload of its own.
    writeFileSync(
      `${proxy.manifestPath}.tmp`,
      manifestOf(server('steady'), gone('    description: still gone\n')),
    );
    renameSync(`${proxy.manifestPath}.tmp`, proxy.manifestPath);
    await waitFor(
      async () => (await status(proxy)).reload?.time !== boot,
      10_000,
      'the reload that retries it',
    );
    assert.is((await status(proxy)).reload!.result, 'partial');
    // No previous version is kept for it: it served no one.
    assert.is((await listing()).description, 'still gone');
    assert.is((await listing()).reloadError, undefined);
    assert.match((await status(proxy)).reload!.errors.join('\n'), 'gone: could not start');
  } finally {
    await proxy.stop();
  }
});

/** Writes the manifest whole, by rename: a watcher reading a file half written would fail a reload. */
function replaceManifest(proxy: RunningProxy, text: string): void {
  writeFileSync(`${proxy.manifestPath}.tmp`, text);
  renameSync(`${proxy.manifestPath}.tmp`, proxy.manifestPath);
}

/**
 * A server that takes a second to start and says when it began (the file `begun` appears in `dir`): time
 * for another reload to come while it starts.
 */
function slowServer(name: string, dir: string): { entry: string; begun: string } {
  const begun = join(dir, `${name}-begun`);
  const args = ['-c', `touch ${begun}; sleep 1; exec "$0" "$@"`, echo.command, ...echo.args];
  return { entry: `  ${name}:\n    command: sh\n    args: ${JSON.stringify(args)}\n`, begun };
}

test('a lazy server made eager by a reload starts then, and the proxy becomes ready', async () => {
  const proxy = await startProxy(manifestOf(server('a', '    startup: lazy\n')));
  try {
    assert.equal((await status(proxy)).servers[0]!.pids, [], 'not started before its first use');
    replaceManifest(proxy, manifestOf(server('a', '    startup: eager\n')));
    await waitFor(
      async () => {
        const [a] = (await status(proxy)).servers;
        return a!.state === 'ready' && a!.pids.length === 1;
      },
      10_000,
      'a to start',
    );
    assert.is((await fetch(`${proxy.url}/readyz`, { signal: AbortSignal.timeout(10_000) })).status, 200);
  } finally {
    await proxy.stop();
  }
});

test('a server its policy let stop is started again when a reload changes its entry', async () => {
  // It exits at once the first time it runs, and serves from then on: `restart: never` leaves it stopped.
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-once-'));
  const ran = join(dir, 'ran');
  const once = (policy: string) =>
    `  once:\n    command: sh\n    args: ${JSON.stringify(['-c', `[ -e ${ran} ] && exec "$0" "$@"; touch ${ran}`, echo.command, ...echo.args])}\n    restart: ${policy}\n`;
  const proxy = await startProxy(manifestOf(once('never')));
  try {
    const listing = async () => (await status(proxy)).servers[0]!;
    await waitFor(async () => (await listing()).state === 'stopped', 10_000, 'once to stop');
    replaceManifest(proxy, manifestOf(once('on-failure')));
    await waitFor(() => answers(proxy, 'once'), 10_000, 'once to serve under its new policy');
    const { changes } = (await status(proxy)).reload as unknown as { changes: { changed: string[] }[] };
    assert.equal(changes[0]!.changed, ['restart', 'stopped']);
  } finally {
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a broken file stays reported after a slow reload before it finishes', async () => {
  // The slow reload finished last, and its "applied" used to replace the report that the file is broken.
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-slow-'));
  const { entry: slow, begun } = slowServer('one', dir);
  const proxy = await startProxy(manifestOf(server('one')));
  try {
    const oldPid = await pidOf(proxy, 'one');
    replaceManifest(proxy, manifestOf(slow));
    await waitFor(() => existsSync(begun), 10_000, 'the new version to be starting');
    replaceManifest(proxy, 'servers: [not: a map\n');
    await waitFor(async () => (await status(proxy)).reload?.result === 'failed', 10_000, 'the failure');
    await waitFor(async () => ![undefined, oldPid].includes(await pidOf(proxy, 'one')), 10_000, 'the swap');
    assert.is((await status(proxy)).reload!.result, 'failed', 'the newest manifest is the broken one');
  } finally {
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an edit undone while its new version hangs in initialize applies at once, with the next one', async () => {
  // The reload waited for that initialize (up to 120 s), and every later edit waited behind it.
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-hang-'));
  const pidFile = join(dir, 'pid');
  const hangs = `  a:\n    command: sh\n    args: ${JSON.stringify(['-c', `echo $$ > ${pidFile}; exec sleep 1000`])}\n`;
  const proxy = await startProxy(manifestOf(server('a')));
  try {
    const oldPid = await pidOf(proxy, 'a');
    replaceManifest(proxy, manifestOf(hangs));
    await waitFor(() => existsSync(pidFile), 10_000, 'the new version to be starting');
    replaceManifest(proxy, manifestOf(server('a'), server('c')));
    await waitFor(() => answers(proxy, 'c'), 10_000, 'the added server, not held behind the hang');
    assert.is(await pidOf(proxy, 'a'), oldPid, 'the version that ran all along still serves');
    assert.ok(await answers(proxy, 'a'));
    const hung = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(() => !isAlive(hung), 10_000, 'the hanging version to be stopped');
  } finally {
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an added server superseded before it started, then failing, is started by a later reload', async () => {
  // Kept stopped with its first spec, it looked unchanged to every later reload and never ran again.
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-superseded-'));
  const { entry: slow, begun } = slowServer('x', dir);
  const proxy = await startProxy(manifestOf(server('steady')));
  try {
    replaceManifest(proxy, manifestOf(server('steady'), slow));
    await waitFor(() => existsSync(begun), 10_000, 'x to be starting');
    replaceManifest(proxy, manifestOf(server('steady'), '  x:\n    command: /nonexistent/mcp-server\n'));
    await waitFor(
      async () => (await status(proxy)).servers.find((s) => s.name === 'x')?.state === 'failed',
      10_000,
      'the second version of x to fail',
    );
    replaceManifest(proxy, manifestOf(server('steady'), slow));
    await waitFor(() => answers(proxy, 'x'), 10_000, 'x as first written to serve');
  } finally {
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a reload whose turn comes after a newer one was asked is skipped: only the newest manifest applies', async () => {
  // Queued behind a slow start, the middle manifest would start a version that hangs in initialize, and
  // the newest would wait up to 120 s behind it.
  const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-queued-'));
  const { entry: slow, begun } = slowServer('y', dir);
  const hangs = '  x:\n    command: sleep\n    args: ["1000"]\n';
  // At debug, each manifest read is logged: the middle one must be read before the newest is written.
  const proxy = await startProxy(manifestOf(server('x')), {
    args: ['--no-watch'],
    env: { LOG_LEVEL: 'debug' },
  });
  const reads = () => proxy.stderr().split('"event":"manifest-read"').length - 1;
  try {
    const oldPid = await pidOf(proxy, 'x');
    replaceManifest(proxy, manifestOf(server('x'), slow));
    proxy.process.kill('SIGHUP');
    await waitFor(() => existsSync(begun), 10_000, 'y to be starting');
    replaceManifest(proxy, manifestOf(hangs, slow));
    proxy.process.kill('SIGHUP');
    await waitFor(() => reads() === 2, 10_000, 'the middle manifest to be read, and queued behind y');
    replaceManifest(proxy, manifestOf(server('x'), slow, server('z')));
    proxy.process.kill('SIGHUP');
    await waitFor(() => answers(proxy, 'z'), 10_000, 'the newest manifest, not held behind the middle one');
    assert.is(await pidOf(proxy, 'x'), oldPid, 'x was never touched');
  } finally {
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('roles revoked together with a restart apply to the sessions of the draining version too', async () => {
  const keys = await heldKeys();
  keys.release();
  const guarded = (roles: string, extra = '') => server('guarded', `    requiredRoles: [${roles}]\n${extra}`);
  const proxy = await startProxy(heldAuth(keys) + manifestOf(guarded('x')), { env: { OPS_KEY } });
  try {
    const headers = { authorization: `Bearer ${await keys.token('mcp', { roles: ['x'] })}` };
    const opened = await postInitialize(`${proxy.url}/servers/guarded/mcp`, headers);
    assert.is(opened.status, 200);
    await opened.text();
    const target = {
      endpoint: `${proxy.url}/servers/guarded/mcp`,
      session: opened.headers.get('mcp-session-id')!,
    };
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' });
    const oldPid = (await statusWithKey(proxy)).servers[0]!.pids[0];
    replaceManifest(proxy, heldAuth(keys) + manifestOf(guarded('y', '    env: { V: "2" }\n')));
    await waitFor(
      async () => (await statusWithKey(proxy)).servers[0]!.pids.length === 2,
      10_000,
      'the new version beside the draining one',
    );
    assert.ok(isAlive(oldPid!), 'the old version drains, holding the session');
    const refused = await postToSession(target, ping, headers);
    assert.is(refused.status, 403, await refused.text());
  } finally {
    await proxy.stop();
    await keys.close();
  }
});

test("a manifest's warnings are in the report /servers shows, at boot and on reload", async () => {
  const remote = (name: string) =>
    `  ${name}:\n    url: http://127.0.0.1:9/mcp\n    useWorkloadIdentity: true\n    scope: api://x/.default\n    headers: { Authorization: "Bearer lost" }\n`;
  const proxy = await startProxy(manifestOf(server('one'), remote('first')));
  try {
    const report = async () =>
      (await status(proxy)).reload as unknown as { result: string; warnings: string[] };
    assert.match((await report()).warnings.join('\n'), 'servers.first.headers.Authorization: is never sent');
    replaceManifest(proxy, manifestOf(server('one'), remote('second')));
    await waitFor(
      async () => (await report()).warnings.join('\n').includes('servers.second.headers.Authorization'),
      10_000,
      "the reload's warning in its report",
    );
    assert.is((await report()).result, 'applied');
  } finally {
    await proxy.stop();
  }
});

test('with --no-watch edits wait for SIGHUP', async () => {
  const proxy = await startProxy(manifestOf(server('one')), { args: ['--no-watch'] });
  try {
    writeFileSync(proxy.manifestPath, manifestOf(server('one'), server('two')));
    // A quiet period, bounded: nothing happening has no event. A watching proxy would have noticed the
    // write within its 100 ms debounce, and listed the new server once it started (an echo child, ~0.2 s).
    await new Promise((r) => setTimeout(r, 600));
    assert.not.ok(
      (await status(proxy)).servers.some((s) => s.name === 'two'),
      'not watched',
    );
    proxy.process.kill('SIGHUP');
    await waitFor(() => answers(proxy, 'two'), 10_000, 'SIGHUP to reload');
  } finally {
    await proxy.stop();
  }
});

test('SIGTERM lets a call in flight finish, then exits 0', async () => {
  const proxy = await startProxy(manifestOf(server('busy')));
  let exited: Promise<number | null> | undefined;
  try {
    const { client } = await connect(proxy.url, 'busy');
    // SIGTERM once the call is surely in flight: the child has reported its first quarter of the sleep.
    const call = client.callTool({ name: 'sleep', arguments: { ms: 800 } }, undefined, {
      onprogress: () => (exited ??= proxy.stop()),
    });
    assert.is(text(await call), 'slept 800');
    assert.ok(exited, 'no progress came: SIGTERM was never sent');
    assert.is(await exited, 0);
  } finally {
    await (exited ?? proxy.stop());
  }
});

test('a crashing server is restarted or left down by its policy, without disturbing the others', async () => {
  const crash = (name: string, policy: string) =>
    `  ${name}:\n    command: ${JSON.stringify(process.execPath)}\n    args: ["-e", "console.error('boom ${name}'); process.exit(3)"]\n    restart: ${policy}\n`;
  const proxy = await startProxy(
    manifestOf(server('healthy'), crash('looping', 'always'), crash('once', 'never')),
  );
  try {
    await waitFor(
      async () => {
        const s = (await status(proxy)).servers;
        const looping = s.find((x) => x.name === 'looping') as Listing & {
          restarts: number;
          stderr: string[];
        };
        const once = s.find((x) => x.name === 'once') as Listing & { stderr: string[]; lastError?: string };
        return (
          looping.restarts >= 2 && once.state === 'stopped' && (once.lastError ?? '').includes('boom once')
        );
      },
      8000,
      'the crashing servers to be handled by their policies',
    );
    assert.ok(await answers(proxy, 'healthy'));
  } finally {
    await proxy.stop();
  }
});

test('a server that refuses to initialize is reported with its answer, not with the stop that followed', async () => {
  const refuses = [
    '-e',
    "process.stdin.once('data', (d) => { const { id } = JSON.parse(String(d).split('\\n')[0]);" +
      " process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32603, message: 'not today' } }) + '\\n');" +
      ' setInterval(() => {}, 1000); });',
  ];
  const proxy = await startProxy(
    manifestOf(
      `  refuses:\n    command: ${JSON.stringify(process.execPath)}\n    args: ${JSON.stringify(refuses)}\n    restart: never\n`,
    ),
  );
  try {
    const listing = async () => (await status(proxy)).servers[0] as Listing & { lastError?: string };
    await waitFor(async () => (await listing()).state === 'stopped', 10_000, 'refuses to be stopped');
    assert.match((await listing()).lastError ?? '', 'initialize failed: not today');
  } finally {
    await proxy.stop();
  }
});

test.run();
