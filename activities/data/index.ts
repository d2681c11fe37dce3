export * from './errors';
export { maskedCrc32c, readTfRecords, type ReadTfRecordsOptions, type TfRecord } from './tfrecord';
export { decodeExample, encodeExample, ExampleType, TF_EXAMPLE_PROTO, TfExample, type Feature, type FeatureKind } from './tf-example';
export {
  contentSha256Of,
  framePath,
  readManifest,
  readTrajectory,
  recordingSha256,
  trajectoryContentSha256,
  trajectoryRecordPath,
  writeDataset,
  type DatasetMeta,
  type PendingTrajectory,
  type RecordedStep,
  type WriteDatasetOptions,
} from './dataset-writer';
export { formatIssue, type ValidationIssue } from './issues';
export { validateDataset, type ValidateOptions, type ValidationReport } from './validate';
export {
  BRIDGE_IMPORTER,
  BRIDGE_ROBOT,
  BridgeFeature,
  bridgeEpisode,
  bridgeTrajectoryId,
  importBridgeRlds,
  readBridgeEpisodes,
  type BridgeEpisode,
  type ImportBridgeOptions,
} from './bridge-import';
