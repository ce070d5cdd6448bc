// The app's workers (GenSeg training, image encoding) run here, off the page's thread, with the
// app's own wasm: the page's first message names the app's script and wasm files and the entry
// point to call (`genseg_worker` or `encode_worker`); after that, the Rust side takes over.
self.onmessage = async ({ data }) => {
  self.onmessage = null;
  try {
    const app = await import(data.js);
    await app.default({ module_or_path: data.wasm });
    app[data.entry]();
  } catch (e) {
    self.postMessage({ kind: 'failed', message: `the ${data.entry} worker could not start: ${e}` });
  }
};
// A trap in the wasm's async work (a panic, memory exhausted) surfaces as an unhandled rejection,
// which the page's `onerror` never sees: say so, or the page would wait for an answer forever.
self.addEventListener('unhandledrejection', (e) => {
  self.postMessage({ kind: 'failed', message: `the worker failed: ${e.reason?.message ?? e.reason}` });
});
