// Vite config for the web app (Preact via esbuild's JSX; no @vitejs plugins). `npx vite build web`
// writes web/dist, which the API serves at / (src/api/web.ts).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 1200 },
  worker: { format: 'es' },
  server: {
    // `npx vite web` in dev: the API on :8080 answers /v1 (CORS is open anyway).
    proxy: { '/v1': 'http://127.0.0.1:8080' },
  },
});
