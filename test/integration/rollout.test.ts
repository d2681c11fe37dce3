import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FileStore } from '../../activities/store/file-store';
import { fileUri } from '../../data-schemas/uri';
import { loadConfig, REPO_ROOT } from '../../infra/config';
import { ensureTemporalCli } from '../../infra/temporal';
import { WORKFLOWS_PATH } from '../../workers/cpu';
import { connectTestTemporal, HISTORIES_DIR, quietRuntime, workflowBundle, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuWorker } from '../helpers/workers';

const run = promisify(execFile);

/**
 * The rollout check of docs/deployment.md, "Rolling out new workflow code": histories recorded from
 * the running version replay against the new code before its workers are deployed.
 * test/integration/replay.test.ts replays every recorded history against the current code; this file
 * shows that the check catches what it must: each history recorded before a `patched()` change fails
 * to replay once that change ships without its patch. It also shows that a history exported with
 * the `temporal` CLI, as an operator records one from a running cluster, replays.
 */

/** Recorded before the patch it names (no marker of it in the history), with the workflow id it ran under. */
const BEFORE_PATCH = [
  { patchId: 'relabel-page-precheck', history: 'relabelDataset-first-run-before-page-precheck.json' },
  { patchId: 'relabel-queue-watch', history: 'relabelDataset-first-run.json' },
  { patchId: 'campaign-station-watch', history: 'evalCampaign.json', workflowId: 'evalCampaign.workflow-id' },
  { patchId: 'vqa-sweep-queue-watch', history: 'vqaSweep-before-queue-watch.json' },
] as const;

const PATCH_MARKER = 'core_patch';

/** The patch ids of the markers a recorded history holds. */
function patchMarkers(historyJson: string): string[] {
  const history = historyFromJSON(JSON.parse(historyJson));
  return (history.events ?? []).flatMap((event) => {
    const marker = event.markerRecordedEventAttributes;
    if (marker?.markerName !== PATCH_MARKER) return [];
    return (marker.details?.['patch-data']?.payloads ?? []).map((payload) => (JSON.parse(Buffer.from(payload.data ?? []).toString('utf8')) as { id: string }).id);
  });
}

/** The workflows bundled with one patch guard removed. */
function bundleWithoutPatch(patchId: string): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    logger: new DefaultLogger('WARN'),
    webpackConfigHook: (config) => {
      config.module?.rules?.push({
        test: /\.ts$/,
        include: join(REPO_ROOT, 'workflows'),
        enforce: 'pre',
        use: [{ loader: join(REPO_ROOT, 'test', 'helpers', 'unpatch-loader.mjs'), options: { patchId } }],
      });
      return config;
    },
  });
}

describe('rolling out new workflow code', () => {
  it.each(BEFORE_PATCH)('$history, recorded before the patch $patchId, breaks when the change ships without it', { timeout: 300_000 }, async ({ patchId, history, ...rest }) => {
    quietRuntime();
    const json = readFileSync(join(HISTORIES_DIR, history), 'utf8');
    // The history is from the version before the change: it holds no marker of this patch.
    expect(patchMarkers(json)).not.toContain(patchId);
    const workflowId = 'workflowId' in rest ? readFileSync(join(HISTORIES_DIR, rest.workflowId), 'utf8').trim() : undefined;
    const replay = Worker.runReplayHistory({ workflowBundle: await bundleWithoutPatch(patchId) }, historyFromJSON(JSON.parse(json)), workflowId);
    await expect(replay).rejects.toBeInstanceOf(DeterminismViolationError);
  });

  describe('a history recorded from a running server with the temporal CLI', () => {
    let env: TemporalTestEnv;
    let dir: string;
    beforeAll(async () => {
      env = await connectTestTemporal();
      dir = mkdtempSync(join(tmpdir(), 'vla-rollout-'));
    });
    afterAll(async () => {
      await env.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('(`temporal workflow show --output json`) replays against the current code', { timeout: 300_000 }, async () => {
      const { address } = inject('temporal');
      const workflowId = await withCpuWorker(env, new FileStore(), 'rollout', async (taskQueue) => {
        const id = `rollout-${taskQueue}`;
        await env.client.workflow.execute('storeSmoke', { taskQueue, workflowId: id, args: [{ outputUri: fileUri(join(dir, 'smoke.txt')), text: 'rollout' }] });
        return id;
      });
      // What an operator runs against the production namespace (docs/deployment.md).
      const cli = await ensureTemporalCli(loadConfig().cacheDir);
      const { stdout } = await run(cli, ['workflow', 'show', '--workflow-id', workflowId, '--namespace', env.namespace, '--address', address, '--output', 'json'], {
        maxBuffer: 64 * 1024 * 1024,
      });
      const history = historyFromJSON(JSON.parse(stdout));
      expect(history.events?.length).toBeGreaterThan(3);
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
    });
  });
});
