//! What a user asks for, with pre- and postprocessing exactly as the official code does it.

pub mod medsam;
pub mod propagate;
pub mod universeg;
