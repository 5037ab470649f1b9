// The walking skeleton end to end, on real services: TUS upload into MinIO -> UPLOADED + video
// CREATED -> Temporal workflow -> native transcode to HLS in MinIO -> READY -> played through
// Varnish and the uWebSockets.js gateway -> a playback event lands in ClickHouse.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { createClickhouse, quoteString } from '../../src/analytics/clickhouse.ts';
import { makeClip } from '../fixtures/generate.ts';
import { authHeaders, getJson, sha256File, stackConfig, tusUpload, until } from '../support/client.ts';

const run = promisify(execFile);

describe('one video from upload to playback', () => {
  const cfg = stackConfig();

  it('uploads, processes, plays through Varnish, and records an event', async () => {
    const durationSec = 12;
    const file = await makeClip({ durationSec, width: 1280, height: 720, fps: 30, audio: true });
    const uploadId = await tusUpload(cfg.apiUrl, file, { metadata: { sha256: sha256File(file) }, headers: authHeaders() });

    const upload = await until('upload UPLOADED with a video', async () => {
      const { body } = await getJson(`${cfg.apiUrl}/v1/uploads/${uploadId}`);
      return body.status === 'UPLOADED' && body.videoId ? body : undefined;
    });
    const videoId: string = upload.videoId;

    const video = await until(
      'video READY',
      async () => {
        const { body } = await getJson(`${cfg.apiUrl}/v1/videos/${videoId}`);
        if (body.state === 'FAILED') throw new Error(`video failed: ${JSON.stringify(body.failure)}`);
        return body.state === 'READY' ? body : undefined;
      },
      240_000,
    );
    expect(video.uploadId).toBe(uploadId);
    expect(video.renditions.length).toBeGreaterThanOrEqual(1);
    expect(video.renditions.every((r: { state: string }) => r.state === 'DONE')).toBe(true);
    expect(video.playbackUrl).toBe(`${cfg.playbackUrl}/hls/${videoId}/master.m3u8`);

    // The first fetch of a segment is a miss, the second a cache hit. The last segment: READY
    // pre-warms the playlists and the first segments of each rendition into Varnish.
    const master = video.playbackUrl as string;
    const mediaPlaylist = await (await fetch(master)).text();
    const firstVariant = mediaPlaylist.split('\n').find((l) => l && !l.startsWith('#'))!;
    const variantUrl = new URL(firstVariant, master).toString();
    const variant = await (await fetch(variantUrl)).text();
    const lastSegment = variant.split('\n').filter((l) => l && !l.startsWith('#')).pop()!;
    const segmentUrl = new URL(lastSegment, variantUrl).toString();
    const first = await fetch(segmentUrl);
    await first.arrayBuffer();
    const second = await fetch(segmentUrl);
    const bytes = Buffer.from(await second.arrayBuffer());
    expect(first.status).toBe(200);
    expect(first.headers.get('x-cache')).toBe('MISS');
    expect(second.headers.get('x-cache')).toBe('HIT');
    expect(bytes.length).toBeGreaterThan(0);

    // ffprobe reads the master through Varnish and every segment decodes without error.
    const decode = await run('ffmpeg', ['-v', 'error', '-i', master, '-map', '0', '-f', 'null', '-'], { maxBuffer: 1 << 20 });
    expect(decode.stderr.trim()).toBe('');
    const probe = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'json', master]);
    const played = Number(JSON.parse(probe.stdout).format.duration);
    expect(Math.abs(played - durationSec)).toBeLessThanOrEqual(0.1);

    // A playback event posted to the playback entry lands in ClickHouse.
    const sessionId = `s-${Date.now()}`;
    const posted = await fetch(`${cfg.playbackUrl}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ videoId, sessionId, type: 'play', ts: Date.now(), positionSec: 0 }]),
    });
    expect(posted.status).toBe(202);
    const ch = createClickhouse(cfg);
    try {
      const rows = await until('event row in ClickHouse', async () => {
        const rs = await ch.query({
          // ClickHouse 18.16 has no query parameters: the value is quoted instead.
          query: `SELECT video_id, session_id, type FROM vora.playback_events WHERE session_id = ${quoteString(sessionId)}`,
          format: 'JSONEachRow',
        });
        const r = await rs.json<{ video_id: string; session_id: string; type: string }>();
        return r.length ? r : undefined;
      });
      expect(rows).toEqual([{ video_id: videoId, session_id: sessionId, type: 'play' }]);
    } finally {
      await ch.close();
    }

    // Each service exposes Prometheus metrics that saw this video's traffic.
    const text = async (url: string) => (await fetch(url)).text();
    expect(await text(`${cfg.apiUrl}/metrics`)).toMatch(/vora_api_requests_total\{[^}]*route="\/v1\/videos\/:videoId"[^}]*\} [1-9]/);
    expect(await text(`http://${cfg.host}:${inject('stackEnv').VORA_WORKER_METRICS_PORT}/metrics`)).toMatch(/vora_worker_chunk_encodes_total\{[^}]*outcome="encoded"[^}]*\} [1-9]/);
    expect(await text(`${cfg.gatewayUrl}/metrics`)).toMatch(/^vora_/m);
  });
});
