/**
 * Why a relayed connection ended, as the disconnect line's `closed-by=`
 * names it: the side that closed its output first, or why it was cut. The
 * one TypeScript list, used by both relays (lib/relay/event-loop.ts,
 * lib/relay/thread.ts) and the addon's types (lib/native/addon.ts). The
 * relay thread's C enum (lib/native/relay_thread.c, `enum reason` and
 * `reason_names`) repeats it in this order.
 */
export const CLOSE_REASONS = ['client', 'server', 'timeout', 'client-error', 'server-error', 'shutdown'] as const

export type CloseReason = (typeof CLOSE_REASONS)[number]
