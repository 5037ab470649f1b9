// Live status over the gateway's WebSocket (ws://{gateway}/v1/live) on the shared stack: rows
// changed in PostgreSQL reach subscribers through NOTIFY vora_video -> gateway -> uWS topic.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newUploadId, newVideoId } from '../../src/common/ids.ts';
import { stackConfig } from '../support/client.ts';
import { connectLive, type LiveClient } from './live-client.ts';

const cfg = stackConfig();
const wsUrl = `${cfg.gatewayUrl.replace(/^http/, 'ws')}/v1/live`;
let db: pg.Client;
const clients: LiveClient[] = [];

async function makeVideo(state = 'CREATED', priv = false): Promise<string> {
  const videoId = newVideoId();
  const uploadId = newUploadId();
  await db.query(`INSERT INTO uploads (upload_id, status) VALUES ($1, 'UPLOADED')`, [uploadId]);
  await db.query(
    `INSERT INTO videos (video_id, upload_id, state, source_key, workflow_id, private) VALUES ($1, $2, $3, 'sources/x/source', $4, $5)`,
    [videoId, uploadId, state, `live-test-${videoId}`, priv],
  );
  return videoId;
}

async function live(): Promise<LiveClient> {
  const c = await connectLive(wsUrl);
  clients.push(c);
  return c;
}

const videoMsg = (id: string, pred: (v: any) => boolean = () => true) => (m: any) => m.type === 'video' && m.video.videoId === id && pred(m.video);

beforeAll(async () => {
  db = new pg.Client({ connectionString: cfg.postgres.url });
  await db.connect();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await db?.end();
});

describe('live video status (WebSocket /v1/live)', () => {
  it('pushes the video on subscribe, then every change in order', async () => {
    const id = await makeVideo('CREATED');
    const c = await live();
    c.send({ type: 'subscribe', videoId: id });
    const first = await c.next(videoMsg(id));
    expect(first.video).toMatchObject({ videoId: id, state: 'CREATED', renditions: [], playbackUrl: null, failure: null });
    // Exactly the REST shape (the API answers the same builder's output).
    const rest = await fetch(`${cfg.apiUrl}/v1/videos/${id}`);
    if (rest.status === 200) {
      const body = await rest.json();
      expect(Object.keys(first.video).sort()).toEqual(Object.keys(body as object).sort());
    }

    await db.query(`UPDATE videos SET state = 'PROCESSING', updated_at = now() WHERE video_id = $1`, [id]);
    expect((await c.next(videoMsg(id))).video.state).toBe('PROCESSING');

    await db.query(`INSERT INTO renditions (video_id, name, state, width, height, bandwidth) VALUES ($1, '360p', 'PROCESSING', 640, 360, 800000)`, [id]);
    const r1 = await c.next(videoMsg(id));
    expect(r1.video.renditions).toEqual([expect.objectContaining({ name: '360p', state: 'PROCESSING', width: 640, height: 360, bandwidth: 800000 })]);

    await db.query(`UPDATE renditions SET state = 'DONE' WHERE video_id = $1 AND name = '360p'`, [id]);
    expect((await c.next(videoMsg(id))).video.renditions[0].state).toBe('DONE');

    await db.query(`UPDATE videos SET state = 'READY', duration_sec = 12.5, updated_at = now() WHERE video_id = $1`, [id]);
    const ready = await c.next(videoMsg(id));
    expect(ready.video).toMatchObject({ state: 'READY', durationSec: 12.5 });
    expect(ready.video.playbackUrl).toBe(`${cfg.playbackUrl}/hls/${id}/master.m3u8`);

    // Everything this socket received for the video, in order: no state went backwards.
    const states = c.messages.filter(videoMsg(id)).map((m) => `${m.video.state}/${m.video.renditions.map((r: any) => r.state).join(',')}`);
    expect(states).toEqual(['CREATED/', 'PROCESSING/', 'PROCESSING/PROCESSING', 'PROCESSING/DONE', 'READY/DONE']);
  });

  it('coalesces a burst of changes into few pushes that end at the final state', async () => {
    const id = await makeVideo('PROCESSING');
    const c = await live();
    c.send({ type: 'subscribe', videoId: id });
    await c.next(videoMsg(id));
    for (let i = 1; i <= 20; i++) await db.query(`UPDATE videos SET duration_sec = $2 WHERE video_id = $1`, [id, i]);
    await c.next(videoMsg(id, (v) => v.durationSec === 20));
    await new Promise((r) => setTimeout(r, 400));
    const pushes = c.messages.filter(videoMsg(id)).length - 1;
    expect(pushes).toBeGreaterThanOrEqual(1);
    expect(pushes).toBeLessThan(10);
    const durations = c.messages.filter(videoMsg(id)).slice(1).map((m) => m.video.durationSec);
    expect([...durations].sort((a, b) => a - b)).toEqual(durations); // in order
  });

  it('serves several subscriptions per socket and several sockets per video; unsubscribe stops pushes', async () => {
    const a = await makeVideo('PROCESSING');
    const b = await makeVideo('PROCESSING');
    const c1 = await live();
    const c2 = await live();
    c1.send({ type: 'subscribe', videoId: a });
    c1.send({ type: 'subscribe', videoId: b });
    c2.send({ type: 'subscribe', videoId: a });
    await c1.next(videoMsg(a));
    await c1.next(videoMsg(b));
    await c2.next(videoMsg(a));
    await db.query(`UPDATE videos SET state = 'FAILED', failure_code = 'NOT_MEDIA', failure_message = 'x' WHERE video_id = $1`, [a]);
    expect((await c1.next(videoMsg(a))).video.failure).toEqual({ code: 'NOT_MEDIA', message: 'x' });
    expect((await c2.next(videoMsg(a))).video.state).toBe('FAILED');

    c1.send({ type: 'unsubscribe', videoId: b });
    await new Promise((r) => setTimeout(r, 100));
    await db.query(`UPDATE videos SET state = 'READY' WHERE video_id = $1`, [b]);
    // a still flows (a FAILED video stays FAILED: its message changes instead)
    await db.query(`UPDATE videos SET failure_message = 'y' WHERE video_id = $1`, [a]);
    await c1.next(videoMsg(a, (v) => v.failure?.message === 'y'));
    await new Promise((r) => setTimeout(r, 300));
    expect(c1.messages.filter(videoMsg(b, (v) => v.state === 'READY'))).toEqual([]);
  });

  it('answers bad messages with typed errors and keeps the socket', async () => {
    const c = await live();
    c.sendRaw('not json');
    expect(await c.next((m) => m.type === 'error')).toMatchObject({ code: 'BAD_MESSAGE' });
    c.send({ type: 'watch', videoId: 'vid_aaaaaaaaaaaaaaaaaaaa' });
    expect(await c.next((m) => m.type === 'error')).toMatchObject({ code: 'UNKNOWN_TYPE' });
    c.send({ type: 'subscribe', videoId: '../etc' });
    expect(await c.next((m) => m.type === 'error')).toMatchObject({ code: 'BAD_VIDEO_ID' });
    // Unknown video: an error now, the video once it exists.
    const later = newVideoId();
    c.send({ type: 'subscribe', videoId: later });
    expect(await c.next((m) => m.type === 'error')).toMatchObject({ code: 'VIDEO_NOT_FOUND', videoId: later });
    const uploadId = newUploadId();
    await db.query(`INSERT INTO uploads (upload_id, status) VALUES ($1, 'UPLOADED')`, [uploadId]);
    await db.query(`INSERT INTO videos (video_id, upload_id, state, source_key, workflow_id) VALUES ($1, $2, 'CREATED', 's', $3)`, [later, uploadId, `live-${later}`]);
    expect((await c.next(videoMsg(later))).video.state).toBe('CREATED');
  });

  it('never pushes a private video\'s playback token', async () => {
    const id = await makeVideo('READY', true);
    const c = await live();
    c.send({ type: 'subscribe', videoId: id });
    const m = await c.next(videoMsg(id));
    expect(m.video.private).toBe(true);
    expect(m.video.playbackUrl).toBe(`${cfg.playbackUrl}/hls/${id}/master.m3u8`);
    expect(JSON.stringify(m)).not.toMatch(/token=/);
  });
});
