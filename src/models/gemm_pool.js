// Helper threads for the browser's matrix products, attentions and depthwise convolutions
// (src/models/gemm.rs, `pool`). Each helper is a small worker running the product's own code
// (gemm_fma.rs built by build.rs with `--cfg medseg_pool`: gemm_core.rs, depthwise.rs and the
// fused multiply-add tile) on a shared memory: the caller copies a product's operands there,
// each helper computes its share of the rows of C while the caller computes the first rows in its
// own memory, and the caller copies the helpers' rows back. Only in a cross-origin isolated page (shared memory) and where relaxed SIMD validates. A
// worker waits for its helpers with Atomics.wait; a page's own thread may not, so it spins (it
// computes its own share first, and the helpers' shares take as long: the spin is short).

// Per helper, 32 Int32 words of the control block: its state, whether it is ready, then the job
// that `job` in gemm_fma.rs reads (a product's, an attention's or a depthwise convolution's words).
const SLOT_WORDS = 32;
const [IDLE, JOB, DONE, FAILED] = [0, 1, 2, 3];
const MAX_HELPERS = 4;
const STACK_BYTES = 64 * 1024;
const PAGE = 65536;
// A product that does not come back in this long means a helper died: the pool is dropped.
const TIMEOUT_MS = 30000;

const HELPER = `
onmessage = (e) => {
    const { module, memory, ctlAt, slot, stackTop } = e.data;
    const ctl = new Int32Array(memory.buffer, ctlAt, ${MAX_HELPERS * SLOT_WORDS});
    const s = slot * ${SLOT_WORDS};
    let job;
    try {
        const inst = new WebAssembly.Instance(module, { env: { memory } });
        inst.exports.__stack_pointer.value = stackTop;
        job = inst.exports.job;
    } catch (err) {
        Atomics.store(ctl, s, ${FAILED});
        Atomics.notify(ctl, s);
        return;
    }
    Atomics.store(ctl, s + 1, 1);
    for (;;) {
        Atomics.wait(ctl, s, ${IDLE});
        if (Atomics.load(ctl, s) !== ${JOB}) continue;
        let out = ${DONE};
        try {
            job(ctlAt + (s + 2) * 4);
        } catch (err) {
            out = ${FAILED};
        }
        Atomics.store(ctl, s, out);
        Atomics.notify(ctl, s);
        if (out === ${FAILED}) return;
        // Until the caller has taken the rows.
        while (Atomics.load(ctl, s) === ${DONE}) Atomics.wait(ctl, s, ${DONE});
    }
};`;

let pool = null; // null: not tried yet; false: unusable here
let wanted = 0;
let current = null; // the product the helpers are computing

const IN_WORKER = typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope;

function canShare(bytes) {
    return self.crossOriginIsolated === true && WebAssembly.validate(bytes);
}

// Whether helper `s` is still at its job after waiting for it (a while in a worker; on a page's
// thread, which may not wait, not at all).
function stillAt(ctl, s, t0) {
    if (Atomics.load(ctl, s) !== JOB) return false;
    if (IN_WORKER) Atomics.wait(ctl, s, JOB, Math.max(1, TIMEOUT_MS - (Date.now() - t0)));
    return Atomics.load(ctl, s) === JOB;
}

function create(bytes) {
    const module = new WebAssembly.Module(bytes);
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 16384, shared: true });
    const probe = new WebAssembly.Instance(module, { env: { memory } }).exports;
    const align = (x, a) => Math.ceil(x / a) * a;
    const ctlAt = align(probe.__heap_base.value, 64);
    const slotBytes = STACK_BYTES + align(probe.scratch_floats() * 4, 64);
    const slotsAt = align(ctlAt + MAX_HELPERS * SLOT_WORDS * 4, 64);
    const url = URL.createObjectURL(new Blob([HELPER], { type: 'text/javascript' }));
    return {
        module, memory, ctlAt, slotsAt, slotBytes, url,
        dataAt: slotsAt + MAX_HELPERS * slotBytes,
        ctl: new Int32Array(memory.buffer, ctlAt, MAX_HELPERS * SLOT_WORDS),
        workers: [],
    };
}

function spawn(p) {
    const slot = p.workers.length;
    const w = new Worker(p.url);
    const at = p.slotsAt + slot * p.slotBytes;
    w.postMessage({ module: p.module, memory: p.memory, ctlAt: p.ctlAt, slot, stackTop: at + STACK_BYTES });
    p.workers.push(w);
}

function drop(reason) {
    console.warn(`matrix product helpers stopped: ${reason}`);
    for (const w of pool.workers) w.terminate();
    pool = false;
    current = null;
}

// Allows `helpers` helper threads from now on (0: products stay on this thread), starting them
// the first time.
export function medseg_pool_use(bytes, helpers) {
    wanted = Math.min(helpers, MAX_HELPERS);
    if (wanted === 0 || pool === false) return;
    try {
        if (pool === null) pool = canShare(bytes) ? create(bytes) : false;
        while (pool && pool.workers.length < wanted) spawn(pool);
    } catch (e) {
        if (pool) drop(e); else pool = false;
    }
}

function readySlots() {
    if (!pool) return [];
    const out = [];
    for (let i = 0; i < Math.min(wanted, pool.workers.length); i++) {
        const s = i * SLOT_WORDS;
        if (Atomics.load(pool.ctl, s + 1) === 1 && Atomics.load(pool.ctl, s) === IDLE) out.push(i);
    }
    return out;
}

// Resolves once every helper started has said it is ready or failed, or after `timeoutMs`:
// a helper starts only while its parent's thread is free, so a caller about to compute waits here.
// Helpers not started by then (a policy that forbids blob: workers, say) never will be: the pool
// is dropped, so that no later caller waits again.
export function medseg_pool_started(timeoutMs) {
    const t0 = Date.now();
    return new Promise((resolve) => {
        const poll = () => {
            const waiting = pool ? pool.workers.filter((_, i) => Atomics.load(pool.ctl, i * SLOT_WORDS + 1) === 0
                && Atomics.load(pool.ctl, i * SLOT_WORDS) !== FAILED).length : 0;
            if (waiting === 0) return resolve();
            if (Date.now() - t0 > timeoutMs) {
                drop(`${waiting} helper(s) did not start`);
                return resolve();
            }
            setTimeout(poll, 5);
        };
        poll();
    });
}

// How many helpers would take part in a product now.
export function medseg_pool_helpers() {
    return readySlots().length;
}

// Copies `arrays` to the shared memory, with room for `outFloats` of output, and hands the ready
// helpers their jobs: `header(addresses of the arrays, of the output, of the helper's scratch,
// helper i, of count)` gives helper i's words (gemm_fma.rs `job`). False if no helper is ready.
function start(arrays, outFloats, header) {
    const slots = readySlots();
    if (slots.length === 0 || current) return false;
    const p = pool;
    let at = p.dataAt;
    const place = (floats) => { const here = at; at += Math.ceil(floats / 4) * 16; return here; };
    const ats = arrays.map((x) => place(x.length));
    const outAt = place(outFloats);
    if (at > p.memory.buffer.byteLength) {
        try {
            p.memory.grow(Math.ceil((at - p.memory.buffer.byteLength) / PAGE));
        } catch (e) {
            return false; // too large to share: this thread computes it
        }
    }
    const f32 = new Float32Array(p.memory.buffer);
    arrays.forEach((x, i) => f32.set(x, ats[i] / 4));
    slots.forEach((slot, i) => {
        const s = slot * SLOT_WORDS;
        const scratch = p.slotsAt + slot * p.slotBytes + STACK_BYTES;
        p.ctl.set(header(ats, outAt, scratch, i, slots.length), s + 2);
        Atomics.store(p.ctl, s, JOB);
        Atomics.notify(p.ctl, s);
    });
    current = { slots, cAt: outAt, len: outFloats };
    return true;
}

// A product's `desc[2]` rows for the helpers, in even shares (pairs of rows: the tile's height).
// desc: rhs kind, bias kind, m, k, n, the im2col image's c, h, w, stride, pad, then what follows
// the product (0 nothing, 1 GELU).
export function medseg_pool_start(desc, a, b, bias) {
    const [rhs, biasKind, m, k, n, c, h, w, stride, pad, then = 0] = desc;
    const pairs = Math.ceil(m / 2);
    return start([a, b, bias], m * n, ([aAt, bAt, biasAt], cAt, scratch, i, count) => {
        const r0 = 2 * Math.floor((pairs * i) / count);
        const r1 = Math.min(m, 2 * Math.floor((pairs * (i + 1)) / count));
        return [rhs, biasKind, r1 - r0, k, n, aAt + r0 * k * 4, bAt,
            biasAt + (biasKind === 1 ? r0 * 4 : 0), cAt + r0 * n * 4, scratch, c, h, w, stride, pad, then];
    });
}

// An attention's `desc[0]` groups for the helpers, in even shares. desc: groups, n, m, d, dv,
// heads, the first group's index, whether there is a bias, the scale's f32 bits.
export function medseg_pool_start_attention(desc, q, k, v, bias) {
    const [groups, n, m, d, dv, heads, first, hasBias, scaleBits] = desc;
    return start([q, k, v, bias], groups * n * dv, ([qAt, kAt, vAt, biasAt], outAt, scratch, i, count) => {
        const g0 = Math.floor((groups * i) / count), g1 = Math.floor((groups * (i + 1)) / count);
        return [3, hasBias, g1 - g0, n, m, d, dv, heads, first + g0, qAt + g0 * n * d * 4,
            kAt + g0 * m * d * 4, vAt + g0 * m * dv * 4, biasAt, outAt + g0 * n * dv * 4, scratch, scaleBits];
    });
}

// A depthwise convolution's `desc[0]` channels for the helpers, in even shares. desc: channels,
// h, w, stride, what follows (0 nothing, 1 GELU), the output's height and width.
export function medseg_pool_start_depthwise(desc, x, taps, bias) {
    const [c, h, w, stride, then, oh, ow] = desc;
    return start([x, taps, bias], c * oh * ow, ([xAt, tapsAt, biasAt], outAt, scratch, i, count) => {
        const c0 = Math.floor((c * i) / count), c1 = Math.floor((c * (i + 1)) / count);
        return [4, then, c1 - c0, h, w, stride, xAt + c0 * h * w * 4, tapsAt + c0 * 9 * 4,
            biasAt + c0 * 4, outAt + c0 * oh * ow * 4, scratch];
    });
}

// Waits for the helpers and copies their rows (or groups) into `c`; false if one failed (the
// caller then computes them itself).
export function medseg_pool_finish(c) {
    const p = pool, job = current;
    current = null;
    if (!p || !job) return false;
    let ok = true;
    const t0 = Date.now();
    for (const slot of job.slots) {
        const s = slot * SLOT_WORDS;
        while (stillAt(p.ctl, s, t0)) {
            if (Date.now() - t0 > TIMEOUT_MS) {
                drop('a helper did not answer');
                return false;
            }
        }
        if (Atomics.load(p.ctl, s) !== DONE) ok = false;
    }
    if (!ok) {
        drop('a helper failed');
        return false;
    }
    c.set(new Float32Array(p.memory.buffer, job.cAt, job.len));
    for (const slot of job.slots) {
        Atomics.store(p.ctl, slot * SLOT_WORDS, IDLE);
        Atomics.notify(p.ctl, slot * SLOT_WORDS);
    }
    return true;
}
