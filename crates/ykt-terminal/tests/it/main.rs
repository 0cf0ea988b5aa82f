//! Host-side flows against the simulated test card of e-purse.md §8.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers fail loudly by design

mod block;
mod flows;
mod lists;
mod sam_card;
mod tap;
mod transit;
