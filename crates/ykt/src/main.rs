//! The `ykt` command.
fn main() {}
