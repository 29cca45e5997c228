/** The filter bar: campaign, platform, regions, conversation kind, time range; values live in the URL. */
import { api } from './api.ts';
import { h } from './dom.ts';
import { type Route, update } from './state.ts';

interface Choices {
  campaign: string[];
  platform: string[];
  sender_region: string[];
  recipient_region: string[];
}

let choices: Promise<Choices> | null = null;

async function loadChoices(): Promise<Choices> {
  const axis = async (a: string) =>
    (await api.aggregation(new URLSearchParams({ group_by: a }))).rows
      .map((r) => r.keys[0])
      .filter((k): k is string => typeof k === 'string');
  const [campaign, platform, sender_region, recipient_region] = await Promise.all(
    ['campaign', 'platform', 'sender_region', 'recipient_region'].map(axis),
  );
  return {
    campaign: campaign ?? [],
    platform: platform ?? [],
    sender_region: sender_region ?? [],
    recipient_region: recipient_region ?? [],
  };
}

function select(name: string, label: string, values: string[], current: string | null): HTMLLabelElement {
  const el = h(
    'select',
    { name, onchange: (ev: Event) => update({ [name]: (ev.target as HTMLSelectElement).value }) },
    h('option', { value: '' }, 'any'),
    values.map((v) => h('option', { value: v, selected: v === current }, v)),
  );
  return h('label', {}, `${label} `, el);
}

export async function renderFilters(form: HTMLFormElement, route: Route): Promise<void> {
  choices ??= loadChoices();
  const c = await choices;
  const p = route.params;
  const date = (name: string, label: string) =>
    h(
      'label',
      {},
      `${label} `,
      h('input', {
        type: 'datetime-local',
        name,
        value: p.get(name)?.slice(0, 16) ?? '',
        onchange: (ev: Event) => {
          const v = (ev.target as HTMLInputElement).value;
          update({ [name]: v ? new Date(`${v}Z`).toISOString() : null });
        },
      }),
    );
  const chip = termChip(p.get('terms'));
  form.replaceChildren(
    select('campaign', 'Campaign', c.campaign, p.get('campaign')),
    select('platform', 'Platform', c.platform, p.get('platform')),
    select('sender_region', 'Sender region', c.sender_region, p.get('sender_region')),
    select('recipient_region', 'Recipient region', c.recipient_region, p.get('recipient_region')),
    select('conversation_kind', 'Conversation', ['direct', 'group'], p.get('conversation_kind')),
    date('from', 'From (UTC)'),
    date('to', 'To (UTC)'),
    ...(chip ? [chip] : []),
  );
}

/** The term set every view is narrowed to (chosen on the Terms view), shown as text. */
function termChip(key: string | null): HTMLElement | null {
  if (!key) return null;
  let label = key;
  try {
    label = (JSON.parse(key) as string[]).join(' + ');
  } catch {
    // not a terms key: shown as it is
  }
  return h(
    'span',
    { class: 'stat chip', 'data-filter': 'terms' },
    'Term set: ',
    h('q', {}, label),
    ' ',
    h(
      'button',
      { type: 'button', 'aria-label': 'Clear term set', onclick: () => update({ terms: null }) },
      '✕',
    ),
  );
}
