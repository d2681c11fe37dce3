import { Command } from 'commander';
import { registerCluster } from './commands/cluster';
import { registerDataImport } from './commands/data-import';
import { registerDataImportLeRobot } from './commands/data-import-lerobot';
import { registerDataExportLeRobot } from './commands/data-export-lerobot';
import { registerDataSimulate } from './commands/data-simulate';
import { registerDataValidate } from './commands/data-validate';
import { registerDemo } from './commands/demo';
import { registerDev } from './commands/dev';
import { registerExperiment } from './commands/experiment';
import { registerHost } from './commands/host';
import { registerLineage } from './commands/lineage';
import { registerRelabel } from './commands/relabel';
import { registerRobot } from './commands/robot';
import { registerShard } from './commands/shard';
import { registerTrain } from './commands/train';
import { registerVqa } from './commands/vqa';
import { registerWorker } from './commands/worker';

/** The whole `vla` command tree, unparsed: cli/main.ts runs it, tests walk it. */
export function buildProgram(): Command {
  const program = new Command('vla')
    .description('vla-pipelines: durable VLM2VLA research pipelines on Temporal')
    .showHelpAfterError()
    .exitOverride();

  registerDemo(program);
  registerDev(program);
  registerCluster(program);
  registerWorker(program);
  registerHost(program);
  registerRelabel(program);
  registerShard(program);
  registerTrain(program);
  registerVqa(program);
  registerRobot(program);
  registerExperiment(program);
  registerLineage(program);
  const data = program.command('data').description('D_rob datasets: import, simulate, validate; LeRobot datasets in and out');
  registerDataImport(data);
  registerDataImportLeRobot(data);
  registerDataExportLeRobot(data);
  registerDataSimulate(data);
  registerDataValidate(data);
  return program;
}
