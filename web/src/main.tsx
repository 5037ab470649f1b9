import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { captureKeyFromUrl, getApiKey, setApiKey } from './api';
import { live, type LiveMode } from './live';
import type { ComponentType } from 'preact';
import { LibraryPage } from './pages/library';
import { UploadPage } from './pages/upload';
import { Link, usePath } from './router';
import { ErrorBox, Spinner } from './ui';
import './style.css';

// The player (hls.js) and analytics (chart.js) load on first visit, so the library opens fast.
function lazyPage<P>(load: () => Promise<ComponentType<P>>) {
  let loaded: ComponentType<P> | null = null;
  return function Lazy(props: P & {}) {
    const [C, setC] = useState<ComponentType<P> | null>(() => loaded);
    const [failed, setFailed] = useState(false);
    useEffect(() => {
      if (C) return;
      load()
        .then((c) => {
          loaded = c;
          setC(() => c);
        })
        .catch(() => setFailed(true));
    }, []);
    if (failed) return <ErrorBox message="This page could not be loaded; reload to try again." retry={() => location.reload()} />;
    return C ? <C {...props} /> : <Spinner />;
  };
}
const PlayerPage = lazyPage<{ videoId: string }>(() => import('./pages/player').then((m) => m.PlayerPage));
const AnalyticsPage = lazyPage<{ videoId: string }>(() => import('./pages/analytics').then((m) => m.AnalyticsPage));

captureKeyFromUrl();
// The `vora up` link pasted into a tab that already shows the app only changes the fragment.
window.addEventListener('hashchange', captureKeyFromUrl);

function KeyControl() {
  const [key, setKey] = useState(getApiKey());
  const [open, setOpen] = useState(false);
  const [draft, setDraft] = useState('');
  useEffect(() => {
    const fn = () => setKey(getApiKey());
    window.addEventListener('vora:key', fn);
    return () => window.removeEventListener('vora:key', fn);
  }, []);
  return (
    <div class="keyctl">
      <button type="button" class={`chip ${key ? 'ok' : 'warn'}`} aria-expanded={open} onClick={() => setOpen(!open)}>
        {key ? 'API key set' : 'No API key'}
      </button>
      {open && (
        <form
          class="keypop"
          onSubmit={(e) => {
            e.preventDefault();
            setApiKey(draft || null);
            setDraft('');
            setOpen(false);
          }}
        >
          <label for="apikey">API key (uploads and deletes need it)</label>
          <input id="apikey" type="password" autoComplete="off" value={draft} placeholder={key ? '•••••• (stored)' : 'paste the key'} onInput={(e) => setDraft(e.currentTarget.value)} />
          <div class="row">
            <button type="submit" class="btn primary">Save</button>
            {key && (
              <button type="button" class="btn" onClick={() => { setApiKey(null); setOpen(false); }}>
                Forget
              </button>
            )}
          </div>
          <p class="hint">`vora up` prints a link with the key: http://127.0.0.1:8080/#key=…</p>
        </form>
      )}
    </div>
  );
}

/** Whether status updates arrive over the gateway's WebSocket or by polling (shown once known). */
function LiveIndicator() {
  const [mode, setMode] = useState<LiveMode>(live.mode);
  useEffect(
    () =>
      live.onMode((m) => {
        setMode(m);
        document.documentElement.dataset.live = m;
      }),
    [],
  );
  if (mode === 'connecting') return null;
  return (
    <span class={`live-ind ${mode}`} title={mode === 'socket' ? 'Status updates arrive live over WebSocket' : 'Live updates unavailable; refreshing every 2 s'}>
      {mode === 'socket' ? 'Live' : 'Refreshing'}
    </span>
  );
}

function App() {
  const path = usePath();
  let page;
  let m: RegExpExecArray | null;
  if (path === '/' || path === '/videos') page = <LibraryPage />;
  else if (path === '/upload') page = <UploadPage />;
  else if ((m = /^\/videos\/([^/]+)\/analytics\/?$/.exec(path))) page = <AnalyticsPage videoId={decodeURIComponent(m[1]!)} />;
  else if ((m = /^\/videos\/([^/]+)\/?$/.exec(path))) page = <PlayerPage key={m[1]} videoId={decodeURIComponent(m[1]!)} />;
  else
    page = (
      <section class="empty">
        <h1>Page not found</h1>
        <p>
          Nothing lives at <code>{path}</code>. <Link href="/">Back to the library</Link>
        </p>
      </section>
    );
  const nav = (href: string, label: string, active: boolean) => (
    <Link href={href} class={active ? 'active' : ''} aria-current={active ? 'page' : undefined}>
      {label}
    </Link>
  );
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <Link href="/" class="brand" aria-label="Vora home">
          <span class="logo" aria-hidden="true">▶</span> Vora
        </Link>
        <nav aria-label="Main">
          {nav('/', 'Library', path === '/' || path.startsWith('/videos'))}
          {nav('/upload', 'Upload', path === '/upload')}
        </nav>
        <LiveIndicator />
        <KeyControl />
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
