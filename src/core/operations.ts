import type { Mutation } from './backend.js';
import { executePlan, renderPlan, type ExecuteOptions, type RenderedPlan } from './plan.js';

export interface DryRunResult {
  dryRun: true;
  plan: RenderedPlan;
}

export interface PerformOptions extends ExecuteOptions {
  dryRun: boolean;
  /** Asked after validation, before the first change (delete's confirmation). */
  confirm?: (plan: RenderedPlan) => Promise<void>;
}

/** Plan, then act: a dry run renders the plan; otherwise the plan runs (undoing itself on failure). */
export async function perform<R>(mutation: Mutation<R>, options: PerformOptions): Promise<DryRunResult | (R & { durationMs: number })> {
  const started = performance.now();
  try {
    const rendered = renderPlan(mutation.plan);
    if (options.dryRun) return { dryRun: true, plan: rendered };
    await options.confirm?.(rendered);
    await executePlan(mutation.plan, options);
    const result = await mutation.finish();
    return { ...result, durationMs: Math.round(performance.now() - started) };
  } finally {
    await mutation.close?.();
  }
}
