//! Hex transcripts (tests/data/*.apdu) run against a fresh card with applets A, B, C.

use ykt_card::testing::{
    Expected, Step, TranscriptError, check_transcript, parse_transcript, run_transcript,
};

use crate::support;

fn run(name: &str) -> usize {
    let mut card = support::card();
    check_transcript(
        &mut card,
        format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR")),
    )
}

#[test]
fn dispatcher() {
    assert!(run("dispatcher.apdu") > 50);
}

#[test]
fn selection() {
    assert!(run("selection.apdu") >= 8);
}

#[test]
fn files() {
    assert!(run("files.apdu") > 60);
}

#[test]
fn get_response() {
    assert!(run("getresponse.apdu") > 20);
}

#[test]
fn power() {
    assert!(run("power.apdu") >= 6);
}

#[test]
fn every_data_file_is_listed_in_the_readme() {
    let dir = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(format!("{dir}/README.md")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name != "README.md" {
            assert!(
                readme.contains(&format!("`{name}`")),
                "{name} missing from README.md"
            );
        }
    }
}

#[test]
fn transcript_parser() {
    let steps = parse_transcript("# c\n\n>> 00A4 0400\n<< 6Axx\n!power_off\n!power_on\n!reset\n!tear 3\n>> 00\n<< POWER_LOST\n")
        .unwrap();
    assert_eq!(steps.len(), 6);
    assert!(
        matches!(&steps[0], Step::Exchange { line: 3, expected: Expected::Bytes(b), .. } if b == &[Some(0x6A), None])
    );
    assert_eq!(steps[4], Step::Tear(3));
    for bad in [
        ">> 00\n",
        "<< 9000\n",
        ">> 0\n<< 9000\n",
        ">> 00\n>> 00\n",
        ">> 00\n<< 90\n",
        "hello\n",
        "!tear x\n",
        ">> zz\n<< 9000\n",
    ] {
        assert!(
            matches!(parse_transcript(bad), Err(TranscriptError::Syntax { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn transcript_mismatch_is_reported() {
    let mut card = support::card();
    let err =
        run_transcript(&mut card, "# x\n>> 00A4040008A000000632010105\n<< 9000\n").unwrap_err();
    let TranscriptError::Mismatch { line, actual, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*line, 2);
    assert!(actual.ends_with("9000"));
    assert!(err.to_string().contains("line 2"));
}
