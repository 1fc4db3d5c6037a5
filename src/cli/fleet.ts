import { Flags } from '@oclif/core';
import type { HostOutcome } from '../core/fleet.js';

/** The commands that read several hosts at once: `--host a,b,…` (the global flag) or this. */
export const fleetFlags = {
  'all-hosts': Flags.boolean({
    description: 'Every host of the configuration, read in parallel (fleet.parallel at a time); see also --host a,b,…',
    default: false,
  }),
};

/** A fan-out for people: one section per host, in the order asked, a failed host with its error and hint. */
export function renderByHost<R>(outcomes: ReadonlyArray<HostOutcome<R>>, render: (value: R) => { heading: string; body: string }): string {
  return outcomes
    .map((outcome) => {
      if (!outcome.ok) {
        const { error } = outcome;
        return [`== ${outcome.host}: failed (${error.code}, exit ${error.exitCode})`, `Error: ${error.message}`, ...(error.hint === undefined ? [] : [`Hint: ${error.hint}`])].join('\n');
      }
      const { heading, body } = render(outcome.value);
      return `== ${outcome.host}: ${heading}\n${body}`;
    })
    .join('\n\n');
}
