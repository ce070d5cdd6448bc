//! A small seeded generator (SplitMix64): reproducible sampling on every target without a
//! dependency, so a seed gives the same support subsets and augmentations natively and in wasm.

#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 24 random bits.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
    /// Uniform index in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// `k` distinct indices from 0..n (partial Fisher–Yates), sorted.
    pub fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        self.shuffle(&mut idx, k.min(n));
        let mut out = idx[..k.min(n)].to_vec();
        out.sort_unstable();
        out
    }
    /// Shuffles the first `k` positions of `v` (all of it when k = len).
    pub fn shuffle<T>(&mut self, v: &mut [T], k: usize) {
        let n = v.len();
        for i in 0..k.min(n) {
            let j = i + self.below(n - i);
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_in_range() {
        let a = SplitMix(7).sample(64, 8);
        assert_eq!(a, SplitMix(7).sample(64, 8));
        assert_eq!(a.len(), 8);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a[7] < 64);
        assert_ne!(a, SplitMix(8).sample(64, 8));
        let mut r = SplitMix(1);
        let xs: Vec<f32> = (0..1000).map(|_| r.uniform(-2.0, 3.0)).collect();
        assert!(xs.iter().all(|&x| (-2.0..3.0).contains(&x)));
        let mean = xs.iter().sum::<f32>() / 1000.0;
        assert!((mean - 0.5).abs() < 0.2, "{mean}");
    }
}
