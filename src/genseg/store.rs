//! Trained GenSeg weights in our model-file format: each module's tensors by path
//! (`generator.levels.0.down.weight`, BatchNorm running statistics included), f32.

use crate::error::{Error, Result};
use crate::weights::{HostTensor, StateDict, to_host_async};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};

/// Every float tensor of `module` under `prefix` (read without blocking, so it works in the
/// browser on any backend).
pub async fn collect<M: Module>(module: &M, prefix: &str, out: &mut StateDict) -> Result<()> {
    struct Collector {
        path: Vec<String>,
        found: Vec<(String, Vec<usize>, Tensor<1>)>,
    }
    impl ModuleVisitor for Collector {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let shape = t.dims().to_vec();
            let n: usize = shape.iter().product();
            self.found
                .push((self.path.join("."), shape, t.reshape([n])));
        }
    }
    let mut c = Collector {
        path: vec![prefix.to_string()],
        found: Vec::new(),
    };
    // `valid` folds pending BatchNorm running-statistics updates in; a plain visit misses the last.
    module.valid().visit(&mut c);
    for (name, shape, t) in c.found {
        let data = to_host_async(t).await?;
        out.insert(name, HostTensor { shape, data });
    }
    Ok(())
}

/// `module` with every float tensor replaced by the one stored under its path; names what is
/// missing or mismatched.
pub fn restore<M: Module>(module: M, prefix: &str, dict: &StateDict) -> Result<M> {
    struct Restorer<'a> {
        path: Vec<String>,
        dict: &'a StateDict,
        problems: Vec<String>,
    }
    impl ModuleMapper for Restorer<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let name = self.path.join(".");
            let Some(t) = self.dict.get(&name) else {
                self.problems.push(format!("missing {name}"));
                return param;
            };
            let want = param.val().dims().to_vec();
            if t.shape != want {
                self.problems
                    .push(format!("{name}: stored {:?}, expected {want:?}", t.shape));
                return param;
            }
            param.map(|old| {
                let dev = old.device();
                let fresh =
                    Tensor::<D>::from_data(TensorData::new(t.data.clone(), t.shape.clone()), &dev);
                if old.is_require_grad() {
                    fresh.require_grad()
                } else {
                    fresh
                }
            })
        }
    }
    let mut r = Restorer {
        path: vec![prefix.to_string()],
        dict,
        problems: Vec::new(),
    };
    let out = module.map(&mut r);
    if r.problems.is_empty() {
        Ok(out)
    } else {
        let n = r.problems.len();
        let shown: Vec<&str> = r.problems.iter().take(4).map(String::as_str).collect();
        Err(Error::Weights(format!(
            "GenSeg weights do not fit this network ({n} problem{}): {}{}",
            if n == 1 { "" } else { "s" },
            shown.join("; "),
            if n > 4 { "; …" } else { "" }
        )))
    }
}
