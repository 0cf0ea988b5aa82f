//! Host-side flows against the simulated test card of e-purse.md §8.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers fail loudly by design

mod block;
mod flows;
mod journal;
mod lists;
mod recovery;
mod sam_card;
mod tap;
mod ticket;
mod transit;
mod validator;
