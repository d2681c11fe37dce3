import type { Command } from 'commander';
import { lineageTree, type LineageTree, type LineageTreeInput } from '../../activities/experiment/lineage-tree';
import { createObjectStore, toObjectUri } from '../../activities/store';
import type { ArtifactRef } from '../../data-schemas/experiment';

/** Enough of a sha256 to tell artefacts apart by eye. */
const SHORT_HASH = 12;

function artifactText(a: Pick<ArtifactRef, 'kind' | 'uri' | 'sha256'>): string {
  return `${a.kind} ${a.uri} ${a.sha256 !== undefined ? `sha256 ${a.sha256.slice(0, SHORT_HASH)}` : '(named, not hashed)'}`;
}

function nodeLines(tree: LineageTree, indent: string, role: string | undefined): string[] {
  const { record } = tree;
  const lines = [
    `${indent}${role !== undefined ? `${role}: ` : ''}${record.stage} -> ${artifactText(record.artifact)}`,
    `${indent}    code ${record.code.stage} (git ${record.code.gitRevision}), experiment ${record.producedBy.experiment}, finished ${record.finishedAt}`,
  ];
  for (const input of tree.inputs) lines.push(...inputLines(input, `${indent}  `));
  return lines;
}

function inputLines(input: LineageTreeInput, indent: string): string[] {
  if (input.tree !== undefined) return nodeLines(input.tree, indent, input.role);
  const why =
    input.unresolved === 'missing' ? ` (its lineage ${input.lineageUri ?? ''} is missing)`
    : input.unresolved === 'cycle' ? ` (cycle: its lineage ${input.lineageUri ?? ''} is one of its own ancestors)`
    : '';
  return [`${indent}${input.role}: ${artifactText(input)}${why}`];
}

/**
 * The tree as `vla lineage` prints it: each stage's artefact (kind, URI, short sha256), the code and
 * the experiment that made it, and under it the inputs, two spaces deeper per level; an input the
 * experiment did not make is one line.
 */
export function formatLineageTree(tree: LineageTree): string[] {
  return nodeLines(tree, '', undefined);
}

export function registerLineage(program: Command): void {
  program
    .command('lineage')
    .description('where an experiment artefact came from: its stage, code, experiment and inputs, followed back to the raw dataset')
    .argument('<uri-or-path>', 'a lineage.json, a stage folder, or anything inside one (an adapter folder, a shards.json): a path, file:///abs/path or s3://bucket/key')
    .option('--json', 'print the tree as JSON (every record in full)')
    .action(async (target: string, opts: { json?: boolean }) => {
      // Runs in the user's own process on a URI the user typed, with the user's rights: not a worker, so not confined.
      const store = createObjectStore({ roots: 'unconfined' });
      const tree = await lineageTree(store, toObjectUri(target));
      if (opts.json === true) console.log(JSON.stringify(tree, null, 2));
      else for (const line of formatLineageTree(tree)) console.log(line);
    });
}
