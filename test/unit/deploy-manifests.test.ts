import { loadClientConfigFromToml } from '@temporalio/envconfig';
import { Command } from 'commander';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { registerWorker, WORKER_KINDS } from '../../cli/commands/worker';
import { EnvConfig } from '../../data-schemas/config';
import { SEARCH_ATTRIBUTE_NAMES, SEARCH_ATTRIBUTES, TaskQueue } from '../../data-schemas/workflows';
import { loadConfig, REPO_ROOT } from '../../infra/config';
import { DEFAULT_TEMPORAL_NAMESPACE } from '../../infra/temporal-connection';

/**
 * The deployment files (infra/deploy, docs/deployment.md) agree with the code: the commands they
 * run exist in the `vla` CLI, the queues they name are the code's, every variable they set is one
 * the code reads, and the Temporal server they describe has what the project relies on.
 */

const DEPLOY = join(REPO_ROOT, 'infra', 'deploy');
const KUBERNETES = join(DEPLOY, 'kubernetes');
const read = (path: string): string => readFileSync(path, 'utf8');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

// --- the parts of the manifests the checks read, validated as they are read

const StringMap = z.record(z.string(), z.string());
const EnvVar = z.object({
  name: z.string().min(1),
  value: z.string().optional(),
  valueFrom: z
    .object({
      secretKeyRef: z.object({ name: z.string(), key: z.string(), optional: z.boolean().optional() }).optional(),
      fieldRef: z.object({ fieldPath: z.string() }).optional(),
    })
    .optional(),
});
type EnvVar = z.infer<typeof EnvVar>;
const Probe = z.object({ httpGet: z.object({ path: z.string(), port: z.union([z.string(), z.int()]) }) });
const Quantities = z.record(z.string(), z.union([z.string(), z.number()]));
const Container = z.object({
  name: z.string(),
  image: z.string(),
  args: z.array(z.string()),
  env: z.array(EnvVar).default([]),
  envFrom: z.array(z.object({ configMapRef: z.object({ name: z.string() }) })).default([]),
  ports: z.array(z.object({ name: z.string(), containerPort: z.int() })),
  startupProbe: Probe,
  livenessProbe: Probe,
  resources: z.object({ requests: Quantities, limits: Quantities }),
});
const Deployment = z.object({
  apiVersion: z.literal('apps/v1'),
  kind: z.literal('Deployment'),
  metadata: z.object({ name: z.string(), labels: StringMap }),
  spec: z.object({
    replicas: z.int().nonnegative(),
    selector: z.object({ matchLabels: StringMap }),
    strategy: z.object({ type: z.enum(['RollingUpdate', 'Recreate']) }),
    template: z.object({
      metadata: z.object({ labels: StringMap, annotations: StringMap }),
      spec: z.object({
        terminationGracePeriodSeconds: z.int().positive(),
        nodeSelector: StringMap.optional(),
        containers: z.array(Container).length(1),
      }),
    }),
  }),
});
type Deployment = z.infer<typeof Deployment>;
const ConfigMap = z.object({ kind: z.literal('ConfigMap'), metadata: z.object({ name: z.string() }), data: StringMap });
const Kustomization = z.object({
  kind: z.literal('Kustomization'),
  resources: z.array(z.string()),
  patches: z.array(z.object({ patch: z.string() })).default([]),
});

/** The labels that name what a worker Deployment is (set in every file of infra/deploy/kubernetes). */
const QUEUE_LABEL = 'vla-pipelines/task-queue';
const STATION_LABEL = 'vla-pipelines/station';

function yamlDocuments(path: string): unknown[] {
  return parseAllDocuments(read(path)).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${relative(REPO_ROOT, path)}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as unknown;
  });
}

const base = Kustomization.parse(parseYaml(read(join(KUBERNETES, 'kustomization.yaml'))));
const baseDocuments = base.resources.flatMap((file) => yamlDocuments(join(KUBERNETES, file)));
const deployments = baseDocuments.filter((doc) => z.object({ kind: z.literal('Deployment') }).safeParse(doc).success).map((doc) => Deployment.parse(doc));
const configMaps = new Map(
  baseDocuments
    .filter((doc) => z.object({ kind: z.literal('ConfigMap') }).safeParse(doc).success)
    .map((doc) => ConfigMap.parse(doc))
    .map((cm) => [cm.metadata.name, cm.data]),
);

// --- the `vla` CLI, built as cli/main.ts builds it

const ParsedWorkerOptions = z.object({
  taskQueue: z.string().optional(),
  rate: z.number(),
  id: z.string(),
  url: z.string().optional(),
  stepDelayMs: z.number(),
});
const ParsedWorker = z.object({ kind: z.enum(WORKER_KINDS), options: ParsedWorkerOptions });
type ParsedWorker = z.infer<typeof ParsedWorker>;

/** Parses a command line with the real `vla worker` command: unknown kinds and options are refused as commander refuses them. */
async function parseVlaCommand(args: readonly string[]): Promise<ParsedWorker> {
  const program = new Command('vla').exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  registerWorker(program);
  const worker = program.commands.find((command) => command.name() === 'worker');
  if (!worker) throw new Error('the vla program has no worker command');
  let parsed: unknown;
  worker.action((kind: unknown, options: unknown) => {
    parsed = { kind, options };
  });
  await program.parseAsync([...args], { from: 'user' });
  return ParsedWorker.parse(parsed);
}

/** The queue a `vla worker` command line polls, as the code decides it. */
function queueOf({ kind, options }: ParsedWorker): string {
  if (kind === 'station') return TaskQueue.station(options.id);
  return options.taskQueue ?? TaskQueue[kind];
}

// --- the environment a container gets

/** Temporal's standard connection variables (read by @temporalio/envconfig). */
/**
 * The variables with every `TEMPORAL_TLS_*_PATH` pointing at a stand-in file: in a pod the Secret is
 * mounted there, and the connection loader reads each file at start (a missing one is an error).
 */
function withMountedFiles(variables: Record<string, string>): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'vla-deploy-secrets-'));
  return Object.fromEntries(
    Object.entries(variables).map(([name, value]) => {
      if (!/^TEMPORAL_TLS_.*_PATH$/.test(name)) return [name, value];
      const file = join(dir, name.toLowerCase());
      writeFileSync(file, `stand-in for ${value}\n`);
      return [name, file];
    }),
  );
}

const TEMPORAL_VARIABLES = new Set([
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_TLS_SERVER_NAME',
  'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION',
  'TEMPORAL_PROFILE',
  'TEMPORAL_CONFIG_FILE',
]);
/** Read by the AWS SDK's S3 client in activities/store/s3-store.ts (endpoint, region, default credential chain). */
const AWS_VARIABLES = new Set(['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL', 'AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']);
/** Other variables a manifest may set, each with where it is read. */
const OTHER_VARIABLES: Record<string, string> = {
  GEMINI_API_KEY: 'vla worker gemini (cli/commands/worker.ts)',
  HF_HOME: 'the Hugging Face cache of the Python trainer and inference (docs/training.md)',
  NODE_IP: "Kubernetes expands it into a station's --url",
};
const declaredVlaVariables = new Set(Object.keys(EnvConfig.shape));

/** Why a variable name is not one the code reads, or undefined when it is. */
function unknownVariable(name: string): string | undefined {
  if (name.startsWith('VLA_')) return declaredVlaVariables.has(name) ? undefined : `${name} is not declared in data-schemas/config.ts EnvConfig`;
  if (name.startsWith('TEMPORAL_')) return TEMPORAL_VARIABLES.has(name) ? undefined : `${name} is not one of Temporal's standard variables`;
  if (name.startsWith('AWS_')) return AWS_VARIABLES.has(name) ? undefined : `${name} is not read by the S3 store`;
  if (name.startsWith('OTEL_')) return undefined;
  return name in OTHER_VARIABLES ? undefined : `${name} is not read by any part of the project`;
}

/** What a secret variable stands for in the checks: its value never comes from a manifest. */
const SECRET_PLACEHOLDER = 'from-a-secret';
const NODE_IP_PLACEHOLDER = '10.0.0.7';

/** The container's environment: its ConfigMaps, then its own variables (which win, as in Kubernetes). */
function environmentOf(deployment: Deployment): { variables: Record<string, string>; own: EnvVar[] } {
  const container = deployment.spec.template.spec.containers[0]!;
  const variables: Record<string, string> = {};
  for (const from of container.envFrom) {
    const data = configMaps.get(from.configMapRef.name);
    if (!data) throw new Error(`${deployment.metadata.name}: ConfigMap ${from.configMapRef.name} is not in the kustomization`);
    Object.assign(variables, data);
  }
  for (const variable of container.env) {
    variables[variable.name] =
      variable.value ?? (variable.valueFrom?.secretKeyRef ? SECRET_PLACEHOLDER : variable.valueFrom?.fieldRef?.fieldPath === 'status.hostIP' ? NODE_IP_PLACEHOLDER : '');
  }
  return { variables, own: container.env };
}

/** The container's arguments with `$(VAR)` expanded from its environment, as Kubernetes does. */
function expandedArgs(deployment: Deployment): string[] {
  const { variables } = environmentOf(deployment);
  return deployment.spec.template.spec.containers[0]!.args.map((arg) => arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref, name: string) => variables[name] ?? ref));
}

/** Variables that hold a secret (not a path to one). */
const SECRET_NAME = /(KEY|KEY_ID|SECRET|TOKEN|PASSWORD)$/;

describe('infra/deploy', () => {
  it('every YAML file parses', () => {
    const yamlFiles = filesUnder(DEPLOY).filter((path) => /\.ya?ml$/.test(path));
    expect(yamlFiles.map((path) => relative(DEPLOY, path))).toEqual(
      expect.arrayContaining(['kubernetes/kustomization.yaml', 'helm/temporal-values.yaml', 'cloud/kustomization.yaml']),
    );
    for (const path of yamlFiles) expect(() => yamlDocuments(path), relative(REPO_ROOT, path)).not.toThrow();
  });

  it("the kustomization lists every manifest of its folder (the Secrets' example is left out on purpose)", () => {
    const manifests = readdirSync(KUBERNETES).filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml' && file !== 'secrets.example.yaml');
    expect([...base.resources].sort()).toEqual(manifests.sort());
  });

  it('has a Deployment for every worker kind', async () => {
    const kinds = new Set<string>();
    for (const deployment of deployments) kinds.add((await parseVlaCommand(expandedArgs(deployment))).kind);
    expect([...kinds].sort()).toEqual([...WORKER_KINDS].sort());
  });

  describe.each(deployments.map((deployment) => [deployment.metadata.name, deployment] as const))('%s', (_name, deployment) => {
    const pod = deployment.spec.template;
    const container = pod.spec.containers[0]!;

    it('runs a `vla worker` command the CLI accepts and polls the queue its label names', async () => {
      const worker = await parseVlaCommand(expandedArgs(deployment));
      expect(deployment.metadata.labels[QUEUE_LABEL]).toBe(queueOf(worker));
      expect(deployment.metadata.labels['app.kubernetes.io/component']).toBe(worker.kind);
      // The selector picks this Deployment's pods only.
      expect(pod.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
      if (worker.kind === 'station') {
        // One arm, one worker, on the node at the arm.
        expect(deployment.spec.replicas).toBe(1);
        expect(deployment.spec.strategy.type).toBe('Recreate');
        expect(pod.spec.nodeSelector?.[STATION_LABEL]).toBe(worker.options.id);
      }
    });

    it('sets only variables the code reads, secrets only from Secrets', () => {
      const { variables, own } = environmentOf(deployment);
      const unknown = Object.keys(variables).flatMap((name) => unknownVariable(name) ?? []);
      expect(unknown).toEqual([]);
      for (const variable of own.filter((v) => SECRET_NAME.test(v.name))) {
        expect(variable.valueFrom?.secretKeyRef, `${variable.name} comes from a Secret`).toBeDefined();
      }
      for (const name of Object.keys(variables)) expect(SECRET_NAME.test(name) && variables[name] !== SECRET_PLACEHOLDER, `${name} is written in a manifest`).toBe(false);
    });

    it('passes the configuration check the worker itself runs at start (shared S3 store, several hosts)', () => {
      const { variables } = environmentOf(deployment);
      const config = loadConfig(withMountedFiles(variables));
      expect(config.env.VLA_MULTI_HOST).toBe(true);
      expect(config.storeUri).toMatch(/^s3:\/\//);
      expect([...config.storeRoots.readWrite, ...config.storeRoots.readOnly].every((root) => root.startsWith('s3://'))).toBe(true);
      const temporal = config.temporal();
      expect(temporal.namespace).toBe(DEFAULT_TEMPORAL_NAMESPACE);
      expect(temporal.connectionOptions.tls, 'mutual TLS from the mounted client certificate').toMatchObject({ clientCertPair: expect.anything() });
    });

    it('serves metrics where Prometheus scrapes and the probes look', async () => {
      const { variables } = environmentOf(deployment);
      const port = Number(variables.VLA_METRICS_ADDRESS?.split(':').at(-1));
      const metricsPort = container.ports.find((p) => p.name === 'metrics');
      expect(metricsPort?.containerPort).toBe(port);
      expect(pod.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' });
      for (const probe of [container.startupProbe, container.livenessProbe]) expect(probe.httpGet).toEqual({ path: '/metrics', port: 'metrics' });
      const { kind } = await parseVlaCommand(expandedArgs(deployment));
      // Only the Gemini workers hold the Gemini key.
      expect('GEMINI_API_KEY' in variables).toBe(kind === 'gemini');
    });

    it('requests GPUs only for GPU workers, and more than one only on a queue of its own', async () => {
      const worker = await parseVlaCommand(expandedArgs(deployment));
      const requested = Number(container.resources.requests['nvidia.com/gpu'] ?? 0);
      expect(Number(container.resources.limits['nvidia.com/gpu'] ?? 0)).toBe(requested);
      if (worker.kind !== 'gpu') expect(requested).toBe(0);
      else expect(requested).toBeGreaterThanOrEqual(1);
      // A multi-GPU worker takes only runs sized for it (trainLora's gpus and gpuTaskQueue).
      if (requested > 1) expect(queueOf(worker)).not.toBe(TaskQueue.gpu);
    });
  });
});

describe('infra/deploy/helm/temporal-values.yaml', () => {
  const HelmValues = z.object({
    server: z.object({
      config: z.object({
        persistence: z.object({ default: z.object({ driver: z.literal('sql') }), visibility: z.object({ driver: z.literal('sql') }) }),
        tls: z.object({ frontend: z.object({ server: z.object({ requireClientAuth: z.literal(true) }) }) }),
        namespaces: z.object({ create: z.literal(true), namespace: z.array(z.object({ name: z.string() })) }),
      }),
      dynamicConfig: z.record(z.string(), z.array(z.object({ value: z.unknown() }))),
    }),
    admintools: z.object({
      image: z.object({ repository: z.string(), tag: z.string() }),
      additionalInitContainers: z.array(z.object({ name: z.string(), image: z.string(), args: z.array(z.string()) })),
    }),
  });
  const values = HelmValues.parse(parseYaml(read(join(DEPLOY, 'helm', 'temporal-values.yaml'))));

  it("creates the project's namespace and registers every search attribute with its type, with admin-tools' own image", () => {
    expect(values.server.config.namespaces.namespace.map((n) => n.name)).toContain(DEFAULT_TEMPORAL_NAMESPACE);
    const init = values.admintools.additionalInitContainers.find((c) => c.name === 'vla-search-attributes');
    expect(init?.image).toBe(`${values.admintools.image.repository}:${values.admintools.image.tag}`);
    const script = init?.args.join('\n') ?? '';
    expect(new Set(script.match(/\bVla[A-Za-z]+\b/g))).toEqual(new Set(SEARCH_ATTRIBUTE_NAMES));
    expect(Object.fromEntries([...script.matchAll(/\b(Vla[A-Za-z]+)=([A-Za-z]+)\b/g)].map((m) => [m[1], m[2]]))).toEqual(SEARCH_ATTRIBUTES);
    expect(script).toContain('--type "$type"');
    expect(script).toContain(`--namespace ${DEFAULT_TEMPORAL_NAMESPACE}`);
  });

  it('sets the dynamic config the dev server runs with (infra/temporal.ts)', () => {
    const devServer = Object.fromEntries([...read(join(REPO_ROOT, 'infra', 'temporal.ts')).matchAll(/'--dynamic-config-value',\s*'([^=']+)=([^']+)'/g)].map((m) => [m[1]!, m[2]!]));
    expect(Object.keys(devServer).length).toBeGreaterThan(0);
    const helm = Object.fromEntries(Object.entries(values.server.dynamicConfig).map(([key, entries]) => [key, entries.map((e) => String(e.value)).join(',')]));
    expect(helm).toEqual(devServer);
  });
});

describe('infra/deploy/cloud', () => {
  it('the TOML profiles load with @temporalio/envconfig, name a `<namespace>.<account>` namespace and hold no secret', () => {
    const text = read(join(DEPLOY, 'cloud', 'temporal.toml'));
    const config = loadClientConfigFromToml(new TextEncoder().encode(text), { strict: true });
    expect(Object.keys(config.profiles).sort()).toEqual(['cloud-api-key', 'cloud-mtls']);
    for (const profile of Object.values(config.profiles)) {
      expect(profile.namespace).toMatch(/^[a-z0-9-]+\.[a-z0-9]+$/);
      expect(profile.apiKey).toBeUndefined();
    }
    expect(config.profiles['cloud-mtls']?.tls?.clientCert).toBeDefined();
  });

  it('the overlay replaces only settings the base ConfigMap has, and the result passes the start-up check', () => {
    const overlay = Kustomization.parse(parseYaml(read(join(DEPLOY, 'cloud', 'kustomization.yaml'))));
    expect(overlay.resources).toEqual(['../kubernetes']);
    const patch = z.object({ kind: z.literal('ConfigMap'), metadata: z.object({ name: z.string() }), data: z.record(z.string(), z.string().nullable()) }).parse(parseYaml(overlay.patches[0]!.patch));
    const baseData = configMaps.get(patch.metadata.name);
    expect(baseData).toBeDefined();
    expect(Object.keys(patch.data).filter((key) => !(key in baseData!))).toEqual([]);
    // A strategic merge: null removes a key.
    const merged: Record<string, string> = { ...baseData };
    for (const [key, value] of Object.entries(patch.data)) {
      if (value === null) delete merged[key];
      else merged[key] = value;
    }
    expect(Object.keys(merged).filter((key) => key.startsWith('TEMPORAL_TLS_'))).toEqual([]);
    expect(loadConfig({ ...merged, TEMPORAL_API_KEY: SECRET_PLACEHOLDER }).temporal().namespace).toBe(patch.data.TEMPORAL_NAMESPACE);
  });

  it('search-attributes.sh is valid bash and registers every search attribute with its type', () => {
    const path = join(DEPLOY, 'cloud', 'search-attributes.sh');
    execFileSync('bash', ['-n', path]);
    const added = [...read(path).matchAll(/--search-attribute "([A-Za-z]+)=([A-Za-z]+)"/g)].map((m) => [m[1], m[2]]);
    expect(added).toHaveLength(SEARCH_ATTRIBUTE_NAMES.length);
    expect(Object.fromEntries(added)).toEqual(SEARCH_ATTRIBUTES);
  });
});

describe('infra/deploy/slurm', () => {
  const script = join(DEPLOY, 'slurm', 'gpu-worker.sbatch');
  const text = read(script);

  it('gpu-worker.sbatch is valid bash, asks for a GPU and for SIGTERM before its time limit', () => {
    execFileSync('bash', ['-n', script]);
    expect(text).toMatch(/^#SBATCH --gres=gpu:\d+$/m);
    expect(text).toMatch(/^#SBATCH --signal=B:TERM@\d+$/m);
    expect(text).toMatch(/^trap .*kill -TERM .*TERM/m);
  });

  it('runs `vla worker gpu` as the CLI accepts it, also with the arguments its usage shows', async () => {
    const command = /^\.\/cli\/vla\.sh ((?:[\w-]+ )*[\w-]+) "\$@" &$/m.exec(text);
    expect(command, 'the line that starts the worker').not.toBeNull();
    const args = command![1]!.split(' ');
    expect(queueOf(await parseVlaCommand(args))).toBe(TaskQueue.gpu);
    const usages = [...text.matchAll(/^#\s+sbatch .*gpu-worker\.sbatch(.*?)(?:#.*)?$/gm)].map((m) => m[1]!.trim().split(/\s+/).filter((a) => a !== ''));
    expect(usages.length).toBeGreaterThan(0);
    for (const extra of usages) expect((await parseVlaCommand([...args, ...extra])).kind).toBe('gpu');
    // The 4-GPU usage polls the queue of the 4-GPU Kubernetes workers.
    const x4 = deployments.find((d) => Number(d.spec.template.spec.containers[0]!.resources.requests['nvidia.com/gpu'] ?? 0) > 1);
    const queues = await Promise.all(usages.map(async (extra) => queueOf(await parseVlaCommand([...args, ...extra]))));
    expect(queues).toContain(x4?.metadata.labels[QUEUE_LABEL]);
  });

  it('the example environment sets only variables the code reads and passes the start-up check', () => {
    const example = read(join(DEPLOY, 'slurm', 'gpu-worker.env.example'));
    const variables = Object.fromEntries(
      example
        .split('\n')
        .filter((line) => /^[A-Z_][A-Z0-9_]*=/.test(line))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
    );
    const exported = [...text.matchAll(/^export ([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]!);
    expect([...Object.keys(variables), ...exported].flatMap((name) => unknownVariable(name) ?? [])).toEqual([]);
    const config = loadConfig({ ...variables, VLA_MULTI_HOST: '1' });
    expect(config.storeUri).toMatch(/^s3:\/\//);
  });
});

describe('infra/deploy/image', () => {
  it('the image runs the CLI the manifests call', () => {
    const dockerfile = read(join(DEPLOY, 'image', 'Dockerfile'));
    expect(dockerfile).toMatch(/^ENTRYPOINT \[.*"\/app\/cli\/vla\.sh"\]$/m);
    // The manifests name the images the Dockerfile's targets build.
    const targets = [...dockerfile.matchAll(/^FROM \S+ AS (\w+)$/gm)].map((m) => m[1]);
    expect(targets).toEqual(['base', 'gpu']);
    expect(new Set(deployments.map((d) => d.spec.template.spec.containers[0]!.image))).toEqual(new Set(['vla-pipelines', 'vla-pipelines-gpu']));
  });
});
