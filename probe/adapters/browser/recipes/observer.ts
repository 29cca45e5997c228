/**
 * The generic in-page observer: a MutationObserver on the document that reports each
 * message item (an element matching `item` with a `data-message-id`) once, through a
 * function the engine exposed with `page.exposeFunction`. Recipes whose clients mark
 * messages differently write their own; most only pass selectors.
 */
import type { Page } from 'puppeteer-core';
import { evalIn } from '../inpage.ts';
import type { SeenItem } from './types.ts';

export interface ObserverSelectors {
  /** A message item; its `data-message-id` is the id, `data-from` the sender. */
  item: string;
  /** The text inside an item. */
  text: string;
}

export async function installObserver(page: Page, binding: string, sel: ObserverSelectors): Promise<void> {
  await evalIn(
    page,
    (b: string, s: ObserverSelectors) => {
      const w = window as unknown as Record<string, unknown>;
      const key = `${b}_observer`;
      (w[key] as MutationObserver | undefined)?.disconnect();
      const reported = new WeakMap<Element, string>();
      const report = () => {
        const items: SeenItem[] = [];
        for (const el of document.querySelectorAll(s.item)) {
          const id = el.getAttribute('data-message-id');
          const textEl = el.querySelector(s.text);
          if (!id || !textEl || reported.get(el) === id) continue;
          reported.set(el, id);
          const from = el.getAttribute('data-from');
          items.push({ id, text: textEl.textContent ?? '', ...(from ? { from } : {}) });
        }
        if (items.length) void (w[b] as (i: SeenItem[]) => Promise<void>)(items);
      };
      const mo = new MutationObserver(report);
      mo.observe(document.body, {
        childList: true,
        subtree: true,
        characterData: true,
        attributes: true,
        attributeFilter: ['data-message-id'],
      });
      w[key] = mo;
      report();
    },
    binding,
    sel,
  );
}
