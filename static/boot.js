// Loads one of the app's two builds (Cargo.toml, feature `webgpu`): the WebGPU build where the
// browser has a usable GPU adapter, else the CPU-only build, half the download (cubecl's shader
// generators are most of the WebGPU build). `?backend=cpu` forces the CPU build;
// `?backend=webgpu` takes the WebGPU build even on a software-emulated adapter.
// trunk links the CPU build as the page's main app (hashed names, passed in here) and builds the
// WebGPU one as a "worker" app under its binary's name, so its URLs carry the CPU build's name as
// a cache-buster. The chosen build is kept in `self.__medsegApp` for the app's own workers.
export async function boot(cpu) {
  const dir = cpu.js.slice(0, cpu.js.lastIndexOf('/') + 1);
  const tag = cpu.js.slice(dir.length);
  const gpu = { js: `${dir}medseg-web-gpu.js?b=${tag}`, wasm: `${dir}medseg-web-gpu_bg.wasm?b=${tag}` };
  const builds = (await gpuWanted()) ? [gpu, cpu] : [cpu];
  for (const [i, build] of builds.entries()) {
    try {
      self.__medsegApp = build;
      const app = await import(new URL(build.js, location.href).href);
      await app.default({ module_or_path: new URL(build.wasm, location.href).href });
      return;
    } catch (e) {
      // The WebGPU build failed to load (offline without it in the cache): the CPU build still works.
      if (i === builds.length - 1) throw e;
      console.warn(`medseg: the WebGPU build did not load (${e}); loading the CPU build`);
    }
  }
}

async function gpuWanted() {
  const wanted = new URLSearchParams(location.search).get('backend');
  if (wanted === 'cpu' || !navigator.gpu) return false;
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return false;
    const software = adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false;
    return !software || wanted === 'webgpu';
  } catch {
    return false;
  }
}
