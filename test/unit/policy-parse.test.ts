import { describe, expect, it } from 'vitest';
import { actionPrompt, formatActionChunk, formatSubtaskList, PolicyStage, subtasksPrompt } from '../../data-schemas/prompts';
import type { ActionChunk } from '../../data-schemas/d-lan';
import { decodeWithRepair, parseActionChunk, parseMotionPlan, parseSubtasks, repairPrompt, type Result } from '../../activities/robot/policy/parse';

function error<T>(r: Result<T>): string {
  if (r.ok) throw new Error(`expected a parse error, got ${JSON.stringify(r.value)}`);
  return r.error;
}
function value<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected a value, got the error: ${r.error}`);
  return r.value;
}

const chunk: ActionChunk = [
  [0.012, -0.003, 0, 1],
  [0.011, -0.004, -0.01, 1],
  [-0.001, 0.002, -0.015, 0.5],
  [0, 0, 0, 0],
];

describe('parseSubtasks', () => {
  const subtasks = ['Move to carrot', 'Grasp carrot', 'Move to plate', 'Release carrot', 'Move away from plate'];

  it('round-trips formatSubtaskList', () => {
    expect(value(parseSubtasks(formatSubtaskList(subtasks)))).toEqual(subtasks);
  });

  it('tolerates "1)", bullets, a preamble, a code fence, trailing prose and blank lines', () => {
    expect(value(parseSubtasks('1) Move to eggplant\n2) Grasp eggplant\n3) Lift eggplant'))).toEqual(['Move to eggplant', 'Grasp eggplant', 'Lift eggplant']);
    expect(value(parseSubtasks('- Move to eggplant\n* Grasp eggplant\n\u2022 Lift eggplant'))).toEqual(['Move to eggplant', 'Grasp eggplant', 'Lift eggplant']);
    const chatty = `Here are the subtasks:\n\`\`\`\n1. Move to carrot\n\n2. Grasp carrot\n\`\`\`\nGood luck!`;
    expect(value(parseSubtasks(chatty))).toEqual(['Move to carrot', 'Grasp carrot']);
  });

  it('requires the first subtask to start with "Move to"', () => {
    expect(error(parseSubtasks('1. Grasp carrot\n2. Move to plate'))).toBe('the first subtask must start with "Move to", got "Grasp carrot"');
  });

  it('names a missing list, bad numbering, empty items and an interrupted list', () => {
    expect(error(parseSubtasks('First I move to the carrot, then I grasp it.'))).toMatch(/^no numbered subtask list found in "First I move/);
    expect(error(parseSubtasks(''))).toMatch(/^no numbered subtask list found/);
    expect(error(parseSubtasks('1. Move to carrot\n3. Grasp carrot'))).toBe('subtask number 3 is out of order, expected 2');
    expect(error(parseSubtasks('1. Move to carrot\n2. \n3. Lift'))).toBe('subtask 2 is empty');
    expect(error(parseSubtasks('1. Move to carrot\nthen\n2. Grasp carrot'))).toMatch(/^the subtask list is interrupted by other text before "2\. Grasp carrot"/);
  });
});

describe('parseMotionPlan', () => {
  it('trims, joins lines and drops a "Motion plan:" label', () => {
    expect(value(parseMotionPlan('  Move primarily down (about 6 cm),\n keeping the gripper open.  '))).toBe('Move primarily down (about 6 cm), keeping the gripper open.');
    expect(value(parseMotionPlan('Motion plan: Close the gripper and hold position.'))).toBe('Close the gripper and hold position.');
  });

  it('rejects an empty plan, several paragraphs, an action list and a runaway', () => {
    expect(error(parseMotionPlan('  \n '))).toBe('the motion plan is empty');
    expect(error(parseMotionPlan('Move down.\n\n[[0.0, 0.0, -0.01, 1]]'))).toBe('the motion plan must be a single paragraph, got 2 paragraphs');
    expect(error(parseMotionPlan('Move down: [[0.0, 0.0, -0.01, 1]]'))).toBe('the motion plan contains an action list; describe the motion in words only');
    expect(error(parseMotionPlan('down '.repeat(300)))).toMatch(/^the motion plan is 1499 characters long, at most 1000$/);
  });
});

describe('parseActionChunk', () => {
  it('round-trips formatActionChunk', () => {
    expect(value(parseActionChunk(formatActionChunk(chunk)))).toEqual(chunk);
    const one: ActionChunk = [[-0.05, 0.0004, 0.0306, 0.25]];
    expect(value(parseActionChunk(formatActionChunk(one)))).toEqual([[-0.05, 0, 0.031, 0.25]]);
  });

  it('extracts the outermost [[...]] from prose and code fences; tolerates spacing, ints, exponents, a trailing comma', () => {
    const text = `Sure! Here is the action chunk:\n\`\`\`python\n${formatActionChunk(chunk)}\n\`\`\`\nThe gripper closes at the end.`;
    expect(value(parseActionChunk(text))).toEqual(chunk);
    expect(value(parseActionChunk('[ [1e-2, +0, -.005, 1,] ,\n [0,0,0,0], ]'))).toEqual([
      [0.01, 0, -0.005, 1],
      [0, 0, 0, 0],
    ]);
  });

  it('names each malformation precisely', () => {
    expect(error(parseActionChunk('Move forward a bit, then close the gripper.'))).toBe(
      'no list of actions found in "Move forward a bit, then close the gripper."; expected a list of actions [[dx, dy, dz, gripper], ...]',
    );
    expect(error(parseActionChunk('[0.01, 0, 0, 1]'))).toBe('found a single action "[0.01, 0, 0, 1]", expected a list of actions [[dx, dy, dz, gripper], ...]');
    expect(error(parseActionChunk('[]'))).toBe('the action list is empty; an action chunk needs at least one [dx, dy, dz, gripper]');
    expect(error(parseActionChunk('[[0.012, -0.003, 0.000, 1], [0.011, -0.0'))).toBe(
      'the action list is not closed with "]]" (truncated answer?); expected a list of actions [[dx, dy, dz, gripper], ...]',
    );
    expect(error(parseActionChunk('[[0.01, 0, 0, 1], [0.01, 0, 0, 1], [0.01, 0, 0], [0, 0, 0, 1]]'))).toBe('action 3 has 3 numbers, expected 4 [dx, dy, dz, gripper]');
    expect(error(parseActionChunk('[[0.01, 0, 0, 1, 0]]'))).toBe('action 1 has 5 numbers, expected 4 [dx, dy, dz, gripper]');
    expect(error(parseActionChunk('[[0.01, 0, 0, 1], [0.01, 0, 0, 1.5]]'))).toBe('action 2: gripper 1.5 outside [0, 1] (1 open, 0 closed)');
    expect(error(parseActionChunk('[[0.01, 0, 0, -0.2]]'))).toBe('action 1: gripper -0.2 outside [0, 1] (1 open, 0 closed)');
    expect(error(parseActionChunk('[[zero point zero one, 0, 0, one]]'))).toBe('action 1: dx "zero point zero one" is not a number');
    expect(error(parseActionChunk('[[0.01, 0, 0, open]]'))).toBe('action 1: gripper "open" is not a number');
    expect(error(parseActionChunk('[[dx, dy, dz, gripper]]'))).toBe('action 1: dx "dx" is not a number');
    expect(error(parseActionChunk('[[0.01, , 0, 1]]'))).toBe('action 1 has an empty value at position 2');
    expect(error(parseActionChunk('[[]]'))).toBe('action 1 is empty, expected 4 numbers [dx, dy, dz, gripper]');
    expect(error(parseActionChunk('[[0.01, 0, 0, 1] [0, 0, 0, 1]]'))).toBe('expected "," or "]" after action 1, got "[0, 0, 0, 1]"');
    expect(error(parseActionChunk('[[0.01, 0, 0, 1], 0.2]'))).toBe('expected "[" to start action 2, got "0.2"');
    expect(error(parseActionChunk('[[[0.01, 0, 0, 1]]]'))).toBe('action 1 contains a nested list; each action is a flat [dx, dy, dz, gripper]');
    expect(error(parseActionChunk('[[1e999, 0, 0, 1]]'))).toBe('action 1: dx Infinity is not a finite number');
  });
});

describe('repairPrompt', () => {
  it('repeats the prompt, quotes the bad answer, names the error and shows the action format', () => {
    const prompt = actionPrompt('Move to carrot', 'Move primarily down (about 6 cm), keeping the gripper open.');
    const bad = '[[0.01, 0, 0, 1], [0.01, 0, 0]]';
    const err = error(parseActionChunk(bad));
    const text = repairPrompt(PolicyStage.action, prompt, bad, err);
    expect(text.startsWith(prompt)).toBe(true);
    expect(text).toContain(bad);
    expect(text).toContain('Problem: action 2 has 3 numbers, expected 4 [dx, dy, dz, gripper].');
    expect(text).toContain('a list of [dx, dy, dz, gripper]');
    expect(text).toContain(formatActionChunk([[0.012, -0.003, 0, 1]]).slice(1, -1));
    // The example in the text parses with the same parser.
    expect(parseActionChunk(text.slice(text.lastIndexOf('\n'))).ok).toBe(true);
  });

  it('shows the subtask and motion-plan formats, an empty answer and a long one shortened', () => {
    const s = repairPrompt(PolicyStage.subtasks, subtasksPrompt('put the carrot on the plate'), '', 'no numbered subtask list found');
    expect(s).toContain('(empty)');
    expect(s).toContain('numbered "1.", "2.", ...');
    expect(s).toContain('1. Move to carrot\n2. Grasp carrot');
    const m = repairPrompt(PolicyStage.motionPlan, 'p', 'x'.repeat(5000), 'the motion plan must be a single paragraph, got 3 paragraphs');
    expect(m).toContain('one short paragraph');
    expect(m).toContain(`${'x'.repeat(600)}...`);
    expect(m).not.toContain('x'.repeat(601));
  });
});

describe('decodeWithRepair', () => {
  it('re-prompts with the error until an answer parses, recording every attempt', async () => {
    const answers = ['Move forward.', '[[0.01, 0, 0]]', formatActionChunk(chunk)];
    const prompts: string[] = [];
    const r = await decodeWithRepair({
      stage: PolicyStage.action,
      prompt: 'P',
      maxRepairs: 3,
      ask: (p, i) => {
        prompts.push(p);
        return answers[i] ?? '';
      },
    });
    expect(r.ok && r.value).toEqual(chunk);
    expect(r.attempts.map((a) => a.error === null)).toEqual([false, false, true]);
    expect(prompts[0]).toBe('P');
    expect(prompts[1]).toContain('Problem: no list of actions found');
    expect(prompts[2]).toContain('Problem: action 1 has 3 numbers, expected 4');
  });

  it('gives up after maxRepairs repairs', async () => {
    let calls = 0;
    const r = await decodeWithRepair({
      stage: PolicyStage.subtasks,
      prompt: 'P',
      maxRepairs: 2,
      ask: () => {
        calls++;
        return '1. Grasp carrot';
      },
    });
    expect(calls).toBe(3);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toBe('subtasks answer still malformed after 2 repair(s): the first subtask must start with "Move to", got "Grasp carrot"');
    expect(r.attempts).toHaveLength(3);
  });
});
