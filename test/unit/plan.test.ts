import { describe, expect, it } from 'vitest';
import { CesoError } from '../../src/core/errors.js';
import { executePlan, renderPlan, type Plan, type PlanStep } from '../../src/core/plan.js';

function step(id: string, log: string[], options: { fail?: boolean; undoFails?: boolean; undo?: boolean } = {}): PlanStep<{ made: string[] }> {
  return {
    id,
    description: `step ${id}`,
    action: { kind: 'ssh', command: `echo ${id}` },
    run: async (state) => {
      if (options.fail) throw new CesoError('TASK_FAILED', `${id} failed`, { hint: 'look at the host' });
      log.push(`run ${id}`);
      state.made.push(id);
    },
    ...(options.undo === false
      ? {}
      : {
          undo: {
            description: `undo ${id}`,
            run: async () => {
              if (options.undoFails) throw new Error(`cannot undo ${id}`);
              log.push(`undo ${id}`);
            },
          },
        }),
  };
}

function plan(steps: Array<PlanStep<{ made: string[] }>>): Plan<{ made: string[] }> {
  return { operation: 'create', target: 'web1', via: 'api', steps, warnings: [], state: { made: [] } };
}

describe('executePlan', () => {
  it('runs steps in order and returns the state', async () => {
    const log: string[] = [];
    const state = await executePlan(plan([step('a', log), step('b', log)]));
    expect(log).toEqual(['run a', 'run b']);
    expect(state.made).toEqual(['a', 'b']);
  });

  it('undoes completed steps in reverse and keeps the original error', async () => {
    const log: string[] = [];
    const error = await executePlan(plan([step('a', log), step('b', log), step('c', log, { fail: true }), step('d', log)])).catch((e: unknown) => e);
    expect(log).toEqual(['run a', 'run b', 'undo b', 'undo a']);
    expect(error).toBeInstanceOf(CesoError);
    expect(error).toMatchObject({ code: 'TASK_FAILED', message: 'c failed', details: { cleanedUp: true, leftovers: [] } });
    expect((error as CesoError).hint).toContain('removed again');
  });

  it('lists what it could not remove', async () => {
    const log: string[] = [];
    const error = (await executePlan(plan([step('a', log, { undoFails: true }), step('b', log), step('c', log, { fail: true })])).catch((e: unknown) => e)) as CesoError;
    expect(log).toEqual(['run a', 'run b', 'undo b']);
    expect(error.details).toMatchObject({ cleanedUp: false, leftovers: ['undo a: cannot undo a'] });
    expect(error.hint).toContain('remove by hand: undo a');
  });

  it('stops before the next step when interrupted and undoes what was made', async () => {
    const log: string[] = [];
    const controller = new AbortController();
    const interrupting: PlanStep<{ made: string[] }> = { ...step('b', log), run: async () => { log.push('run b'); controller.abort(); } };
    const error = (await executePlan(plan([step('a', log), interrupting, step('c', log)]), { signal: controller.signal }).catch((e: unknown) => e)) as CesoError;
    expect(error.code).toBe('INTERRUPTED');
    expect(log).toEqual(['run a', 'run b', 'undo b', 'undo a']);
  });

  it('renders numbered steps with their actions', () => {
    const rendered = renderPlan(plan([step('a', []), step('b', [])]));
    expect(rendered.steps).toEqual([
      { step: 1, id: 'a', description: 'step a', kind: 'ssh', command: 'echo a' },
      { step: 2, id: 'b', description: 'step b', kind: 'ssh', command: 'echo b' },
    ]);
  });
});
