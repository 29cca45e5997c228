/**
 * Human-like pacing: a random pause before each UI action and a jittered delay
 * between keystrokes, plus a floor on the time between two sends of one account.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'puppeteer-core';
import type { DelayRange, Pacing } from './settings.ts';

export function draw([min, max]: DelayRange, random: () => number = Math.random): number {
  return Math.round(min + (max - min) * random());
}

export class Pacer {
  private lastSendAt = 0;

  constructor(
    readonly pacing: Pacing,
    private readonly random: () => number = Math.random,
  ) {}

  /** Pause as a person would before clicking or switching. */
  async beforeAction(): Promise<void> {
    const ms = draw(this.pacing.actionDelayMs, this.random);
    if (ms > 0) await sleep(ms);
  }

  /** Wait until the account may send again, then claim the slot. */
  async beforeSend(now: () => number = Date.now): Promise<void> {
    const wait = this.lastSendAt + this.pacing.minSendIntervalMs - now();
    if (wait > 0) await sleep(wait);
    this.lastSendAt = now();
  }

  /**
   * Type into the focused element one character (code point) at a time. A newline is
   * inserted as text, not pressed as Enter, so it never submits a form early.
   */
  async type(page: Page, text: string): Promise<void> {
    for (const ch of text) {
      if (ch === '\n' || ch === '\r') await page.keyboard.sendCharacter(ch);
      else await page.keyboard.type(ch);
      const ms = draw(this.pacing.keyDelayMs, this.random);
      if (ms > 0) await sleep(ms);
    }
  }
}
