import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, posix } from 'node:path';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1';
import {
  Ingress,
  NetworkPolicy,
  type IIngress,
  type INetworkPolicy,
} from 'kubernetes-models/networking.k8s.io/v1';
import {
  ConfigMap,
  Namespace,
  Secret,
  Service,
  ServiceAccount,
  type IConfigMap,
  type INamespace,
  type ISecret,
  type IService,
  type IServiceAccount,
} from 'kubernetes-models/v1';
import { test } from '../support/uvu.js';
import * as assert from 'uvu/assert';
import { parse, parseAllDocuments } from 'yaml';
import { loadManifest } from '../../src/manifest/load.js';
import { fromRoot } from '../support/paths.js';

// The Kubernetes deployment under deploy/kubernetes/: every object valid against the Kubernetes API
// schemas, the settings the proxy depends on (probes, manifest mount, cache, identity, shutdown) present
// and consistent with the Dockerfile, and the manifest inside the ConfigMap loaded by the proxy's own loader.

const DIR = fromRoot('deploy', 'kubernetes');
const KUSTOMIZATION = 'kustomization.yaml';

interface Found {
  file: string;
  object: { apiVersion?: string; kind?: string; metadata?: { name?: string } } & Record<string, unknown>;
}

const files = readdirSync(DIR)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();
const objects: Found[] = files
  .filter((f) => f !== KUSTOMIZATION)
  .flatMap((file) =>
    parseAllDocuments(readFileSync(`${DIR}/${file}`, 'utf8'))
      .filter((doc) => doc.contents !== null)
      .map((doc) => {
        if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
        return { file, object: doc.toJS() as Found['object'] };
      }),
  );

/** The model for each apiVersion/kind used here: a new kind must be added, so that it is validated too. */
const MODELS: Record<string, (data: unknown) => { validate(): void }> = {
  'v1/Namespace': (d) => new Namespace(d as INamespace),
  'v1/ConfigMap': (d) => new ConfigMap(d as IConfigMap),
  'v1/Secret': (d) => new Secret(d as ISecret),
  'v1/ServiceAccount': (d) => new ServiceAccount(d as IServiceAccount),
  'v1/Service': (d) => new Service(d as IService),
  'apps/v1/Deployment': (d) => new Deployment(d as IDeployment),
  'networking.k8s.io/v1/Ingress': (d) => new Ingress(d as IIngress),
  'networking.k8s.io/v1/NetworkPolicy': (d) => new NetworkPolicy(d as INetworkPolicy),
};

function one<T>(kind: string): T {
  const found = objects.filter((o) => o.object.kind === kind);
  assert.is(found.length, 1, `one ${kind}`);
  return found[0]!.object as T;
}

const deployment = one<IDeployment>('Deployment');
const pod = deployment.spec!.template.spec!;
const container = pod.containers.find((c) => c.name === 'mcp-proxy')!;
const configMap = one<IConfigMap>('ConfigMap');
const secret = one<ISecret>('Secret');
const serviceAccount = one<IServiceAccount>('ServiceAccount');
const service = one<IService>('Service');
const ingress = one<IIngress>('Ingress');
const namespace = one<INamespace>('Namespace');

// What the image promises, read from the Dockerfile: the deployment must agree with it.
const dockerfile = readFileSync(fromRoot('Dockerfile'), 'utf8');
const imageEnv = (name: string) => new RegExp(`\\b${name}=(\\S+)`).exec(dockerfile)?.[1];
const manifestPath = imageEnv('MCP_PROXY_CONFIG')!;
const exposedPort = Number(/^EXPOSE (\d+)$/m.exec(dockerfile)?.[1]);
const imageUid = Number(/^USER (\d+)/m.exec(dockerfile)?.[1]);

test('deploy/kubernetes holds the expected objects, each file plain YAML', () => {
  assert.ok(container, 'a container named mcp-proxy');
  const kinds = objects.map((o) => o.object.kind).sort();
  assert.equal(kinds, [
    'ConfigMap',
    'Deployment',
    'Ingress',
    'Namespace',
    'NetworkPolicy',
    'Secret',
    'Service',
    'ServiceAccount',
  ]);
});

for (const { file, object } of objects) {
  const key = `${object.apiVersion}/${object.kind}`;
  test(`${file}: ${object.kind} ${object.metadata?.name} is valid against the Kubernetes API schema`, () => {
    const model = MODELS[key];
    assert.ok(model, `no kubernetes-models model mapped for ${key}`);
    try {
      model!(object).validate();
    } catch (error) {
      const details = (error as { errors?: { instancePath: string; message?: string }[] }).errors ?? [];
      assert.unreachable(
        `${file}: ${(error as Error).message}\n${details.map((d) => `${d.instancePath} ${d.message}`).join('\n')}`,
      );
    }
  });
}

test('the schema check is not vacuous: a wrong type is refused', () => {
  const broken = structuredClone(deployment);
  (broken.spec!.template.spec!.securityContext as Record<string, unknown>).runAsNonRoot = 'yes';
  assert.throws(() => new Deployment(broken).validate(), /must be boolean/);
});

test('kustomization lists every object file except the example Secret, and generates no ConfigMap', () => {
  const kustomization = parse(readFileSync(`${DIR}/${KUSTOMIZATION}`, 'utf8'));
  const listed = [...kustomization.resources].sort();
  const expected = files.filter((f) => f !== KUSTOMIZATION && f !== 'secret.example.yaml');
  assert.equal(listed, expected);
  // A generated ConfigMap gets a new name per edit, which restarts the pods instead of reloading live.
  assert.is(kustomization.configMapGenerator, undefined);
  assert.is(kustomization.namespace, namespace.metadata!.name);
  const image = container.image!.split(':')[0];
  assert.ok(
    kustomization.images.some((i: { name: string }) => i.name === image),
    'the image is pinned in one place',
  );
});

test('the pod runs as the image user, never root, without privileges, on a read-only root file system', () => {
  const podSecurity = pod.securityContext!;
  assert.is(podSecurity.runAsNonRoot, true);
  assert.is(podSecurity.runAsUser, imageUid);
  assert.is.not(podSecurity.runAsUser, 0);
  assert.is(podSecurity.seccompProfile?.type, 'RuntimeDefault');
  const security = container.securityContext!;
  assert.is(security.runAsNonRoot, true);
  assert.is(security.readOnlyRootFilesystem, true);
  assert.is(security.allowPrivilegeEscalation, false);
  assert.is.not(security.privileged, true);
  assert.equal(security.capabilities?.drop, ['ALL']);
  assert.is(security.capabilities?.add, undefined);
  assert.is(security.seccompProfile?.type, 'RuntimeDefault');
  assert.not.ok(pod.hostNetwork || pod.hostPID || pod.hostIPC);
  assert.ok(
    (pod.volumes ?? []).every((v) => v.hostPath === undefined),
    'no host paths',
  );
  // The namespace enforces the same, so that a later edit cannot quietly loosen it.
  assert.is(namespace.metadata!.labels!['pod-security.kubernetes.io/enforce'], 'restricted');
});

test('every probe on /healthz, on the port the image exposes', () => {
  const httpPort = container.ports!.find((p) => p.name === 'http');
  assert.is(httpPort?.containerPort, exposedPort);
  for (const [probe, path] of [
    [container.livenessProbe, '/healthz'],
    [container.startupProbe, '/healthz'],
    // Not /readyz: one server down would take the others out of the Service (decision 0037).
    [container.readinessProbe, '/healthz'],
  ] as const) {
    assert.is(probe?.httpGet?.path, path);
    assert.is(probe?.httpGet?.port, 'http');
  }
  // The proxy listens only after every eager server answered initialize or gave up (at most 120 s, in
  // src/upstream/shared-stdio.ts): until then the startup probe must hold liveness back.
  const startup = container.startupProbe!;
  assert.ok((startup.periodSeconds ?? 10) * (startup.failureThreshold ?? 3) >= 180, 'startup budget ≥ 180 s');
});

test('pods use the Azure workload identity of an annotated ServiceAccount', () => {
  assert.is(deployment.spec!.template.metadata!.labels!['azure.workload.identity/use'], 'true');
  assert.is(pod.serviceAccountName, serviceAccount.metadata!.name);
  assert.match(
    serviceAccount.metadata!.annotations!['azure.workload.identity/client-id'] ?? '',
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  );
});

test('the ConfigMap is mounted as a directory at the image manifest path, never with subPath', () => {
  const volume = pod.volumes!.find((v) => v.configMap?.name === configMap.metadata!.name);
  assert.ok(volume, 'a volume from the ConfigMap');
  const mounts = container.volumeMounts!.filter((m) => m.name === volume!.name);
  assert.is(mounts.length, 1);
  // subPath mounts are copies the kubelet never updates: live reload would silently stop.
  assert.is(mounts[0]!.subPath, undefined);
  assert.is(mounts[0]!.subPathExpr, undefined);
  assert.is(mounts[0]!.mountPath, dirname(manifestPath));
  assert.is(mounts[0]!.readOnly, true);
  assert.ok(configMap.data![basename(manifestPath)], `the ConfigMap holds ${basename(manifestPath)}`);
  assert.is(volume!.configMap!.items, undefined, 'every key of the ConfigMap is a file');
});

test('/cache and /tmp are emptyDirs: the only writable places under a read-only root', () => {
  const cacheDir = posix.dirname(`${imageEnv('UV_CACHE_DIR')}`);
  assert.is(imageEnv('HOME'), cacheDir);
  for (const path of [cacheDir, '/tmp']) {
    const mount = container.volumeMounts!.find((m) => m.mountPath === path);
    assert.ok(mount, `${path} is mounted`);
    const volume = pod.volumes!.find((v) => v.name === mount!.name);
    assert.ok(volume?.emptyDir, `${path} is an emptyDir`);
    assert.ok(volume!.emptyDir!.sizeLimit, `${path} is bounded`);
  }
});

test('shutdown has time: grace above preStop + the proxy 10 s drain + the 3 s child kill grace', () => {
  const preStop = container.lifecycle?.preStop?.sleep?.seconds ?? 0;
  assert.ok((pod.terminationGracePeriodSeconds ?? 30) > preStop + 10 + 3);
  assert.is(deployment.spec!.strategy?.rollingUpdate?.maxUnavailable, 0);
});

test('resources are requested and memory is limited', () => {
  const { requests, limits } = container.resources!;
  assert.ok(requests?.cpu && requests.memory);
  assert.ok(limits?.memory);
});

test('the API key comes from the Secret, and nothing switches the proxy to single-server mode', () => {
  const key = container.env!.find((e) => e.name === 'MCP_PROXY_API_KEY');
  assert.is(key?.valueFrom?.secretKeyRef?.name, secret.metadata!.name);
  assert.ok(key!.valueFrom!.secretKeyRef!.key in secret.stringData!);
  for (const name of ['MCP_COMMAND', 'MCP_ARGS', 'MCP_PROXY_URL', 'MCP_PROXY_CONFIG']) {
    assert.not.ok(
      container.env!.some((e) => e.name === name),
      `${name} is the image's business`,
    );
  }
  assert.is(container.envFrom, undefined, 'no bulk import that could carry MCP_COMMAND');
  assert.is(container.command, undefined, 'the image ENTRYPOINT (tini, then the CLI) stays');
  // Service links would add MCP_PROXY_SERVICE_HOST and friends for every Service of the namespace.
  assert.is(pod.enableServiceLinks, false);
});

test('the Service and the Ingress reach the pod, and the Ingress keeps sessions on their replica', () => {
  assert.equal(service.spec!.selector, deployment.spec!.selector.matchLabels);
  assert.is(service.spec!.ports![0]!.targetPort, 'http');
  const rules = ingress.spec!.rules ?? [];
  // The checks below hold for every path: of none, they would say nothing.
  assert.ok(rules.length > 0, 'the Ingress has rules');
  for (const rule of rules) {
    assert.ok((rule.http?.paths.length ?? 0) > 0, 'each rule has paths');
    for (const path of rule.http!.paths) {
      assert.is(path.backend.service?.name, service.metadata!.name);
      assert.is(path.backend.service?.port?.name, service.spec!.ports![0]!.name);
      // /healthz, /readyz and /metrics answer anyone: they are not published.
      assert.ok(['/servers', '/.well-known/oauth-protected-resource'].includes(path.path!), path.path);
    }
  }
  const annotations = ingress.metadata!.annotations!;
  const key = annotations['nginx.ingress.kubernetes.io/upstream-hash-by'];
  assert.ok(key, 'affinity for when there is more than one replica');
  // Mcp-Session-Id is minted in the answer to initialize, so the request that creates a session cannot
  // carry it: hashing on it would place most sessions' later requests on another replica.
  assert.not.match(key!, /mcp_session_id/i);
  assert.is(annotations['nginx.ingress.kubernetes.io/proxy-buffering'], 'off');
  assert.ok(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout']) >= 600, 'longer than 10m');
  assert.is(annotations['nginx.ingress.kubernetes.io/proxy-body-size'], '4m');
});

// The manifest itself, through the proxy's loader, exactly as `serve` would read the mounted file.
const manifestText = configMap.data![basename(manifestPath)]!;
const load = (env: Record<string, string>) =>
  loadManifest({ file: manifestPath, bytes: manifestText, env, baseDir: dirname(manifestPath) });

test('the ConfigMap manifest loads cleanly with the API key set: the four seed adapters, behind auth', () => {
  const result = load({ MCP_PROXY_API_KEY: 'an-api-key-of-32-characters-long' });
  assert.equal(
    result.diagnostics.map((d) => `${d.line}:${d.column} ${d.path}: ${d.message}`),
    [],
    'no error and no warning',
  );
  const servers = result.manifest!.servers;
  assert.equal(
    servers.map((s) => s.name),
    ['azure-remote', 'foundry-remote', 'ado-remote', 'internal-mcp'],
  );
  assert.equal(
    servers.map((s) => (s.kind === 'stdio' ? s.command : s.url)),
    ['npx', 'uvx', 'npx', 'https://internal-mcp-server/mcp'],
  );
  assert.equal(
    servers.map((s) => s.useWorkloadIdentity),
    [false, true, true, false],
  );
  assert.is(result.manifest!.auth?.apiKeys?.length, 1);
});

test('the ConfigMap adapters are the gateway seed payloads (less the image fields it ignores)', () => {
  const adapters = parse(manifestText).adapters as Record<string, unknown>[];
  const fixtures = fromRoot('test', 'fixtures', 'adapters');
  for (const file of readdirSync(fixtures)) {
    const {
      imageName: _name,
      imageVersion: _version,
      ...seed
    } = JSON.parse(readFileSync(`${fixtures}/${file}`, 'utf8'));
    const adapter = structuredClone(adapters.find((a) => a.name === seed.name));
    assert.ok(adapter, `${seed.name} is in the ConfigMap`);
    // Added on purpose (see its comment): a Python server buffering stdout looks hung.
    if (seed.name === 'foundry-remote') {
      delete (adapter!.environmentVariables as Record<string, string>).PYTHONUNBUFFERED;
    }
    assert.equal(adapter, seed, seed.name);
  }
});

test('without the key, or with the example Secret placeholder, the proxy refuses to start', () => {
  const missing = load({});
  assert.is(missing.manifest, undefined);
  assert.match(missing.diagnostics[0]!.message, /MCP_PROXY_API_KEY is not set/);
  // A placeholder applied by mistake must not become a working key that everyone can read.
  const placeholder = load({ MCP_PROXY_API_KEY: secret.stringData!.MCP_PROXY_API_KEY! });
  assert.is(placeholder.manifest, undefined);
  assert.match(placeholder.diagnostics[0]!.message, /fewer than 16 characters/);
});

test("the pod may reach anything but the instance metadata service, which would hand out the node's identity", () => {
  const policy = one<INetworkPolicy>('NetworkPolicy');
  assert.equal(policy.spec!.podSelector.matchLabels, deployment.spec!.selector.matchLabels);
  assert.equal(policy.spec!.policyTypes, ['Egress']);
  const peers = policy.spec!.egress!.flatMap((rule) => rule.to!);
  // Every pod in the cluster (Cilium's CIDR rules do not match the pods it manages, CoreDNS included).
  assert.ok(peers.some((peer) => JSON.stringify(peer) === '{"namespaceSelector":{}}'));
  const blocks = peers.flatMap((peer) => (peer.ipBlock ? [peer.ipBlock] : []));
  assert.equal(blocks, [{ cidr: '0.0.0.0/0', except: ['169.254.169.254/32'] }, { cidr: '::/0' }]);
});

test.run();
