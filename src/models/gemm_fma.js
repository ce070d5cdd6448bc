// Instantiates the fused multiply-add tile (gemm_fma.rs, compiled by build.rs) on the app's memory
// where the engine validates it, and calls it for src/models/gemm.rs.
let tiles = null;
export function medseg_fma_setup(bytes, memory) {
    try {
        if (!WebAssembly.validate(bytes)) return false;
        const m = new WebAssembly.Module(bytes);
        tiles = new WebAssembly.Instance(m, { env: { memory } }).exports.tiles;
        self.__medsegFma = true;
        return true;
    } catch (e) {
        return false;
    }
}
export function medseg_fma_tiles(a, b, start, c, ldc, kc, count) {
    tiles(a, b, start, c, ldc, kc, count);
}
