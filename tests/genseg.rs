//! GenSeg networks and training on the CPU backend: shapes and sizes against the published
//! architectures, one step of each optimiser lowers its loss, the architecture step moves the
//! up-convolution mix, weights round-trip through a model file, bad pairs are refused.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use medseg::genseg::nets::{Discriminator, Generator, NetConfig, Segmenter, UpconvArch};
use medseg::genseg::{GenSegModel, Pair, TrainConfig, Trainer};
use pollster::block_on;

fn read(t: Tensor<1>) -> f32 {
    t.into_scalar::<f32>()
}

/// A disc of radius r in an s×s plane with a matching textured image.
fn disc_pair(s: usize, cx: f32, cy: f32, r: f32) -> Pair {
    let mut image = Vec::with_capacity(s * s);
    let mut mask = Vec::with_capacity(s * s);
    for y in 0..s {
        for x in 0..s {
            let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
            let inside = d < r;
            mask.push(f32::from(inside));
            let texture = 0.1 * ((x * 7 + y * 3) % 5) as f32 / 5.0;
            image.push(if inside { 0.8 - texture } else { 0.2 + texture });
        }
    }
    Pair { image, mask }
}

fn tiny() -> TrainConfig {
    TrainConfig::new(NetConfig {
        size: 32,
        ngf: 8,
        ndf: 8,
        seg_width: 4,
    })
}

#[test]
fn networks_have_the_published_shapes_and_sizes() {
    let dev = Device::flex();
    // pix2pix's PatchGAN (n_layers 3) on mask ⊕ image, ndf 64: conv weights + biases + BN.
    let full = NetConfig {
        size: 256,
        ngf: 64,
        ndf: 64,
        seg_width: 64,
    };
    let d = Discriminator::new(&full, &dev);
    let expect_d = (2 * 64 * 16 + 64)
        + (64 * 128 * 16 + 2 * 128)
        + (128 * 256 * 16 + 2 * 256)
        + (256 * 512 * 16 + 2 * 512)
        + (512 * 16 + 1);
    let running = 2 * (128 + 256 + 512);
    assert_eq!(d.num_params(), expect_d + running);
    // The GenSeg U-Net segmenter (64 … 1024, transposed-conv ups), one input channel.
    let s = Segmenter::new(&full, &dev);
    let dc = |i: usize, o: usize| 9 * i * o + 9 * o * o + 4 * o;
    let w = [64, 128, 256, 512, 1024];
    let mut expect_s = dc(1, 64);
    for k in 1..5 {
        expect_s += dc(w[k - 1], w[k]);
    }
    for k in (0..4).rev() {
        expect_s += 4 * w[k + 1] * w[k] + w[k] + dc(2 * w[k], w[k]);
    }
    expect_s += 64 + 1;
    let running_s: usize = 2 * 2 * (w.iter().sum::<usize>() + w[..4].iter().sum::<usize>());
    assert_eq!(s.num_params(), expect_s + running_s);

    // Shapes at a small size: image in [−1, 1], a 6×6 patch map at 64, logits at full size.
    let cfg = NetConfig {
        size: 64,
        ngf: 4,
        ndf: 4,
        seg_width: 2,
    };
    let g = Generator::new(&cfg, &dev);
    assert_eq!(g.levels(), 6);
    let arch = UpconvArch::new(g.levels(), &dev);
    let m = Tensor::<4>::ones([2, 1, 64, 64], &dev);
    let img = g.forward(m.clone(), &arch);
    assert_eq!(img.dims(), [2, 1, 64, 64]);
    let (lo, hi) = (read(img.clone().min()), read(img.clone().max()));
    assert!(lo >= -1.0 && hi <= 1.0, "{lo} {hi}");
    assert_eq!(
        Discriminator::new(&cfg, &dev)
            .forward(m.clone(), img)
            .dims(),
        [2, 1, 6, 6]
    );
    assert_eq!(Segmenter::new(&cfg, &dev).forward(m).dims(), [2, 1, 64, 64]);
    // The up-convolution mix starts near uniform.
    let p = arch
        .probabilities()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(p.len(), 18);
    assert!(p.iter().all(|&v| (v - 1.0 / 3.0).abs() < 0.01));
}

#[test]
fn each_update_lowers_its_own_loss() {
    let dev = Device::flex();
    let pairs = vec![
        disc_pair(32, 14.0, 16.0, 7.0),
        disc_pair(32, 18.0, 15.0, 9.0),
    ];
    let mut t = Trainer::new(tiny(), pairs[..1].to_vec(), pairs[1..].to_vec(), &dev).unwrap();
    let (m, x01) = (t.plane(&pairs[0].mask), t.plane(&pairs[0].image));
    let x = x01.clone().mul_scalar(2.0).sub_scalar(1.0);
    let fake_at = |t: &Trainer| {
        t.device().seed(11); // the same dropout masks before and after
        t.fake(m.clone())
    };

    let fake = fake_at(&t).detach();
    let [r0, f0] = t.d_update(m.clone(), x.clone(), fake.clone());
    let [r1, f1] = t.d_loss(m.clone(), x.clone(), fake);
    let (before, after) = (read(r0) + read(f0), read(r1) + read(f1));
    assert!(after < before, "discriminator: {before} → {after}");

    let [gg0, l10] = t.g_update(m.clone(), x.clone(), fake_at(&t));
    let [gg1, l11] = t.g_loss(m.clone(), x.clone(), fake_at(&t));
    let (before, after) = (read(gg0) + read(l10), read(gg1) + read(l11));
    assert!(after < before, "generator: {before} → {after}");

    let s0: f32 = t
        .seg_update(x01.clone(), m.clone())
        .into_iter()
        .map(read)
        .sum();
    let s1: f32 = t.seg_losses(x01, m).into_iter().map(read).sum();
    assert!(s1 < s0, "segmenter: {s0} → {s1}");
}

#[test]
fn training_runs_learns_and_moves_the_architecture() {
    let dev = Device::flex();
    let pairs: Vec<Pair> = (0..4)
        .map(|i| disc_pair(32, 12.0 + 2.0 * i as f32, 16.0, 6.0 + i as f32))
        .collect();
    let mut cfg = tiny();
    cfg.seed = 3;
    let mut t = Trainer::new(cfg, pairs[..3].to_vec(), pairs[3..].to_vec(), &dev).unwrap();
    let mix0 = block_on(t.model.upconv_mix()).unwrap();
    let mut hist = Vec::new();
    for _ in 0..40 {
        hist.push(block_on(t.step()).unwrap());
    }
    let mean = |f: &dyn Fn(&medseg::genseg::Losses) -> f32, r: std::ops::Range<usize>| {
        hist[r.clone()].iter().map(f).sum::<f32>() / r.len() as f32
    };
    for l in &hist {
        for v in [
            l.d_real,
            l.d_fake,
            l.g_gan,
            l.g_l1,
            l.seg_real,
            l.seg_synth,
            l.seg_val,
        ] {
            assert!(v.is_finite(), "{l:?}");
        }
    }
    let (l1a, l1b) = (mean(&|l| l.g_l1, 0..5), mean(&|l| l.g_l1, 35..40));
    assert!(l1b < 0.7 * l1a, "generator L1 {l1a} → {l1b}");
    // The held-out loss (a pair it never trains on) falls too.
    let (sa, sb) = (mean(&|l| l.seg_val, 0..5), mean(&|l| l.seg_val, 35..40));
    assert!(sb < 0.9 * sa, "held-out segmenter loss {sa} → {sb}");
    // The architecture step changed the mix and it is still a distribution per level.
    let mix = block_on(t.model.upconv_mix()).unwrap();
    let moved: f32 = mix
        .iter()
        .zip(&mix0)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
        .sum();
    assert!(moved > 1e-4, "architecture did not move: {mix:?}");
    assert!(
        mix.iter()
            .all(|r| (r.iter().sum::<f32>() - 1.0).abs() < 1e-4)
    );

    // Weights round-trip through a model file: same images (same seed), same segmentation.
    let bytes = block_on(t.model.to_bytes()).unwrap();
    let back = GenSegModel::from_bytes(&bytes, &dev).unwrap();
    let mask = t.new_mask();
    let a = block_on(t.model.generate(&mask, 5)).unwrap();
    let b = block_on(back.generate(&mask, 5)).unwrap();
    assert_eq!(a, b);
    let sa = block_on(t.model.segment(&pairs[3].image)).unwrap();
    let sb = block_on(back.segment(&pairs[3].image)).unwrap();
    assert_eq!(sa, sb);
    // A model file of another kind or a truncated one is refused with a reason.
    let e = GenSegModel::from_bytes(&bytes[..bytes.len() / 2], &dev)
        .unwrap_err()
        .to_string();
    assert!(!e.is_empty());
}

#[test]
fn bad_runs_are_refused_with_reasons() {
    let dev = Device::flex();
    let p = disc_pair(32, 16.0, 16.0, 6.0);
    let e = Trainer::new(tiny(), vec![], vec![p.clone()], &dev)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("at least one training pair"), "{e}");
    let mut small = p.clone();
    small.image.truncate(100);
    let e = Trainer::new(tiny(), vec![small], vec![], &dev)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("is not 32×32"), "{e}");
    let mut cfg = tiny();
    cfg.net.size = 48;
    let e = Trainer::new(cfg, vec![p], vec![], &dev)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("size must be 32, 64, 128 or 256"), "{e}");
}
