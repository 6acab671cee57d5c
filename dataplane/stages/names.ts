// The stages' names, in pipeline order, and the aliases `vsw capture --stage` accepts. Kept
// apart from order.ts so the CLI can check a stage name without loading the stages.

export const STAGE_NAMES = ['parse', 'ingress', 'learn', 'gateway', 'forward'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

/** Where a capture at "before/after NAT or VLAN" happens: after these stages. */
export const STAGE_ALIASES: Readonly<Record<string, StageName>> = {
  'pre-vlan': 'parse',     // as received (the tag, if any, still in the frame)
  'post-vlan': 'ingress',  // the tag removed, the network chosen
  'pre-nat': 'learn',      // before the router
  'post-nat': 'gateway',   // after the router: translated, routed, or answered
};

/** Index of a stage by name or alias; -1 when there is no such stage. */
export function stageIndex(name: string): number {
  return (STAGE_NAMES as readonly string[]).indexOf(STAGE_ALIASES[name] ?? name);
}

/** Every name stageIndex accepts, for messages. */
export const STAGE_CHOICES: readonly string[] = [...STAGE_NAMES, ...Object.keys(STAGE_ALIASES)];
