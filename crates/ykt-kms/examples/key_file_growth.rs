//! What one key added to a software-KMS key file costs as the file grows: the TSM adds three
//! AES-128 keys (one SSD key set) per open card to `sp.kms`, and `SoftwareKms` rewrites the
//! whole file for each (encrypt, write, fsync, rename, fsync of the directory).
//!
//! ```text
//! cargo run --release -p ykt-kms --example key_file_growth -- DIR [SIZES…]
//! ```
//! For each size N (default 1000 5000 20000 keys), fills a key file in DIR to N keys, then
//! times 20 more additions; prints `ykt key-file <N keys> <file bytes> <ms per added key>`.
// An example program: it reports failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ykt_kms::{DiscardAudit, KdfParams, KeyId, KeySpec, KeyType, Kms, SecretBytes, SoftwareKms};

const TIMED: usize = 20;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("DIR"));
    let sizes: Vec<usize> = {
        let given: Vec<usize> = args.map(|a| a.parse().expect("SIZE")).collect();
        if given.is_empty() {
            vec![1000, 5000, 20_000]
        } else {
            given
        }
    };
    for n in sizes {
        let path = dir.join(format!("growth-{n}.kms"));
        let _ = std::fs::remove_file(&path);
        let pass = SecretBytes::from_slice(b"a passphrase for the growth example");
        let params = KdfParams::new(8 * 1024, 1, 1).unwrap();
        let kms = SoftwareKms::create(&path, &pass, params, Arc::new(DiscardAudit)).unwrap();
        // The fill is not timed (one save per key: it takes time quadratic in N).
        let material = SecretBytes::from_slice(&[0x42; 16]);
        let spec = KeySpec::exportable(KeyType::Aes128);
        for i in 0..n {
            let id = KeyId::new(&format!("ssd/fill/{i:08}"), 1).unwrap();
            kms.import(&id, spec, &material, "fill").unwrap();
        }
        let start = Instant::now();
        for i in 0..TIMED {
            let id = KeyId::new(&format!("ssd/timed/{i:08}"), 1).unwrap();
            kms.import(&id, spec, &material, "timed").unwrap();
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / TIMED as f64;
        let bytes = std::fs::metadata(&path).unwrap().len();
        println!("ykt key-file {n} {bytes} {ms:.2}");
        let _ = std::fs::remove_file(&path);
    }
}
