import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { formatZodIssues } from '../../data-schemas/issues';
import { EvalCampaignInput, RobotEpisodeInput, type EvalCampaignResult, type RobotEpisodeResult } from '../../data-schemas/robot';
import { WorkflowIds } from '../../data-schemas/workflow-ids';
import { startAndFollow } from '../follow';
import { campaignProgressQuery } from '../../workflows';
import type { CampaignProgress } from '../../workflows/robot/eval-campaign';


export async function runCampaign(raw: unknown, say: (line: string) => void, wait = true): Promise<EvalCampaignResult | undefined> {
  const parsed = EvalCampaignInput.safeParse(raw);
  if (!parsed.success) throw new Error(`invalid campaign: ${formatZodIssues(parsed.error).join('; ')}`);
  return startAndFollow<EvalCampaignResult, CampaignProgress>({
    workflowType: 'evalCampaign',
    workflowId: WorkflowIds.evalCampaign(parsed.data.outputUri),
    input: parsed.data,
    wait,
    say,
    progress: {
      query: campaignProgressQuery,
      format: 'episodes [{bar}] {value}/{total} | failed {failed}',
      bar: (p) => ({ value: p.done, total: p.total, payload: { failed: p.failed } }),
    },
  });
}

export function printCampaignResult(result: EvalCampaignResult, say: (line: string) => void): void {
  say(`  ${result.episodes} episodes; success: ${Object.entries(result.successRate).map(([task, rate]) => `${task} ${rate.toFixed(0)}%`).join(', ')}`);
  say(`  summary: ${result.summaryUri}`);
  say(`  report:  ${result.reportUri}`);
}

export function registerRobot(program: Command): void {
  program
    .command('episode')
    .description('start robotEpisode from a JSON input file (the same JSON the Web UI takes) and print how it ended')
    .argument('<input.json>', 'a RobotEpisodeInput (README: "robotEpisode")')
    .option('--no-wait', 'start it and return; steer it from the Web UI')
    .action(async (file: string, opts: { wait: boolean }) => {
      const say = (line: string): void => console.log(line);
      const parsed = RobotEpisodeInput.safeParse(JSON.parse(readFileSync(file, 'utf8')));
      if (!parsed.success) throw new Error(`invalid episode: ${formatZodIssues(parsed.error).join('; ')}`);
      const result = await startAndFollow<RobotEpisodeResult, unknown>({ workflowType: 'robotEpisode', workflowId: WorkflowIds.robotEpisode(parsed.data.outputUri), input: parsed.data, wait: opts.wait, say });
      if (result) {
        say(`  ${result.outcome}${result.success === null ? '' : result.success ? ' (the simulator judges it a success)' : ' (the simulator judges it a failure)'}: ${result.reason}`);
        say(`  ${result.subtasksCompleted}/${result.subtasks.length} subtasks, ${result.cycles} cycles, ${result.formatFailures} format failures, ${result.repairs} repairs`);
        say(`  record: ${result.recordUri}`);
      }
    });
  program
    .command('campaign')
    .description('start evalCampaign from a JSON input file (the same JSON the Web UI takes) and print the report')
    .argument('<input.json>', 'an EvalCampaignInput (README: "evalCampaign")')
    .option('--no-wait', 'start it and return; watch it in the Web UI')
    .action(async (file: string, opts: { wait: boolean }) => {
      const say = (line: string): void => console.log(line);
      const result = await runCampaign(JSON.parse(readFileSync(file, 'utf8')), say, opts.wait);
      if (result) printCampaignResult(result, say);
    });
}
