/**
 * A coarse terminal rendering of a screenshot: the PNG is decoded by Chromium itself
 * (a blank tab, a canvas), averaged into cells and printed with half-block characters,
 * two pixel rows per text line. Good enough to scan a QR code off an SSH session.
 */
import type { BrowserContext } from 'puppeteer-core';
import { evalIn } from './inpage.ts';

export async function pngToAscii(context: BrowserContext, png: Uint8Array, cols = 64): Promise<string> {
  const page = await context.newPage();
  try {
    return await evalIn(
      page,
      async (b64: string, width: number) => {
        const img = new Image();
        img.src = `data:image/png;base64,${b64}`;
        await img.decode();
        const rows = Math.max(2, Math.round(((img.height / img.width) * width) / 2) * 2);
        const canvas = document.createElement('canvas');
        canvas.width = width;
        canvas.height = rows;
        const g = canvas.getContext('2d');
        if (!g) return '';
        g.imageSmoothingEnabled = true;
        g.drawImage(img, 0, 0, width, rows);
        const data = g.getImageData(0, 0, width, rows).data;
        const dark = (x: number, y: number) => {
          const i = (y * width + x) * 4;
          return 0.299 * (data[i] ?? 255) + 0.587 * (data[i + 1] ?? 255) + 0.114 * (data[i + 2] ?? 255) < 128;
        };
        const lines: string[] = [];
        for (let y = 0; y < rows; y += 2) {
          let line = '';
          for (let x = 0; x < width; x++) {
            const top = dark(x, y);
            const bottom = dark(x, y + 1);
            line += top && bottom ? '█' : top ? '▀' : bottom ? '▄' : ' ';
          }
          lines.push(line.replace(/\s+$/, ''));
        }
        return lines.join('\n');
      },
      Buffer.from(png).toString('base64'),
      cols,
    );
  } finally {
    await page.close().catch(() => undefined);
  }
}
