/**
 * Where probes' views of one conversation disagree (decision 012): on the kind, or on which
 * accounts are members. Each probe speaks for its own accounts, so a view that lists another
 * probe's account its owner does not report (`lists`), or leaves out one its owner reports
 * (`omits`), changes nothing the collector uses; admins see it here.
 */
import type { ConversationDisagreement } from '../protocol/index.ts';
import type { ConversationViewRow } from './db/accounts.ts';

const iso = (d: Date | string) => (d instanceof Date ? d : new Date(d)).toISOString();

/** Pure: the disagreements among the views (rows of `sharedConversationViews`), by conversation. */
export function conversationDisagreements(views: readonly ConversationViewRow[]): ConversationDisagreement[] {
  const byConversation = new Map<string, ConversationViewRow[]>();
  for (const v of views) {
    const list = byConversation.get(v.conversationId) ?? [];
    list.push(v);
    byConversation.set(v.conversationId, list);
  }
  const out: ConversationDisagreement[] = [];
  for (const list of byConversation.values()) {
    const first = list[0];
    if (!first) continue;
    const kindsDiffer = new Set(list.map((v) => v.viewKind)).size > 1;
    const viewOf = new Map(list.map((v) => [v.probeId, v]));
    // Each account's owner, where the owner has a view of this conversation: does it list it?
    const ownerListed = new Map<string, { owner: string; listed: boolean }>();
    for (const v of list) {
      for (const o of v.owners) {
        const ownerView = viewOf.get(o.probeId);
        if (ownerView)
          ownerListed.set(o.handle, { owner: o.probeId, listed: ownerView.members.includes(o.handle) });
      }
    }
    const membersDiffer: ConversationDisagreement['members_differ'] = [];
    for (const v of list) {
      for (const [handle, { owner, listed }] of ownerListed) {
        if (owner === v.probeId) continue;
        const here = v.members.includes(handle);
        if (here && !listed)
          membersDiffer.push({ probe_id: v.probeId, handle, owner_probe_id: owner, issue: 'lists' });
        if (!here && listed)
          membersDiffer.push({ probe_id: v.probeId, handle, owner_probe_id: owner, issue: 'omits' });
      }
    }
    if (!kindsDiffer && membersDiffer.length === 0) continue;
    out.push({
      conversation_id: first.conversationId,
      platform: first.platform,
      ref: first.ref,
      kind: first.kind,
      kinds_differ: kindsDiffer,
      members_differ: membersDiffer,
      views: list.map((v) => ({
        probe_id: v.probeId,
        kind: v.viewKind,
        title: v.title,
        members: v.members,
        updated_at: iso(v.updatedAt),
      })),
    });
  }
  return out;
}
