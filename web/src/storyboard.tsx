// Seek strip with storyboard previews: the worker writes storyboard.jpg (a sprite) and
// storyboard.vtt (cues `storyboard.jpg#xywh=x,y,w,h`) beside the master playlist. Hovering or
// focusing the strip shows the tile for that time; click or arrow keys seek.
import { useEffect, useRef, useState } from 'preact/hooks';

interface Cue {
  start: number;
  end: number;
  url: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

const seconds = (t: string) => t.split(':').reduce((acc, part) => acc * 60 + Number(part), 0);

/** Parses the storyboard WebVTT; tile URLs are resolved against the VTT's own URL (keeps ?token=). */
export function parseStoryboard(vtt: string, vttUrl: string): Cue[] {
  const cues: Cue[] = [];
  const blocks = vtt.replace(/\r/g, '').split('\n\n');
  for (const block of blocks) {
    const lines = block.split('\n').filter(Boolean);
    const timing = lines.findIndex((l) => l.includes('-->'));
    const target = lines[timing + 1];
    if (timing < 0 || !target) continue;
    const [from, to] = lines[timing]!.split('-->').map((s) => s.trim().split(' ')[0]!);
    const m = /^(.*)#xywh=(\d+),(\d+),(\d+),(\d+)$/.exec(target.trim());
    if (!m) continue;
    const url = new URL(m[1]!, vttUrl);
    const token = new URL(vttUrl).searchParams.get('token');
    if (token && !url.searchParams.has('token')) url.searchParams.set('token', token);
    cues.push({ start: seconds(from!), end: seconds(to!), url: url.toString(), x: +m[2]!, y: +m[3]!, w: +m[4]!, h: +m[5]! });
  }
  return cues;
}

const fmt = (t: number) => `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, '0')}`;

export function StoryboardSeek({ video, masterUrl }: { video: HTMLVideoElement | null; masterUrl: string }) {
  const [cues, setCues] = useState<Cue[]>([]);
  const [hover, setHover] = useState<number | null>(null);
  const [now, setNow] = useState(0);
  const [duration, setDuration] = useState(0);
  const strip = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const url = new URL('storyboard.vtt', masterUrl);
    const token = new URL(masterUrl).searchParams.get('token');
    if (token) url.searchParams.set('token', token);
    let gone = false;
    fetch(url)
      .then((r) => (r.ok ? r.text() : ''))
      .then((text) => !gone && setCues(text ? parseStoryboard(text, url.toString()) : []))
      .catch(() => {}); // no storyboard yet (PARTIALLY_READY): the strip still seeks
    return () => {
      gone = true;
    };
  }, [masterUrl]);

  useEffect(() => {
    if (!video) return;
    const tick = () => {
      setNow(video.currentTime);
      if (Number.isFinite(video.duration)) setDuration(video.duration);
    };
    video.addEventListener('timeupdate', tick);
    video.addEventListener('durationchange', tick);
    return () => {
      video.removeEventListener('timeupdate', tick);
      video.removeEventListener('durationchange', tick);
    };
  }, [video]);

  const timeAt = (clientX: number) => {
    const r = strip.current!.getBoundingClientRect();
    return Math.max(0, Math.min(1, (clientX - r.left) / r.width)) * duration;
  };
  const seek = (t: number) => {
    if (video) video.currentTime = Math.max(0, Math.min(duration, t));
  };
  const shown = hover ?? null;
  const cue = shown === null ? undefined : cues.find((c) => shown >= c.start && shown < c.end) ?? cues[cues.length - 1];

  return (
    <div class="seek">
      <div
        ref={strip}
        class="seek-strip"
        role="slider"
        tabIndex={0}
        aria-label="Seek"
        aria-valuemin={0}
        aria-valuemax={Math.round(duration)}
        aria-valuenow={Math.round(now)}
        aria-valuetext={fmt(now)}
        data-testid="seek-strip"
        onMouseMove={(e) => duration && setHover(timeAt(e.clientX))}
        onMouseLeave={() => setHover(null)}
        onClick={(e) => duration && seek(timeAt(e.clientX))}
        onFocus={() => setHover(now)}
        onBlur={() => setHover(null)}
        onKeyDown={(e) => {
          const step = e.key === 'ArrowRight' ? 5 : e.key === 'ArrowLeft' ? -5 : 0;
          if (!step) return;
          e.preventDefault();
          seek(now + step);
          setHover(Math.max(0, Math.min(duration, now + step)));
        }}
      >
        <div class="seek-fill" style={{ width: duration ? `${(now / duration) * 100}%` : '0%' }} />
        {shown !== null && duration > 0 && (
          <div class="seek-preview" data-testid="seek-preview" style={{ left: `${(shown / duration) * 100}%` }}>
            {cue && (
              <div
                class="seek-tile"
                data-testid="seek-tile"
                style={{ width: `${cue.w}px`, height: `${cue.h}px`, backgroundImage: `url("${cue.url}")`, backgroundPosition: `-${cue.x}px -${cue.y}px` }}
              />
            )}
            <span>{fmt(shown)}</span>
          </div>
        )}
      </div>
    </div>
  );
}
