import { Context } from '@temporalio/activity';
import { implement } from '../../data-schemas/activity-contract';
import { ExperimentActivities, LINEAGE_FORMAT, LINEAGE_FORMAT_VERSION } from '../../data-schemas/experiment';
import type { ObjectStore } from '../store/types';
import { artifactDigest, findStage, sealLineage } from './lineage';
import { writeExperimentReport } from './report';

export interface ExperimentDeps {
  store: ObjectStore;
  /** The worker's code revision, recorded in every lineage record it seals. @default 'unknown' */
  gitRevision?: string;
}

/** The experiment's activities on the CPU worker: content hashes, lineage records, the report. */
export function createExperimentActivities({ store, gitRevision }: ExperimentDeps) {
  const heartbeat = { heartbeat: (details?: unknown) => Context.current().heartbeat(details) };
  return implement(ExperimentActivities, 'cpu', {
    async digestArtifacts({ artifacts }) {
      const digests: string[] = [];
      for (const a of artifacts) digests.push(await artifactDigest(store, a.kind, a.uri, heartbeat));
      return digests;
    },
    findStage: ({ outputUri, key }) => findStage(store, outputUri, key),
    async sealStage({ outputUri, codeStage, artifact, ...rest }) {
      const sha256 = await artifactDigest(store, artifact.kind, artifact.uri, heartbeat);
      return sealLineage(store, outputUri, {
        format: LINEAGE_FORMAT,
        formatVersion: LINEAGE_FORMAT_VERSION,
        ...rest,
        artifact: { ...artifact, sha256 },
        code: { stage: codeStage, gitRevision: gitRevision ?? 'unknown' },
      });
    },
    writeExperimentReport: (input) => writeExperimentReport(store, input),
  });
}
