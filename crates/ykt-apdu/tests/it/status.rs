//! Status word constants and helpers.

use ykt_apdu::StatusWord;

#[test]
fn constants_match_the_spec_values() {
    let table = [
        (StatusWord::SUCCESS, 0x9000),
        (StatusWord::WRONG_LENGTH, 0x6700),
        (StatusWord::COMMAND_NOT_ALLOWED, 0x6981),
        (StatusWord::SECURITY_STATUS_NOT_SATISFIED, 0x6982),
        (StatusWord::AUTH_METHOD_BLOCKED, 0x6983),
        (StatusWord::REFERENCED_DATA_INVALIDATED, 0x6984),
        (StatusWord::CONDITIONS_NOT_SATISFIED, 0x6985),
        (StatusWord::NO_CURRENT_EF, 0x6986),
        (StatusWord::SM_DATA_OBJECTS_INCORRECT, 0x6988),
        (StatusWord::WRONG_DATA, 0x6A80),
        (StatusWord::FUNCTION_NOT_SUPPORTED, 0x6A81),
        (StatusWord::FILE_NOT_FOUND, 0x6A82),
        (StatusWord::RECORD_NOT_FOUND, 0x6A83),
        (StatusWord::NOT_ENOUGH_MEMORY, 0x6A84),
        (StatusWord::INCORRECT_P1P2, 0x6A86),
        (StatusWord::REFERENCED_DATA_NOT_FOUND, 0x6A88),
        (StatusWord::WRONG_P1P2, 0x6B00),
        (StatusWord::INS_NOT_SUPPORTED, 0x6D00),
        (StatusWord::CLA_NOT_SUPPORTED, 0x6E00),
        (StatusWord::UNKNOWN, 0x6F00),
        (StatusWord::MAC_INVALID, 0x9302),
        (StatusWord::APPLICATION_PERMANENTLY_LOCKED, 0x9303),
        (StatusWord::INSUFFICIENT_BALANCE, 0x9401),
        (StatusWord::COUNTER_AT_MAXIMUM, 0x9402),
        (StatusWord::KEY_INDEX_NOT_SUPPORTED, 0x9403),
        (StatusWord::MAC_NOT_AVAILABLE, 0x9406),
    ];
    for (sw, value) in table {
        assert_eq!(sw.0, value);
    }
}

#[test]
fn helpers() {
    let sw = StatusWord::new(0x6A, 0x82);
    assert_eq!(sw, StatusWord::FILE_NOT_FOUND);
    assert_eq!((sw.sw1(), sw.sw2()), (0x6A, 0x82));
    assert_eq!(sw.to_bytes(), [0x6A, 0x82]);
    assert_eq!(format!("{sw:?}"), "SW 6A82");
    assert_eq!(format!("{sw}"), "6A82");
    assert!(StatusWord::SUCCESS.is_success());
    assert!(StatusWord::bytes_remaining(0).is_success());
    assert!(!StatusWord::wrong_le(8).is_success());
    assert!(!StatusWord::pin_tries_left(2).is_success());
    assert_eq!(StatusWord::pin_tries_left(2).0, 0x63C2);
    assert_eq!(StatusWord::bytes_remaining(0x1C).0, 0x611C);
    assert_eq!(StatusWord::wrong_le(0x17).0, 0x6C17);
    assert!(StatusWord::pin_tries_left(0).is_warning());
}
