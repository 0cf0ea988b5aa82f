//! `ykt conform --target tsm:URL` and `--target client`: the TSM and client conformance items against a running `ykt tsm serve`.
