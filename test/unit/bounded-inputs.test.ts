import { LegacyWorkflowIds, WorkflowIds } from '../../data-schemas/workflow-ids';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_SEARCH_ATTRIBUTE_LIST_BYTES, MAX_WORKFLOW_ID_BYTES, TaskQueueName, boundedSearchAttribute, boundedSearchAttributeList, boundedWorkflowId, ModelRef, utf8Bytes, utf8Length } from '../../data-schemas/bounded';
import { RelabelDatasetInput } from '../../data-schemas/relabel';
import { EvalCampaignInput } from '../../data-schemas/robot';
import { NightlyEvaluationInput, VqaSweepInput } from '../../data-schemas/vqa';
import { trialKey } from '../../workflows/robot/eval-campaign';
import { TrainLoraInput } from '../../data-schemas/training';
import { MAX_OBJECT_URI_LENGTH, ObjectUriField, objectUriProblem } from '../../data-schemas/uri';
import { formatZodIssues } from '../../data-schemas/issues';
import type { ZodError } from 'zod';

const issuesOf = (result: { success: boolean; error?: ZodError }): string[] => (result.error ? formatZodIssues(result.error) : []);

describe('ObjectUriField', () => {
  it.each([
    'file:///data/bridge',
    'file:///data/bridge/',
    'file:///data/my%20dataset/%C3%A9t%C3%A9',
    's3://vla-data/bridge/labels/heuristic-h2',
    's3://vla-data',
    'file:///data/a..b/.hidden/x.y',
    `file:///${'a'.repeat(200)}/${'b'.repeat(200)}/${'c'.repeat(200)}/${'d'.repeat(200)}/${'e'.repeat(200 - 4)}`.slice(0, MAX_OBJECT_URI_LENGTH),
  ])('accepts %s', (uri) => {
    expect(objectUriProblem(uri)).toBeUndefined();
    expect(ObjectUriField.safeParse(uri).success).toBe(true);
  });

  it.each([
    ['file:///data/../etc/passwd', /"\.\." path segment/],
    ['file:///data/./x', /"\." path segment/],
    ['file:///data/..', /"\.\." path segment/],
    ['s3://vla-data/a/../../b', /"\.\." path segment/],
    ['file:///data/%2e%2e/x', /percent-encoded "\.\." path segment \("%2e%2e"/],
    ['file:///data/%2E./x', /percent-encoded "\.\." path segment \("%2E\."/],
    ['file:///data/.%2E/x', /percent-encoded "\.\." path segment/],
    ['file:///data/%2e/x', /percent-encoded "\." path segment/],
    ['file:///data/%252e%252e/x', /double-encodes a dot/],
    ['file:///data/%2e%2e%2fx', /percent-encodes a path separator/],
    ['file:///data/..%5cx', /percent-encodes a path separator/],
    ['file:///data\\..\\x', /backslash at character 12/],
    ['file:///data/%zz', /malformed percent-encoding at character 13/],
    ['file:///data/%4', /malformed percent-encoding/],
    ['file:///data/%C0%AE%C0%AE/x', /not UTF-8/],
    ['file:///data/a\u0000b', /control character U\+0000 at character 14/],
    ['file:///data/a\nb', /control character U\+000A/],
    ['file:///data/a%00b', /percent-encodes the control character U\+0000/],
    ['file:///data/a b', /space at character 14/],
    ['file:///data/été', /non-ASCII character U\+00E9/],
    ['file:///data/a\u202eb', /non-ASCII character U\+202E/],
    ['http://example.com/x', /expected file:\/\/\/abs\/path or s3:\/\/bucket\/key/],
    ['file://relative/x', /absolute path/],
    ['s3://Bad_Bucket/x', /not a valid S3 bucket name/],
    [`file:///${'x'.repeat(MAX_OBJECT_URI_LENGTH)}`, /at most 1024 characters/],
  ])('refuses %j, naming the problem', (uri, problem) => {
    const result = ObjectUriField.safeParse(uri);
    expect(result.success).toBe(false);
    const messages = issuesOf(result);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(problem);
  });

  it('never repeats a huge value in its message', () => {
    const messages = issuesOf(ObjectUriField.safeParse(`file:///${'x'.repeat(100_000)}`));
    expect(messages.join('').length).toBeLessThan(200);
  });
});

describe('workflow input fields name themselves', () => {
  it('trainLora: a 3 KB baseModel and a bad shardsUri are refused by field path', () => {
    const result = TrainLoraInput.safeParse({ shardsUri: 'file:///s/%2e%2e/shards.json', baseModel: 'm'.repeat(3000), outputUri: 'file:///out' });
    expect(issuesOf(result)).toEqual([
      expect.stringMatching(/^shardsUri: must be an object URI: .*"\.\." path segment/),
      expect.stringMatching(/^baseModel: must be at most 512 characters/),
    ]);
  });

  it('relabelDataset: a 1.2 KB outputUri is refused naming outputUri; a default output past the limit names datasetUri', () => {
    const long = `file:///${'o'.repeat(200)}/${'p'.repeat(200)}/${'q'.repeat(200)}/${'r'.repeat(200)}/${'s'.repeat(200)}/${'t'.repeat(200)}`;
    expect(long.length).toBeGreaterThan(1200);
    expect(issuesOf(RelabelDatasetInput.safeParse({ datasetUri: 'file:///data/bridge', outputUri: long }))).toEqual([expect.stringMatching(/^outputUri: must be an object URI of at most 1024/)]);
    const nearMax = `file:///${'d'.repeat(200)}/${'e'.repeat(200)}/${'f'.repeat(200)}/${'g'.repeat(200)}/${'h'.repeat(200)}`;
    expect(issuesOf(RelabelDatasetInput.safeParse({ datasetUri: nearMax }))).toEqual([expect.stringMatching(/^datasetUri: the default outputUri .* over 1024/)]);
    expect(RelabelDatasetInput.safeParse({ datasetUri: nearMax, outputUri: 'file:///out' }).success).toBe(true);
  });

  it('roots whose children get longer URIs leave room for them: vqaSweep, nightlyEvaluation, evalCampaign', () => {
    const uri = (n: number): string => `file:///${'u'.repeat(200)}/${'v'.repeat(200)}/${'w'.repeat(200)}/${'x'.repeat(200)}/${'y'.repeat(200)}`.slice(0, n);
    const benchmarks = [{ benchmark: 'mmmu', uri: 'file:///bench/mmmu' }];
    const sweep = (outputUri: string) => VqaSweepInput.safeParse({ models: [{ name: 'base', backend: 'local', baseModel: '/m' }], benchmarks, outputUri });
    expect(sweep(uri(960)).success).toBe(true);
    expect(issuesOf(sweep(uri(961)))).toEqual([expect.stringMatching(/^outputUri: must be an object URI of at most 960 characters \(its children's URIs append up to 64 more: \/items\/<benchmark>\/<set>\)/)]);
    expect(issuesOf(NightlyEvaluationInput.safeParse({ runsUri: 'file:///runs', outputUri: uri(891), benchmarks }))).toEqual([expect.stringMatching(/^outputUri: must be an object URI of at most 890 characters/)]);
    expect(issuesOf(EvalCampaignInput.safeParse({ outputUri: uri(961) }))).toEqual([expect.stringMatching(/^outputUri: must be an object URI of at most 960 characters/)]);
    // What the workflows append stays within their reserve.
    expect(`/items/${'realworldqa'}/${'0123456789abcdef'}`.length).toBeLessThanOrEqual(64);
    expect(`/runs/${'r'.repeat(64)}`.length).toBeLessThanOrEqual(70);
    expect(`/episodes/${trialKey({ taskId: 'pick_place_lift', trial: 999 })}`.length).toBeLessThanOrEqual(64);
  });

  it('model refs and task queues: no control characters, bounded, URIs held to the URI rules', () => {
    expect(ModelRef.safeParse('/models/gemma-3-4b-it').success).toBe(true);
    expect(ModelRef.safeParse('google/gemma-3-4b-it').success).toBe(true);
    expect(issuesOf(ModelRef.safeParse('google/gemma\u0000'))).toEqual([expect.stringMatching(/control or invisible character \(U\+0000 at character 12\)/)]);
    expect(issuesOf(ModelRef.safeParse('s3://models/a/%2e%2e/b'))).toEqual([expect.stringMatching(/percent-encoded "\.\." path segment/)]);
    expect(issuesOf(TaskQueueName.safeParse('q'.repeat(201)))).toEqual([expect.stringMatching(/at most 200 characters/)]);
  });
});

describe('boundedWorkflowId', () => {
  it('keeps ids up to 1000 bytes byte-identical (recorded histories replay)', () => {
    const legacy = LegacyWorkflowIds.relabelTrajectory('file:///tmp/vla-record-abc/bridge/labels/gemini-gemini-2.5-flash-p1', 'gemini-gemini-2.5-flash-p1', 'traj-000001');
    expect(legacy).toBe('relabel:file:///tmp/vla-record-abc/bridge/labels/gemini-gemini-2.5-flash-p1:gemini-gemini-2.5-flash-p1:traj-000001');
    const short = WorkflowIds.relabelTrajectory('file:///tmp/out', 'heuristic-h2', 'traj-000001');
    expect(short).toBe('relabel-trajectory:file:///tmp/out:heuristic-h2:traj-000001');
    expect(WorkflowIds.stationLock('sim-1')).toBe('station-lock-sim-1');
    expect(WorkflowIds.vqaEvaluate('file:///out', 'base', 'mmmu')).toBe('vqa-evaluate:file:///out:base:mmmu');
    const exactly = 'x'.repeat(MAX_WORKFLOW_ID_BYTES);
    expect(boundedWorkflowId(exactly)).toBe(exactly);
  });

  it('bounds a long id to 1000 bytes: readable prefix, hash of the whole, stable, distinct', () => {
    const outputUri = `file:///${'o'.repeat(250)}/${'p'.repeat(250)}/${'q'.repeat(250)}/${'r'.repeat(250)}`;
    const a = WorkflowIds.relabelTrajectory(outputUri, 'heuristic-h2', 'traj-000001');
    const b = WorkflowIds.relabelTrajectory(outputUri, 'heuristic-h2', 'traj-000002');
    expect(utf8Length(`relabel-trajectory:${outputUri}:heuristic-h2:traj-000001`)).toBeGreaterThan(MAX_WORKFLOW_ID_BYTES);
    for (const id of [a, b]) {
      expect(utf8Length(id)).toBeLessThanOrEqual(MAX_WORKFLOW_ID_BYTES);
      expect(id.startsWith(`relabel-trajectory:file:///${'o'.repeat(250)}`)).toBe(true);
      expect(id).toMatch(/~[0-9a-f]{64}$/);
    }
    expect(a).not.toBe(b);
    expect(WorkflowIds.relabelTrajectory(outputUri, 'heuristic-h2', 'traj-000001')).toBe(a);
  });

  it('counts UTF-8 bytes and cuts on whole code points', () => {
    const id = `${'é'.repeat(400)}${'🤖'.repeat(100)}`;
    const bounded = boundedWorkflowId(id);
    expect(utf8Length(bounded)).toBeLessThanOrEqual(MAX_WORKFLOW_ID_BYTES);
    expect(bounded).not.toMatch(/[\ud800-\udfff](?![\udc00-\udfff])/u);
    expect(utf8Length('é🤖a')).toBe(utf8Bytes('é🤖a').length);
    expect([...utf8Bytes('é🤖a')]).toEqual([...new Uint8Array(Buffer.from('é🤖a', 'utf8'))]);
  });

  it('the hash is SHA-256 of the whole id (agrees with node:crypto)', () => {
    const value = 'a'.repeat(1001);
    expect(boundedWorkflowId(value).slice(-64)).toBe(createHash('sha256').update(value, 'utf8').digest('hex'));
  });
});

describe('boundedSearchAttributeList', () => {
  const encodedBytes = (values: string[]): number => utf8Length(JSON.stringify(values));

  it('keeps short values as they are, without duplicates', () => {
    expect(boundedSearchAttributeList(['vlm2vla', 'vlm2vla-at', 'vlm2vla'])).toEqual(['vlm2vla', 'vlm2vla-at']);
    expect(boundedSearchAttributeList([])).toEqual([]);
  });

  it('keeps a list of long values under the limit, each value distinct and hashed', () => {
    const values = Array.from({ length: 16 }, (_, i) => `${'v'.repeat(900)}-${i}`);
    const bounded = boundedSearchAttributeList(values);
    expect(bounded).toHaveLength(16);
    expect(new Set(bounded).size).toBe(16);
    expect(encodedBytes(bounded)).toBeLessThanOrEqual(MAX_SEARCH_ATTRIBUTE_LIST_BYTES);
    for (const value of bounded) expect(value).toMatch(/^v+~[0-9a-f]{64}$/);
  });

  it('a list longer than the shares allow keeps its first values, under the limit', () => {
    const values = Array.from({ length: 100 }, (_, i) => `${'é'.repeat(600)}${i}`);
    const bounded = boundedSearchAttributeList(values);
    expect(bounded.length).toBeGreaterThan(16);
    expect(bounded.length).toBeLessThan(100);
    expect(encodedBytes(bounded)).toBeLessThanOrEqual(MAX_SEARCH_ATTRIBUTE_LIST_BYTES);
    expect(bounded[0]!.slice(-64)).toBe(createHash('sha256').update(values[0]!, 'utf8').digest('hex'));
  });
});

describe('boundedSearchAttribute', () => {
  it('keeps short values and bounds a 3 KB one under the server limit', () => {
    expect(boundedSearchAttribute('/models/gemma')).toBe('/models/gemma');
    const bounded = boundedSearchAttribute('m'.repeat(3000));
    expect(utf8Length(bounded)).toBeLessThanOrEqual(1000);
    expect(bounded).toMatch(/^m+~[0-9a-f]{64}$/);
  });
});
