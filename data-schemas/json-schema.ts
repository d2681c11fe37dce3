import { z } from 'zod';
import { EpisodeRecord, EvalCampaignInput, RobotEpisodeInput, RobotEpisodeResult } from './robot';
import { DLanRecord } from './d-lan';
import { DRobTrajectory } from './d-rob';
import { DatasetManifest } from './manifest';
import { QuarantineRecord, RelabelDatasetInput, RelabelDatasetResult, RelabelReport, RelabelTrajectoryInput, RelabelTrajectoryResult } from './relabel';
import { ShardDatasetInput, ShardDatasetResult, ShardManifest, ShardSample, TrainLoraInput, TrainLoraResult } from './training';
import { StationConfig, WireActRequest, WireActResponse, WireObservation, WireResetRequest, WireStopRequest } from './station';
import { StoreSmokeInput, StoreSmokeResult } from './workflows';
import { ExperimentInput, ExperimentResult, LineageRecord } from './experiment';
import { NightlyEvaluationInput, VqaItem, VqaPrediction, VqaSweepInput, VqaSweepResult } from './vqa';

/** The schemas published as JSON Schema under docs/schemas/ (for the docs and other languages). */
export const PUBLISHED_SCHEMAS = {
  'd-rob-trajectory': DRobTrajectory,
  'dataset-manifest': DatasetManifest,
  'd-lan-record': DLanRecord,
  'store-smoke-input': StoreSmokeInput,
  'store-smoke-result': StoreSmokeResult,
  'relabel-dataset-input': RelabelDatasetInput,
  'relabel-dataset-result': RelabelDatasetResult,
  'relabel-trajectory-input': RelabelTrajectoryInput,
  'relabel-trajectory-result': RelabelTrajectoryResult,
  'relabel-report': RelabelReport,
  'relabel-quarantine-record': QuarantineRecord,
  'shard-sample': ShardSample,
  'shard-manifest': ShardManifest,
  'shard-dataset-input': ShardDatasetInput,
  'shard-dataset-result': ShardDatasetResult,
  'train-lora-input': TrainLoraInput,
  'train-lora-result': TrainLoraResult,
  'vqa-item': VqaItem,
  'vqa-prediction': VqaPrediction,
  'vqa-sweep-input': VqaSweepInput,
  'vqa-sweep-result': VqaSweepResult,
  'nightly-evaluation-input': NightlyEvaluationInput,
  'station-config': StationConfig,
  'station-wire-observation': WireObservation,
  'station-wire-reset-request': WireResetRequest,
  'station-wire-act-request': WireActRequest,
  'station-wire-act-response': WireActResponse,
  'station-wire-stop-request': WireStopRequest,
  'robot-episode-input': RobotEpisodeInput,
  'robot-episode-result': RobotEpisodeResult,
  'robot-episode-record': EpisodeRecord,
  'eval-campaign-input': EvalCampaignInput,
  'experiment-input': ExperimentInput,
  'experiment-result': ExperimentResult,
  lineage: LineageRecord,
} as const;

export function jsonSchemaOf(name: keyof typeof PUBLISHED_SCHEMAS): string {
  const schema = z.toJSONSchema(PUBLISHED_SCHEMAS[name], { io: 'input', unrepresentable: 'any' });
  return `${JSON.stringify({ $id: `vla-pipelines/${name}.schema.json`, ...schema }, null, 2)}\n`;
}
