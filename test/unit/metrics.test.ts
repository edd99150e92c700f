import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { Metrics, type ServerSample } from '../../src/gateway/metrics.js';

/** A fleet listing the test can change between scrapes. */
function fixture(servers: ServerSample[] = [{ name: 'echo', sessions: 0, restarts: 0, state: 'ready' }]) {
  const listing = { servers };
  return {
    listing,
    metrics: new Metrics(
      () => listing.servers,
      (name) => listing.servers.some((s) => s.name === name),
    ),
  };
}

/** The sample lines of one metric family, without HELP and TYPE. */
async function samples(metrics: Metrics, name: string): Promise<string[]> {
  return (await metrics.render()).split('\n').filter((line) => line.startsWith(`${name}{`));
}

test('requests are counted by server, method and final status', async () => {
  const { metrics } = fixture();
  metrics.request({ server: 'echo', method: 'POST', status: 200, seconds: 0.01 });
  metrics.request({ server: 'echo', method: 'POST', status: 200, seconds: 0.02 });
  metrics.request({ server: 'echo', method: 'DELETE', status: 404, seconds: 0.001 });
  assert.equal(await samples(metrics, 'mcp_proxy_requests_total'), [
    'mcp_proxy_requests_total{server="echo",method="POST",status="200"} 2',
    'mcp_proxy_requests_total{server="echo",method="DELETE",status="404"} 1',
  ]);
});

test('names the fleet does not hold all share one "(unknown)" series', async () => {
  const { metrics } = fixture();
  for (let i = 0; i < 50; i++) {
    metrics.request({ server: `random-${i}`, method: 'POST', status: 404, seconds: 0.001 });
  }
  const text = await metrics.render();
  assert.not.match(text, 'random-');
  assert.equal(await samples(metrics, 'mcp_proxy_requests_total'), [
    'mcp_proxy_requests_total{server="(unknown)",method="POST",status="404"} 50',
  ]);
  assert.match(text, 'mcp_proxy_request_duration_seconds_count{server="(unknown)",method="POST"} 50');
});

test('a server named "unknown" is not counted with the names no server has', async () => {
  const { listing, metrics } = fixture();
  listing.servers = [...listing.servers, { name: 'unknown', sessions: 0, restarts: 0, state: 'ready' }];
  metrics.request({ server: 'unknown', method: 'POST', status: 200, seconds: 0.001 });
  metrics.request({ server: 'nobody', method: 'POST', status: 404, seconds: 0.001 });
  assert.equal(await samples(metrics, 'mcp_proxy_requests_total'), [
    'mcp_proxy_requests_total{server="unknown",method="POST",status="200"} 1',
    'mcp_proxy_requests_total{server="(unknown)",method="POST",status="404"} 1',
  ]);
});

test('a server keeps its own label from the moment the fleet holds it', async () => {
  const { listing, metrics } = fixture();
  metrics.request({ server: 'later', method: 'POST', status: 404, seconds: 0.001 });
  listing.servers = [...listing.servers, { name: 'later', sessions: 0, restarts: 0, state: 'ready' }];
  metrics.request({ server: 'later', method: 'POST', status: 200, seconds: 0.001 });
  assert.equal(await samples(metrics, 'mcp_proxy_requests_total'), [
    'mcp_proxy_requests_total{server="(unknown)",method="POST",status="404"} 1',
    'mcp_proxy_requests_total{server="later",method="POST",status="200"} 1',
  ]);
});

test('POST and DELETE are timed; a GET stream is counted but not timed', async () => {
  const { metrics } = fixture();
  metrics.request({ server: 'echo', method: 'POST', status: 200, seconds: 0.2 });
  metrics.request({ server: 'echo', method: 'DELETE', status: 200, seconds: 0.003 });
  metrics.request({ server: 'echo', method: 'GET', status: 200, seconds: 3600 });
  const text = await metrics.render();
  assert.match(text, 'mcp_proxy_request_duration_seconds_count{server="echo",method="POST"} 1');
  assert.match(text, 'mcp_proxy_request_duration_seconds_bucket{le="0.25",server="echo",method="POST"} 1');
  assert.match(text, 'mcp_proxy_request_duration_seconds_count{server="echo",method="DELETE"} 1');
  assert.not.match(text, /duration_seconds\w*\{[^}]*method="GET"/);
  assert.match(text, 'mcp_proxy_requests_total{server="echo",method="GET",status="200"} 1');
});

test('slow tool calls land in a bucket of their own, not only in +Inf', async () => {
  const { metrics } = fixture();
  metrics.request({ server: 'echo', method: 'POST', status: 200, seconds: 90 });
  const text = await metrics.render();
  assert.match(text, 'mcp_proxy_request_duration_seconds_bucket{le="60",server="echo",method="POST"} 0');
  assert.match(text, 'mcp_proxy_request_duration_seconds_bucket{le="120",server="echo",method="POST"} 1');
});

test('sessions and restarts are read from the listing at scrape time; removed servers vanish', async () => {
  const { listing, metrics } = fixture([
    { name: 'a', sessions: 3, restarts: 0, state: 'ready' },
    { name: 'b', sessions: 0, restarts: 2, state: 'restarting' },
  ]);
  assert.equal(await samples(metrics, 'mcp_proxy_sessions'), [
    'mcp_proxy_sessions{server="a"} 3',
    'mcp_proxy_sessions{server="b"} 0',
  ]);
  assert.equal(await samples(metrics, 'mcp_proxy_child_restarts'), [
    'mcp_proxy_child_restarts{server="a"} 0',
    'mcp_proxy_child_restarts{server="b"} 2',
  ]);
  listing.servers = [{ name: 'a', sessions: 1, restarts: 1, state: 'failed' }];
  assert.equal(await samples(metrics, 'mcp_proxy_sessions'), ['mcp_proxy_sessions{server="a"} 1']);
  assert.equal(await samples(metrics, 'mcp_proxy_child_restarts'), [
    'mcp_proxy_child_restarts{server="a"} 1',
  ]);
});

test("each server's state is 1 for the state it is in, 0 for the others; removed servers vanish", async () => {
  const { listing, metrics } = fixture([
    { name: 'a', sessions: 0, restarts: 0, state: 'ready' },
    { name: 'b', sessions: 0, restarts: 10, state: 'failed' },
  ]);
  const states = ['starting', 'ready', 'restarting', 'failed', 'stopped'];
  const series = (server: string, current: string) =>
    states.map(
      (state) => `mcp_proxy_server_state{server="${server}",state="${state}"} ${state === current ? 1 : 0}`,
    );
  assert.equal(await samples(metrics, 'mcp_proxy_server_state'), [
    ...series('a', 'ready'),
    ...series('b', 'failed'),
  ]);
  listing.servers = [{ name: 'b', sessions: 0, restarts: 0, state: 'starting' }];
  assert.equal(await samples(metrics, 'mcp_proxy_server_state'), series('b', 'starting'));
});

test('every reload result has a series from the start; each reload counts once', async () => {
  const { metrics } = fixture();
  metrics.reloaded('applied');
  metrics.reloaded('applied');
  metrics.reloaded('failed');
  assert.equal(await samples(metrics, 'mcp_proxy_reloads_total'), [
    'mcp_proxy_reloads_total{result="applied"} 2',
    'mcp_proxy_reloads_total{result="unchanged"} 0',
    'mcp_proxy_reloads_total{result="partial"} 0',
    'mcp_proxy_reloads_total{result="failed"} 1',
    'mcp_proxy_reloads_total{result="superseded"} 0',
  ]);
});

test('each instance has its own registry: two never share series', async () => {
  const one = fixture().metrics;
  const two = fixture().metrics;
  one.request({ server: 'echo', method: 'POST', status: 200, seconds: 0.01 });
  assert.equal(await samples(two, 'mcp_proxy_requests_total'), []);
});

test('the default process metrics are on the registry, in the Prometheus text format', async () => {
  const { metrics } = fixture();
  assert.match(metrics.contentType, 'text/plain');
  const text = await metrics.render();
  assert.match(text, '# TYPE process_cpu_seconds_total counter');
  assert.match(text, 'nodejs_eventloop_lag_seconds');
});

test.run();
