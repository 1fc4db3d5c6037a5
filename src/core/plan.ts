import { CesoError, isCesoError } from './errors.js';
import type { Via } from './vm.js';

/** What a step would do, as shown in a --dry-run plan: an API call or an exact shell command. */
export type StepAction =
  | { kind: 'api'; method: string; object: string; arguments: Record<string, unknown> }
  | { kind: 'ssh'; command: string };

export interface PlanStep<S> {
  /** Stable identifier, e.g. "copy-disk-0". */
  id: string;
  description: string;
  action: StepAction;
  /** `signal` aborts a long step (an upload) on Ctrl-C; `detail` is a progress line (bytes, rate, ETA). */
  run: (state: S, progress: (percent: number, detail?: string) => void, signal?: AbortSignal) => Promise<void>;
  /** Registered once the step has run: how to take back what it made. */
  undo?: { description: string; run: (state: S) => Promise<void> };
}

export interface Plan<S> {
  operation: string;
  target: string;
  via: Via;
  steps: Array<PlanStep<S>>;
  /** Documents for review (cloud-init decoded, secrets masked). */
  review?: Record<string, unknown>;
  warnings: string[];
  /** The state the steps fill in as they run (ids of what they made). */
  state: S;
}

export interface RenderedPlan {
  operation: string;
  target: string;
  via: Via;
  steps: Array<{ step: number; id: string; description: string } & StepAction>;
  review?: Record<string, unknown>;
  warnings: string[];
}

export function renderPlan<S>(plan: Plan<S>): RenderedPlan {
  return {
    operation: plan.operation,
    target: plan.target,
    via: plan.via,
    steps: plan.steps.map((step, index) => ({ step: index + 1, id: step.id, description: step.description, ...step.action })),
    ...(plan.review === undefined ? {} : { review: plan.review }),
    warnings: plan.warnings,
  };
}

export interface ExecuteOptions {
  signal?: AbortSignal;
  onStep?: (index: number, total: number, description: string) => void;
  onProgress?: (stepId: string, percent: number, detail?: string) => void;
}

/**
 * Runs a plan's steps in order. When a step fails or the run is interrupted, the undo actions of
 * the steps that completed run in reverse; the original error is reported, with whatever could
 * not be removed listed under `details.leftovers`.
 */
export async function executePlan<S>(plan: Plan<S>, options: ExecuteOptions = {}): Promise<S> {
  const undoStack: Array<NonNullable<PlanStep<S>['undo']>> = [];
  try {
    for (const [index, step] of plan.steps.entries()) {
      throwIfAborted(options.signal, step.description);
      options.onStep?.(index + 1, plan.steps.length, step.description);
      await step.run(plan.state, (percent, detail) => options.onProgress?.(step.id, percent, detail), options.signal);
      if (step.undo !== undefined) undoStack.push(step.undo);
    }
    return plan.state;
  } catch (error) {
    const leftovers: string[] = [];
    for (const undo of undoStack.reverse()) {
      try {
        await undo.run(plan.state);
      } catch (undoError) {
        leftovers.push(`${undo.description}: ${undoError instanceof Error ? undoError.message : String(undoError)}`);
      }
    }
    const failure = isCesoError(error)
      ? error
      : new CesoError('INTERNAL', error instanceof Error ? error.message : String(error), { cause: error });
    const cleaned = undoStack.length > 0 && leftovers.length === 0;
    throw new CesoError(failure.code, failure.message, {
      hint:
        leftovers.length > 0
          ? `Cleanup was incomplete; remove by hand: ${leftovers.join('; ')}`
          : cleaned
            ? `${failure.hint === undefined ? '' : `${failure.hint}. `}Everything this run made was removed again`
            : (failure.hint ?? 'Nothing was changed'),
      details: { ...failure.details, cleanedUp: leftovers.length === 0, leftovers },
      cause: failure,
    });
  }
}

function throwIfAborted(signal: AbortSignal | undefined, next: string): void {
  if (signal?.aborted) throw new CesoError('INTERRUPTED', `interrupted before: ${next}`);
}
