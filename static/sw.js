// medseg's service worker: after the first visit the app and its model files load from the
// browser's cache, so the page works with the network off. It handles only this origin's GET
// requests (network first, so an update is picked up when online; the cache when offline) and
// never sends anything anywhere. Model files are verified (sha256) by the app on every load.
const CACHE = 'medseg-v1';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));

const sameOrigin = (url) => new URL(url).origin === self.location.origin;

// The page lists what it loaded before this worker controlled it (the page itself, its wasm).
self.addEventListener('message', (e) => {
  const urls = (e.data && e.data.cache || []).filter(sameOrigin);
  e.waitUntil(caches.open(CACHE).then((c) => Promise.all(urls.map((u) =>
    fetch(u).then((r) => (r.ok ? c.put(u, r) : null)).catch(() => null)))));
});

self.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET' || !sameOrigin(req.url)) return;
  e.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const resp = await fetch(req);
      if (resp.ok) await cache.put(req, resp.clone());
      return resp;
    } catch (err) {
      const hit = await cache.match(req, { ignoreSearch: true });
      if (hit) return hit;
      throw err;
    }
  })());
});
