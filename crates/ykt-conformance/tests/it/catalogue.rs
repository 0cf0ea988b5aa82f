//! Catalogue validation: the embedded files load, and every kind of defect is a load error.

use ykt_conformance::catalogue::{SE_TOML, TE_TOML, is_valid_id};
use ykt_conformance::{Catalogue, CatalogueError, Registry};

fn load(se: &str) -> Result<Catalogue, CatalogueError> {
    Catalogue::load(
        &[("se.toml", "SE", se), ("te.toml", "TE", TE_TOML)],
        &Registry::builtin(),
    )
}

/// The first item of the SE file, as text, for making defective variants.
fn first_item() -> &'static str {
    let start = SE_TOML.find("[[item]]").unwrap();
    let end = SE_TOML[start + 8..].find("[[item]]").unwrap() + start + 8;
    &SE_TOML[start..end]
}

#[test]
fn builtin_catalogue_loads_with_the_brief_items() {
    let c = Catalogue::builtin().unwrap();
    for id in [
        "SE-EP-SEL-001",
        "SE-EP-SEL-002",
        "SE-EP-FIL-001",
        "SE-EP-FIL-002",
        "SE-EP-BAL-001",
        "SE-EP-LOAD-001",
        "SE-EP-LOAD-002",
        "SE-EP-LOAD-003",
        "SE-EP-LOAD-004",
        "SE-EP-LOAD-005",
        "SE-EP-PUR-001",
        "SE-EP-PUR-002",
        "SE-EP-PUR-003",
        "SE-EP-PUR-004",
        "SE-EP-CMP-001",
        "SE-EP-CMP-002",
        "SE-EP-CMP-003",
        "SE-EP-CTR-001",
        "SE-EP-CTR-002",
        "SE-EP-PRV-001",
        "SE-EP-PRV-002",
        "SE-EP-PIN-001",
        "SE-EP-PIN-002",
        "SE-EP-BLK-001",
        "SE-EP-BLK-002",
        "SE-EP-ERR-001",
        "SE-EP-TEAR-001",
        "SE-EP-SM4-001",
        "SE-T2-SEL-001",
        "SE-T2-PUR-001",
        "SE-T2-PUR-002",
        "SE-T2-REC-001",
        "SE-T2-TEAR-001",
        "TE-EP-PUR-001",
        "TE-EP-PUR-002",
        "TE-EP-CMP-001",
        "TE-EP-GREY-001",
        "TE-EP-BL-001",
    ] {
        assert!(c.get(id).is_some(), "{id} missing");
    }
    // conformance.md §4.1 marks these as resting on L facts.
    for id in [
        "SE-EP-CMP-002",
        "SE-EP-CMP-003",
        "SE-EP-PRV-002",
        "SE-EP-PIN-002",
        "SE-EP-BLK-002",
        "SE-EP-SM4-001",
        "SE-T2-SEL-001",
    ] {
        assert!(c.get(id).unwrap().provisional, "{id} must be provisional");
    }
    assert!(!c.get("SE-EP-PUR-001").unwrap().provisional);
}

#[test]
fn id_pattern_of_conformance_md_section_2() {
    for good in [
        "SE-EP-LOAD-001",
        "QT-STO-001",
        "SE-EP-PUR-001a",
        "TSM-DL-001",
        "TE-T2-001",
    ] {
        assert!(is_valid_id(good), "{good}");
    }
    for bad in [
        "se-EP-LOAD-001",
        "SE-EP-LOAD-01",
        "SE-EP-LOAD-0011",
        "SE-EP-LOAD-001A",
        "SEEP-001",
        "SE-EPURSE-001",
        "SE-E-001",
        "S-EP-001",
        "SE-EP-LO-AD-001",
        "SE-EP-LOAD-001-",
        "",
    ] {
        assert!(!is_valid_id(bad), "{bad}");
    }
}

#[test]
fn unknown_keys_are_rejected() {
    let text = first_item().replace("pass        =", "colour      = \"red\"\npass        =");
    let err = load(&text).unwrap_err();
    assert!(
        matches!(&err, CatalogueError::Syntax { message, .. } if message.contains("colour")),
        "{err}"
    );
    let text = format!("version = 2\n{}", first_item());
    assert!(matches!(load(&text), Err(CatalogueError::Syntax { .. })));
}

#[test]
fn bad_and_duplicate_ids_are_rejected() {
    let text = first_item().replace("SE-EP-SEL-001", "SE-EP-SEL-1");
    assert!(matches!(load(&text), Err(CatalogueError::BadId { .. })));
    let text = first_item().replace("SE-EP-SEL-001", "TE-EP-SEL-001");
    assert!(
        matches!(load(&text), Err(CatalogueError::BadId { .. })),
        "wrong object class"
    );
    let text = format!("{SE_TOML}\n{}", first_item());
    assert_eq!(
        load(&text).unwrap_err(),
        CatalogueError::DuplicateId("SE-EP-SEL-001".into())
    );
}

#[test]
fn an_item_whose_checker_does_not_exist_is_a_load_error() {
    let text = SE_TOML.replace(
        "checker     = \"ep::balance\"",
        "checker     = \"ep::no_such\"",
    );
    assert_eq!(
        load(&text).unwrap_err(),
        CatalogueError::UnknownChecker {
            id: "SE-EP-BAL-001".into(),
            checker: "ep::no_such".into()
        }
    );
    let mut registry = Registry::builtin();
    registry.unregister("t2::select");
    let err = Catalogue::load(
        &[("se.toml", "SE", SE_TOML), ("te.toml", "TE", TE_TOML)],
        &registry,
    )
    .unwrap_err();
    assert!(
        matches!(err, CatalogueError::UnknownChecker { .. }),
        "{err}"
    );
    // A terminal checker named by an SE item.
    let text = SE_TOML.replace(
        "checker     = \"ep::balance\"",
        "checker     = \"te::load_ok\"",
    );
    assert!(matches!(
        load(&text),
        Err(CatalogueError::CheckerKindMismatch { .. })
    ));
}

#[test]
fn a_registered_checker_with_no_item_is_a_load_error() {
    let mut registry = Registry::builtin();
    let check = registry.get("ep::balance").unwrap();
    registry.register("ep::orphan", check);
    use ykt_conformance::catalogue::{CL_TOML, GP_TOML, NFCQR_TOML, QT_TOML, RP_TOML, TSM_TOML};
    let err = Catalogue::load(
        &[
            ("se.toml", "SE", SE_TOML),
            ("gp.toml", "SE", GP_TOML),
            ("nfcqr.toml", "SE", NFCQR_TOML),
            ("te.toml", "TE", TE_TOML),
            ("qt.toml", "QT", QT_TOML),
            ("tsm.toml", "TSM", TSM_TOML),
            ("cl.toml", "CL", CL_TOML),
            ("rp.toml", "RP", RP_TOML),
        ],
        &registry,
    )
    .unwrap_err();
    assert_eq!(err, CatalogueError::UnusedChecker("ep::orphan".into()));
}

#[test]
fn profile_features_and_provisional_marks_are_checked() {
    let text = SE_TOML.replacen(
        "profile     = [\"ep\"]",
        "profile     = [\"ep\", \"warp\"]",
        1,
    );
    assert!(matches!(
        load(&text),
        Err(CatalogueError::UnknownFeature { .. })
    ));
    let text = SE_TOML.replacen("confidence  = \"H\"", "confidence  = \"L\"", 1);
    assert_eq!(
        load(&text).unwrap_err(),
        CatalogueError::NotProvisional("SE-EP-SEL-001".into())
    );
}

/// A `semi` or `manual` item may name no checker (the harness does not run it); an `auto` item
/// without one is a load error.
#[test]
fn only_items_that_are_not_auto_may_go_without_a_checker() {
    use ykt_conformance::catalogue::{CL_TOML, GP_TOML, NFCQR_TOML, QT_TOML, RP_TOML, TSM_TOML};
    let files = |qt: &str| {
        Catalogue::load(
            &[
                ("se.toml", "SE", SE_TOML),
                ("gp.toml", "SE", GP_TOML),
                ("nfcqr.toml", "SE", NFCQR_TOML),
                ("te.toml", "TE", TE_TOML),
                ("qt.toml", "QT", qt),
                ("tsm.toml", "TSM", TSM_TOML),
                ("cl.toml", "CL", CL_TOML),
                ("rp.toml", "RP", RP_TOML),
            ],
            &Registry::builtin(),
        )
    };
    let c = files(QT_TOML).unwrap();
    let manual = c.get("QT-STO-002").unwrap();
    assert!(manual.checker.is_empty() && !manual.evidence.is_empty());
    let text = QT_TOML.replace("method      = \"manual\"", "method      = \"auto\"");
    assert!(matches!(
        files(&text),
        Err(CatalogueError::UnknownChecker { id, .. }) if id == "QT-STO-002"
    ));
    for id in [
        "SE-GP-LIFE-001",
        "SE-GP-LIFE-002",
        "SE-GP-DM-001",
        "SE-GP-KEY-001",
        "SE-NFCQR-001",
        "SE-NFCQR-013",
        "QT-STO-001",
        "QT-SEC-002",
    ] {
        assert!(c.get(id).is_some(), "{id} missing");
    }
}

/// The TSM and client files (conformance.md §4.8, §4.9): every item of the brief, the ones on L
/// facts provisional, those that are not `auto` with evidence, and a checker of the other kind
/// refused.
#[test]
fn the_tsm_and_client_files_hold_the_brief_items() {
    use ykt_conformance::TargetKind;
    use ykt_conformance::catalogue::Method;
    use ykt_conformance::catalogue::{CL_TOML, TSM_TOML};
    let c = Catalogue::builtin().unwrap();
    for id in [
        "TSM-DL-001",
        "TSM-DL-002",
        "TSM-DL-003",
        "TSM-DEL-001",
        "TSM-RET-001",
        "TSM-RET-002",
        "TSM-MIG-001",
        "TSM-MSG-001",
        "TSM-MSG-002",
        "TSM-MSG-003",
        "TSM-MSG-004",
        "TSM-KEY-001",
        "TSM-PERF-001",
    ] {
        assert_eq!(c.get(id).unwrap().target, TargetKind::Tsm, "{id}");
    }
    for id in [
        "RP-LOAD-001",
        "RP-LOAD-002",
        "RP-LOAD-003",
        "RP-LOAD-004",
        "RP-LOAD-005",
    ] {
        let item = c.get(id).unwrap();
        assert_eq!(item.target, TargetKind::Tsm, "{id}");
        assert!(item.provisional && item.method == Method::Auto, "{id}");
    }
    // The query and transport items test the client (the wallet SDK and its link).
    for id in ["RP-QRY-001", "RP-SEC-001"] {
        let item = c.get(id).unwrap();
        assert_eq!(item.target, TargetKind::Client, "{id}");
        assert!(item.provisional && item.method == Method::Auto, "{id}");
    }
    for id in [
        "CL-FN-001",
        "CL-FN-002",
        "CL-SD-001",
        "CL-SD-002",
        "CL-SD-003",
        "CL-AU-001",
        "CL-AU-002",
        "CL-AU-003",
        "CL-IF-001",
        "CL-IF-002",
    ] {
        assert_eq!(c.get(id).unwrap().target, TargetKind::Client, "{id}");
    }
    for id in ["TSM-PERF-001", "CL-SD-002", "CL-IF-001", "CL-IF-002"] {
        let item = c.get(id).unwrap();
        assert!(
            item.method != Method::Auto && !item.evidence.is_empty(),
            "{id}"
        );
    }
    for id in ["TSM-MSG-001", "TSM-KEY-001", "CL-AU-003"] {
        assert!(c.get(id).unwrap().provisional, "{id}");
    }
    let files = |tsm: &str, cl: &str| {
        use ykt_conformance::catalogue::{GP_TOML, NFCQR_TOML, QT_TOML, RP_TOML};
        Catalogue::load(
            &[
                ("se.toml", "SE", SE_TOML),
                ("gp.toml", "SE", GP_TOML),
                ("nfcqr.toml", "SE", NFCQR_TOML),
                ("te.toml", "TE", TE_TOML),
                ("qt.toml", "QT", QT_TOML),
                ("tsm.toml", "TSM", tsm),
                ("cl.toml", "CL", cl),
                ("rp.toml", "RP", RP_TOML),
            ],
            &Registry::builtin(),
        )
    };
    assert!(files(TSM_TOML, CL_TOML).is_ok());
    let text = CL_TOML.replace(
        "checker     = \"cl::open_card\"",
        "checker     = \"tsm::open_card\"",
    );
    assert!(matches!(
        files(TSM_TOML, &text),
        Err(CatalogueError::CheckerKindMismatch { id, .. }) if id == "CL-FN-001"
    ));
    let text = TSM_TOML.replace(
        "id          = \"TSM-DL-001\"",
        "id          = \"CL-DL-001\"",
    );
    assert!(matches!(
        files(&text, CL_TOML),
        Err(CatalogueError::BadId { .. })
    ));
}
