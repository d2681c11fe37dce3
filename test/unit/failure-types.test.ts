import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { DataErrorCode, INVALID_WORKFLOW_INPUT, StationFailure, StoreErrorCode, UnmappedFailure } from '../../data-schemas/failures';
import { GeminiFailure, RelabelFailure } from '../../data-schemas/relabel';
import { RobotFailure, VerifierFailure } from '../../data-schemas/robot';
import { ExperimentFailure } from '../../data-schemas/experiment';
import { ShardFailure } from '../../data-schemas/shard';
import { TrainingFailure } from '../../data-schemas/training';
import { BACKEND_FAILURE_TYPES, VqaFailure } from '../../data-schemas/vqa';
import { REPO_ROOT } from '../../infra/config';

/** Every declared failure type, and the modules that declare them. */
const DECLARED = new Set<string>(
  [DataErrorCode, StationFailure, StoreErrorCode, UnmappedFailure, GeminiFailure, RelabelFailure, RobotFailure, VerifierFailure, ShardFailure, TrainingFailure, BACKEND_FAILURE_TYPES, VqaFailure, ExperimentFailure]
    .flatMap((o) => Object.values(o))
    .concat(INVALID_WORKFLOW_INPUT),
);
const DECLARING = new Set(['data-schemas/failures.ts', 'data-schemas/experiment.ts', 'data-schemas/relabel.ts', 'data-schemas/robot.ts', 'data-schemas/shard.ts', 'data-schemas/training.ts', 'data-schemas/vqa.ts']);

/**
 * Failure types are declared once, as values (data-schemas/failures.ts and each pipeline's
 * data-schemas module), and imported where they are thrown, listed or compared: a literal retyped
 * somewhere would silently stop matching when the declaration changes, turning a permanent failure
 * into retries. Read with the TypeScript parser, so messages that merely mention a type are fine.
 */
function literalFailureTypes(file: string, text: string, declared: ReadonlySet<string> = DECLARED): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const reported = new Set<ts.Node>();
  const report = (node: ts.Node, what: string): void => {
    reported.add(node);
    found.push(`${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}: ${what} ${node.getText()}`);
  };
  const isLiteral = (node: ts.Node | undefined): node is ts.StringLiteral | ts.NoSubstitutionTemplateLiteral =>
    node !== undefined && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node));
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node)) {
      const callee = node.expression.getText();
      // ApplicationFailure.nonRetryable(message, type) / .retryable(message, type)
      if (/(^|\.)(nonRetryable|retryable)$/.test(callee) && /ApplicationFailure/.test(callee) && isLiteral(node.arguments[1])) report(node.arguments[1], 'thrown as');
    }
    if (ts.isPropertyAssignment(node)) {
      const name = node.name.getText();
      // ApplicationFailure.create({ type: '...' }) and retry policies' lists
      if (name === 'type' && isLiteral(node.initializer) && ts.isObjectLiteralExpression(node.parent) && ts.isCallExpression(node.parent.parent) && /ApplicationFailure\.create$/.test(node.parent.parent.expression.getText())) {
        report(node.initializer, 'created as');
      }
      if (name === 'nonRetryableErrorTypes' && ts.isArrayLiteralExpression(node.initializer)) for (const el of node.initializer.elements) if (isLiteral(el)) report(el, 'listed as');
    }
    // Any other spelling of a declared type outside its declaration (a list kept in a constant, a conditional type).
    if (isLiteral(node) && declared.has(node.text) && !DECLARING.has(file) && !reported.has(node)) report(node, 'spelled as');
    // `failure.type === '...'` or `type === '...'`
    if (ts.isBinaryExpression(node) && [ts.SyntaxKind.EqualsEqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsEqualsToken].includes(node.operatorToken.kind)) {
      for (const [side, other] of [[node.left, node.right], [node.right, node.left]] as const) {
        const named = side.getText();
        if ((named === 'type' || named.endsWith('.type')) && isLiteral(other) && /^([A-Z]|Station:)/.test(other.text)) report(other, 'compared with');
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('failure types are values, never retyped literals', () => {
  it('finds literals where it should (the checker itself)', () => {
    const sample = [
      "throw ApplicationFailure.nonRetryable('bad', 'SomeType');",
      "throw ApplicationFailure.create({ type: 'Other', message: 'x', nonRetryable: true });",
      "proxyActivities({ retry: { nonRetryableErrorTypes: ['Listed', Known.Value] } });",
      "if (failure.type === 'Station:busy') {}",
      "throw ApplicationFailure.nonRetryable(`mentions 'SomeType' in a message`, Known.Type);",
      "if (phase.type === 'idle') {}",
      "const FATAL = ['Declared'];",
    ].join('\n');
    expect(literalFailureTypes('sample.ts', sample, new Set(['Declared'])).map((l) => l.replace(/^sample\.ts:\d+: /, ''))).toEqual([
      "thrown as 'SomeType'",
      "created as 'Other'",
      "listed as 'Listed'",
      "compared with 'Station:busy'",
      "spelled as 'Declared'",
    ]);
  });

  it('no source file outside the declarations throws, lists or compares a literal failure type', () => {
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', '*.ts'], { cwd: REPO_ROOT, encoding: 'utf8' })
      .split('\0')
      .filter((p) => p !== '' && !p.startsWith('test/') && !p.endsWith('.d.ts'));
    const literals = files.flatMap((p) => literalFailureTypes(p, readFileSync(join(REPO_ROOT, p), 'utf8')));
    expect(literals).toEqual([]);
  });
});
