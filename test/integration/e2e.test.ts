// Browser end to end on the harness's real stack, in Debian's Chromium (playwright-core): upload a
// generated clip through the page, interrupted at ~40% by taking the page offline; watch the state
// reach READY live; play it (currentTime advances); force a rendition switch through hls.js; the
// analytics page then shows the session. Screenshots of each page go to test-artifacts/.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { makeClip, makeEmpty, makeRandomBytes } from '../fixtures/generate.ts';
import { collectPageErrors, ensureWebBuilt, launchChromium, screenshot, stackApiKey } from '../support/browser.ts';
import { stackConfig, until } from '../support/client.ts';

describe('web app in Chromium', () => {
  const env = inject('stackEnv');
  const cfg = stackConfig();
  const apiKey = stackApiKey(env, cfg.dataDir);
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let errors: string[];
  let videoId = '';

  beforeAll(async () => {
    ensureWebBuilt();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    errors = collectPageErrors(page);
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('uploads a clip through the page, survives going offline at ~40%, and shows READY live', async () => {
    // Big enough for a few 16 MiB-chunk-free seconds of upload under throttling.
    const file = makeClip({ durationSec: 8, width: 1280, height: 720, fps: 30, audio: true });
    const size = fs.statSync(file).size;

    await page.goto(`${cfg.apiUrl}/${apiKey ? `#key=${encodeURIComponent(apiKey)}` : ''}`);
    // The key moved from the fragment into localStorage and out of the address bar.
    if (apiKey) {
      expect(await page.evaluate(() => (globalThis as any).localStorage.getItem('vora.apiKey'))).toBe(apiKey);
      expect(page.url()).not.toContain('key=');
    }
    await page.getByRole('link', { name: 'Upload', exact: true }).click();
    await page.getByRole('heading', { name: 'Upload' }).waitFor();
    await screenshot(page, '01-upload-empty');

    // Throttle the upload so that "about 40%" lasts long enough to go offline there (~10 s total).
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: Math.ceil(size / 10) });

    await page.locator('[data-testid=file-input]').setInputFiles(file);
    const item = page.locator('[data-testid=upload-item]').first();
    await until('upload at ~40%', async () => (Number(await item.getAttribute('data-progress')) >= 0.35 ? true : undefined), 60_000).catch(async (err) => {
      await screenshot(page, 'failed-upload');
      throw new Error(`${(err as Error).message}; item: ${await item.innerText().catch(() => '-')}; page errors: ${errors.join(' | ')}`);
    });
    const progressAtDrop = Number(await item.getAttribute('data-progress'));
    expect(progressAtDrop).toBeLessThan(0.8);
    await context.setOffline(true);
    await until('upload waiting for the network', async () => ((await item.getAttribute('data-status')) === 'offline' ? true : undefined), 30_000).catch(async (err) => {
      await screenshot(page, 'failed-offline');
      throw new Error(`${(err as Error).message}; item: ${await item.innerText().catch(() => '-')}; page errors: ${errors.join(' | ')}`);
    });
    await screenshot(page, '02-upload-offline');
    await context.setOffline(false); // also lifts the throttling (Playwright resets the conditions)

    await until('upload finished', async () => {
      const s = await item.getAttribute('data-status');
      if (s === 'error') throw new Error(`upload failed: ${await item.innerText()}`);
      return s === 'done' && (await item.getAttribute('data-video-id')) ? true : undefined;
    }, 60_000);
    // It continued from the server's offset instead of starting over.
    const resumedFrom = Number(await item.getAttribute('data-resumed-from'));
    expect(resumedFrom).toBeGreaterThan(0);
    videoId = (await item.getAttribute('data-video-id'))!;
    expect(videoId).toMatch(/^vid_/);

    // The state changes on the page without a reload (WebSocket, or the REST fallback).
    const seen = new Set<string>();
    await until(
      'video READY on the page',
      async () => {
        const st = (await item.getAttribute('data-video-state')) ?? '';
        if (st) seen.add(st);
        if (st === 'FAILED') throw new Error(`video failed: ${await item.innerText()}`);
        return st === 'READY' ? true : undefined;
      },
      300_000,
    );
    await screenshot(page, '03-upload-ready');
    // The updates came over the gateway's WebSocket (/v1/live), not the polling fallback.
    expect(await page.evaluate(() => (globalThis as any).document.documentElement.dataset.live)).toBe('socket');
    expect(seen.has('READY')).toBe(true);
    expect(errors.filter((e) => !/ERR_INTERNET_DISCONNECTED|Failed to load resource/.test(e))).toEqual([]);
  });

  it('lists the video in the library', async () => {
    expect(videoId).not.toBe('');
    await page.getByRole('link', { name: 'Library' }).click();
    const card = page.locator(`[data-testid=video-card][data-video-id="${videoId}"]`);
    await card.waitFor();
    expect(await card.getAttribute('data-state')).toBe('READY');
    // The poster comes from the playback entry when the worker wrote one; otherwise a placeholder.
    const video = (await (await fetch(`${cfg.apiUrl}/v1/videos/${videoId}`)).json()) as { thumbnailUrl: string | null };
    const poster = video.thumbnailUrl ? await fetch(video.thumbnailUrl) : null;
    if (poster?.ok) {
      await until('thumbnail loaded', async () => (await card.locator('img.thumb').evaluate((img: any) => img.complete && img.naturalWidth > 0)) || undefined, 20_000);
    } else {
      await card.locator('.thumb.placeholder').waitFor();
    }
    await screenshot(page, '04-library');
  });

  it('plays it, switches rendition, and the analytics page shows the session', async () => {
    expect(videoId).not.toBe('');
    // The storyboard is written right after READY; the player reads it when it opens.
    await until('storyboard written', async () => ((await fetch(`${cfg.playbackUrl}/hls/${videoId}/storyboard.vtt`)).ok ? true : undefined), 60_000);
    await page.locator(`[data-testid=video-card][data-video-id="${videoId}"]`).getByRole('link', { name: 'Watch', exact: true }).click();
    await page.locator('[data-testid=player]').waitFor();
    const levels = await until('hls.js levels', async () => {
      const n = await page.evaluate(() => (globalThis as any).__vora?.hls?.levels.length ?? 0);
      return n > 0 ? n : undefined;
    }, 30_000);
    expect(levels).toBeGreaterThanOrEqual(2); // 720p source: 360p + 720p

    await page.evaluate(() => {
      const v = (globalThis as any).__vora!.video;
      v.muted = true;
      return v.play();
    });
    const t0 = await page.evaluate(() => (globalThis as any).__vora!.video.currentTime);
    await until('currentTime advances', async () => {
      const t = await page.evaluate(() => (globalThis as any).__vora!.video.currentTime);
      return t > t0 + 1 ? t : undefined;
    }, 30_000);

    // Force a switch through the quality menu (hls.currentLevel) to a level other than the current.
    const current = await page.evaluate(() => (globalThis as any).__vora!.hls!.currentLevel);
    const target = current === 0 ? 1 : 0;
    await page.locator('[data-testid=quality]').selectOption(String(target));
    await until('rendition switched', async () =>
      page.evaluate((t) => ((globalThis as any).__vora!.hls!.currentLevel === t && (globalThis as any).__vora!.switches.includes(t) ? true : undefined), target),
    30_000);
    const tAfter = await page.evaluate(() => (globalThis as any).__vora!.video.currentTime);
    await until('plays after the switch', async () => ((await page.evaluate(() => (globalThis as any).__vora!.video.currentTime)) > tAfter + 0.5 ? true : undefined), 30_000);
    expect(await page.locator('[data-testid=playing-level]').innerText()).toMatch(/Playing \d+p/);

    // Storyboard previews on the seek strip: hovering shows the sprite tile for that time.
    const strip = page.locator('[data-testid=seek-strip]');
    const box = (await strip.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
    const tile = page.locator('[data-testid=seek-tile]');
    await tile.waitFor({ timeout: 10_000 });
    expect(await tile.getAttribute('style')).toContain('storyboard.jpg');
    await screenshot(page, '05b-player-storyboard');
    await page.mouse.move(0, 0);
    await screenshot(page, '05-player');

    await page.evaluate(() => (globalThis as any).__vora!.video.pause());
    // Leaving the player flushes the queued events (fire-and-forget; sendBeacon on page hide).
    await page.getByRole('link', { name: 'Analytics', exact: true }).click();
    await page.getByRole('heading', { name: /Analytics/ }).waitFor();
    const views = await until(
      'the session in analytics',
      async () => {
        await page.getByRole('button', { name: 'Refresh' }).click();
        const text = await page.locator('[data-testid=views]').innerText({ timeout: 5000 }).catch(() => '0');
        return Number(text) >= 1 ? Number(text) : undefined;
      },
      60_000,
    );
    expect(views).toBeGreaterThanOrEqual(1);
    const temporal = await page.locator('[data-testid=temporal-link]').getAttribute('href');
    expect(temporal).toBe(`${cfg.temporal.uiUrl}/namespaces/default/workflows/video-${videoId}`);
    await page.locator('canvas').first().waitFor();
    await page.waitForTimeout(300);
    await screenshot(page, '06-analytics');
    expect(fs.existsSync(path.join('test-artifacts', '06-analytics.png'))).toBe(true);
  });


  it('pauses, resumes, and after a reload continues the same file from the server offset', async () => {
    const file = makeClip({ durationSec: 6, width: 1280, height: 720, fps: 30, audio: true });
    const size = fs.statSync(file).size;
    await page.goto(`${cfg.apiUrl}/upload`);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: Math.ceil(size / 12) });
    await page.locator('[data-testid=file-input]').setInputFiles(file);
    const item = page.locator('[data-testid=upload-item]').first();
    const progress = async () => Number(await item.getAttribute('data-progress'));
    await until('upload at ~15%', async () => ((await progress()) >= 0.15 ? true : undefined), 60_000);

    await item.getByRole('button', { name: 'Pause' }).click();
    await until('paused', async () => ((await item.getAttribute('data-status')) === 'paused' ? true : undefined), 5000);
    await page.waitForTimeout(200);
    const paused = await progress();
    await page.waitForTimeout(1500);
    expect(await progress()).toBe(paused);
    await item.getByRole('button', { name: 'Resume' }).click();
    await until('upload at ~40%', async () => ((await progress()) >= 0.4 ? true : undefined), 60_000);

    // Reload mid-upload: the page lists the unfinished upload; choosing the same file continues it.
    await page.reload();
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const stored = page.locator('section.stored');
    await stored.waitFor();
    expect(await stored.innerText()).toContain(path.basename(file));
    await screenshot(page, '07-upload-unfinished');
    await page.locator('[data-testid=file-input]').setInputFiles(file);
    const again = page.locator('[data-testid=upload-item]').first();
    await until('resumed upload finished', async () => {
      const st = await again.getAttribute('data-status');
      if (st === 'error') throw new Error(`upload failed: ${await again.innerText()}`);
      return st === 'done' ? true : undefined;
    }, 60_000);
    expect(Number(await again.getAttribute('data-resumed-from'))).toBeGreaterThan(0);
    expect(await again.getAttribute('data-video-id')).toMatch(/^vid_/);
    // Done uploads leave the "unfinished" list.
    await until('unfinished list empty', async () => ((await page.locator('section.stored').count()) === 0 ? true : undefined), 10_000);
  });

  it('explains rejected files and failed videos, and deletes a video', async () => {
    await page.goto(`${cfg.apiUrl}/upload`);
    await page.locator('[data-testid=file-input]').setInputFiles([makeEmpty(), makeRandomBytes(200 * 1024)]);
    const empty = page.locator('[data-testid=upload-item]', { hasText: 'empty.mp4' });
    const noise = page.locator('[data-testid=upload-item]', { hasText: 'random-' });
    await until('empty file rejected', async () => ((await empty.getAttribute('data-status')) === 'error' ? true : undefined), 30_000);
    expect(await empty.innerText()).toContain('The file is empty.');
    await until('noise FAILED', async () => ((await noise.getAttribute('data-video-state')) === 'FAILED' ? true : undefined), 120_000);
    const failedId = (await noise.getAttribute('data-video-id'))!;
    expect(await noise.innerText()).toMatch(/[A-Z_]{4,}: /);
    await screenshot(page, '08-upload-rejected');

    // The library says why it failed, and deletes it.
    await page.getByRole('link', { name: 'Library' }).click();
    const card = page.locator(`[data-testid=video-card][data-video-id="${failedId}"]`);
    await card.waitFor();
    expect(await card.locator('[data-testid=failure]').innerText()).toMatch(/[A-Z_]{4,}: ./);
    // File names come from each video's upload; let them arrive before the screenshot.
    await until('file names shown', async () => ((await page.locator('.vname code').count()) === 0 ? true : undefined), 10_000).catch(() => {});
    await screenshot(page, '09-library-failed');
    page.once('dialog', (d) => void d.accept());
    await card.getByRole('button', { name: 'Delete' }).click();
    await card.waitFor({ state: 'detached' });
    expect((await fetch(`${cfg.apiUrl}/v1/videos/${failedId}`)).status).toBe(404);
  });


  it('serves deep links and keeps the API paths, and says when the API key is missing or wrong', async () => {
    // Deep links load the SPA (player/analytics chunks load lazily); API paths stay JSON.
    expect(videoId).not.toBe('');
    await page.goto(`${cfg.apiUrl}/videos/${videoId}/analytics`);
    await page.getByRole('heading', { name: /Analytics/ }).waitFor();
    const notFound = await fetch(`${cfg.apiUrl}/v1/no-such-thing`);
    expect(notFound.status).toBe(404);
    expect(((await notFound.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    expect((await fetch(`${cfg.apiUrl}/healthz`)).status).toBe(200);
    const config = (await (await fetch(`${cfg.apiUrl}/v1/config`)).json()) as Record<string, string>;
    expect(config).toEqual({ playbackUrl: cfg.playbackUrl, gatewayWsUrl: cfg.gatewayUrl.replace(/^http/, 'ws'), temporalUiUrl: cfg.temporal.uiUrl });

    if (!apiKey) return; // a stack without API keys has nothing to refuse
    const fresh = await browser.newContext();
    try {
      const p = await fresh.newPage();
      await p.goto(`${cfg.apiUrl}/upload`);
      await p.getByText('No API key is stored in this browser').waitFor();
      const clip = makeClip({ durationSec: 1 });
      await p.locator('[data-testid=file-input]').setInputFiles(clip);
      const item = p.locator('[data-testid=upload-item]').first();
      await until('refused without a key', async () => ((await item.getAttribute('data-status')) === 'error' ? true : undefined), 30_000);
      expect(await item.innerText()).toContain('An API key is needed');
      await screenshot(p, '10-upload-no-key');

      // A fragment change on the open page stores the (wrong) key too.
      await p.goto(`${cfg.apiUrl}/upload#key=not-a-valid-key`);
      await until('key stored', async () => ((await p.evaluate(() => (globalThis as any).localStorage.getItem('vora.apiKey'))) === 'not-a-valid-key' ? true : undefined), 5000);
      await p.locator('[data-testid=file-input]').setInputFiles(clip);
      await until('second item', async () => ((await p.locator('[data-testid=upload-item]').count()) === 2 ? true : undefined), 5000);
      const again = p.locator('[data-testid=upload-item]').first();
      await until('refused with a wrong key', async () => ((await again.getAttribute('data-status')) === 'error' ? true : undefined), 30_000);
      expect(await again.innerText()).toContain('The API key was rejected');
    } finally {
      await fresh.close();
    }
  });
});
