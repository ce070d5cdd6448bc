// GenSeg trains here, off the page's thread, with the app's own wasm: the page's first message
// names the app's script and wasm files; after that, the Rust side (`genseg_worker`) takes over.
self.onmessage = async ({ data }) => {
  self.onmessage = null;
  try {
    const app = await import(data.js);
    await app.default({ module_or_path: data.wasm });
    app.genseg_worker();
  } catch (e) {
    self.postMessage({ kind: 'failed', message: `the training worker could not start: ${e}` });
  }
};
