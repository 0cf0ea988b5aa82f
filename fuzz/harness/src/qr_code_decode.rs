//! `qr_code_decode`: every decoder of `ykt_qr` over the same bytes. None panics; whatever
//! decodes re-encodes to the same bytes where the format has one encoding (the code, the
//! issuer's blob, the certificate, the root key record and the BCD expiry), and a 4026 entry
//! and a whitelist record (whose RFU bytes are ignored) keep every other byte; a value
//! decoded from a code's prefix is the code's own.

use ykt_qr::verify::WhitelistRecord;
use ykt_qr::{Authorisation, Expiry, IssuerCertificate, QrCode, RootKeyEntry, RootKeyRecord};

/// The target.
pub fn run(data: &[u8]) {
    if let Ok(code) = QrCode::decode(data) {
        assert_eq!(code.encode(), data, "code re-encodes differently");
        let n = code.authorisation.body.issuer_data_len();
        assert_eq!(data.len(), 332 + n);
        assert_eq!(code.user_signed_bytes(), &data[..data.len() - 65]);
        let blob = Authorisation::decode(&data[..263 + n]).expect("a code's fields 1-15 decode");
        assert_eq!(blob, code.authorisation);
        let cert = IssuerCertificate::decode(&data[3..120]).expect("a code's field 3 decodes");
        assert_eq!(cert, code.authorisation.certificate);
        assert_eq!(code.authorisation.issuer_signed_bytes(), &data[3..198 + n]);
    }
    if let Ok(blob) = Authorisation::decode(data) {
        assert_eq!(blob.encode(), data, "authorisation re-encodes differently");
    }
    if let Ok(cert) = IssuerCertificate::decode(data) {
        assert_eq!(
            &cert.encode()[..],
            data,
            "certificate re-encodes differently"
        );
        assert_eq!(&cert.signed_bytes()[..], &data[6..53]);
    }
    if let Ok(record) = RootKeyRecord::decode(data) {
        assert_eq!(
            &record.encode()[..],
            data,
            "root key record re-encodes differently"
        );
        assert_eq!(&record.signed_bytes()[..], &data[..80]);
    }
    if let Ok(entry) = RootKeyEntry::decode(data) {
        let again = entry.encode();
        assert_eq!(
            &again[..146],
            &data[..146],
            "4026 entry re-encodes differently"
        );
        assert_eq!(RootKeyEntry::decode(&again).as_ref(), Ok(&entry));
        assert_eq!(
            RootKeyRecord::decode(&data[2..146]).as_ref(),
            Ok(&entry.record)
        );
    }
    if let Ok(record) = WhitelistRecord::decode(data) {
        // Bytes 13 and 14 are RFU: ignored, written as zero.
        let again = record.encode();
        assert_eq!(
            &again[..13],
            &data[..13],
            "whitelist record re-encodes differently"
        );
        assert_eq!(again[15], data[15]);
        assert_eq!(WhitelistRecord::decode(&again), Ok(record));
    }
    if let [a, b, ..] = *data
        && let Ok(expiry) = Expiry::from_bcd([a, b])
    {
        assert_eq!(expiry.to_bcd(), [a, b]);
        assert!((1..=12).contains(&expiry.month()) && expiry.year() <= 99);
    }
}
