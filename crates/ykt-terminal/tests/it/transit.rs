//! Transit records as data (`tests/data/transit_records.txt`), the fare table format, the pure
//! entry/exit decision with its configurable rules, and entry then exit end to end on the test card.

use ykt_apdu::StatusWord;
use ykt_terminal::card_data::CardIdentity;
use ykt_terminal::purchase::PurchaseFlow;
use ykt_terminal::tap::read_record;
use ykt_terminal::transit::{
    BcdDateTime, Decision, Ef1aRecord, Ef1eRecord, FareBasis, FareParseErrorKind, FareTable,
    GateRole, HistoryType, Penalty, RecordError, RefuseReason, Site, StationRef, TransferDiscount,
    TransferRule, TransitConfig, TripState, decide, industry,
};

use crate::tap::{TERMINAL, card_with, sam, tap, via};

const RECORDS: &str = include_str!("../data/transit_records.txt");
const FARES: &str = include_str!("../data/fares_metro.txt");

fn dt(s: &str) -> BcdDateTime {
    BcdDateTime::new(hex::decode(s).unwrap().try_into().unwrap()).unwrap()
}

/// `base` plus `minutes` (within one day, for the tests).
fn plus(base: &str, minutes: u32) -> BcdDateTime {
    let h: u32 = base[8..10].parse().unwrap();
    let m: u32 = base[10..12].parse().unwrap();
    let total = h * 60 + m + minutes;
    dt(&format!(
        "{}{:02}{:02}{}",
        &base[..8],
        total / 60,
        total % 60,
        &base[12..]
    ))
}

fn fares() -> FareTable {
    FareTable::parse(FARES).unwrap()
}

fn config() -> TransitConfig {
    TransitConfig::proposed(fares())
}

fn site(line: u16, station: u8, role: GateRole) -> Site {
    Site {
        terminal_id: TERMINAL,
        city: [0x10, 0x00],
        institution: [0x51, 0, 0, 0, 0, 0, 0, 0x01],
        operator: [0x00, 0x01],
        station: StationRef::new(line, station),
        vehicle: [0; 8],
        direction: 0x01,
        industry: if role == GateRole::Single {
            industry::BUS
        } else {
            industry::METRO
        },
        role,
    }
}

fn card() -> CardIdentity {
    CardIdentity {
        issuer_id: [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
        application_type: 0x02,
        application_version: 0x01,
        asn: ykt_purse::testing::TEST_ASN.0,
        start_date: [0x20, 0x24, 0x01, 0x01],
        expiry_date: [0x20, 0x34, 0x12, 0x31],
    }
}

// ---- records as data ----

struct Vector {
    record: String,
    name: String,
    bytes: Vec<u8>,
    fields: Vec<(String, String)>,
    error: Option<String>,
}

fn vectors() -> Vec<Vector> {
    let mut out: Vec<Vector> = Vec::new();
    for line in RECORDS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (k, v) = line.split_once(" = ").unwrap();
        match k {
            "record" => out.push(Vector {
                record: v.into(),
                name: String::new(),
                bytes: Vec::new(),
                fields: Vec::new(),
                error: None,
            }),
            "name" => out.last_mut().unwrap().name = v.into(),
            "hex" => out.last_mut().unwrap().bytes = hex::decode(v).unwrap(),
            "error" => out.last_mut().unwrap().error = Some(v.into()),
            f => out
                .last_mut()
                .unwrap()
                .fields
                .push((f.strip_prefix("field.").unwrap().into(), v.into())),
        }
    }
    out
}

fn ef1a_field(r: &Ef1aRecord, name: &str) -> String {
    match name {
        "state" => match r.state {
            TripState::Initial => "initial".into(),
            TripState::Entered => "entered".into(),
            TripState::Exited => "exited".into(),
        },
        "entry.line" => r.entry.line.to_string(),
        "entry.station" => r.entry.station.to_string(),
        "exit.line" => r.exit.line.to_string(),
        "exit.station" => r.exit.station.to_string(),
        "marked_max_fare" => r.marked_max_fare.to_string(),
        "amount" => r.amount.to_string(),
        "mileage" => r.mileage.to_string(),
        other => panic!("unknown EF1A field {other}"),
    }
}

fn ef1e_field(r: &Ef1eRecord, name: &str) -> String {
    match name {
        "type" => r.record_type.code().to_string(),
        "amount" => r.amount.to_string(),
        "balance_after" => r.balance_after.to_string(),
        "max_fare" => r.max_fare.to_string(),
        other => panic!("unknown EF1E field {other}"),
    }
}

fn error_name(e: RecordError) -> String {
    match e {
        RecordError::Length { .. } => "Length".into(),
        RecordError::Tag(_) => "Tag".into(),
        RecordError::BodyLength(_) => "BodyLength".into(),
        RecordError::ValidFlag(_) => "ValidFlag".into(),
        RecordError::TransactionFlag(_) => "TransactionFlag".into(),
        RecordError::TripState(_) => "TripState".into(),
        RecordError::HistoryType(_) => "HistoryType".into(),
        RecordError::DateTime { offset, .. } => format!("DateTime {offset}"),
        other => format!("{other:?}"),
    }
}

#[test]
fn record_vectors_decode_to_their_fields_and_encode_back() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 16);
    for v in vectors {
        let name = &v.name;
        match (v.record.as_str(), &v.error) {
            ("ef1a", None) => {
                let r = Ef1aRecord::decode(&v.bytes).unwrap();
                assert_eq!(r.encode().to_vec(), v.bytes, "{name}");
                for (f, want) in &v.fields {
                    assert_eq!(&ef1a_field(&r, f), want, "{name}: {f}");
                }
            }
            ("ef1e", None) => {
                let r = Ef1eRecord::decode(&v.bytes).unwrap();
                assert_eq!(r.encode().to_vec(), v.bytes, "{name}");
                for (f, want) in &v.fields {
                    assert_eq!(&ef1e_field(&r, f), want, "{name}: {f}");
                }
            }
            ("ef1a", Some(want)) => {
                let e = Ef1aRecord::decode(&v.bytes).unwrap_err();
                assert_eq!(&error_name(e), want, "{name}");
            }
            ("ef1e", Some(want)) => {
                let e = Ef1eRecord::decode(&v.bytes).unwrap_err();
                assert_eq!(&error_name(e), want, "{name}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_personalised_ef1a_slot_is_no_record() {
    let mut blank = [0u8; 128];
    blank[1] = 0x02;
    assert_eq!(Ef1aRecord::decode_slot(&blank), Ok(None));
    blank[3] = 0x01;
    assert_eq!(Ef1aRecord::decode_slot(&blank), Err(RecordError::Tag(0)));
}

/// SplitMix64, so the property runs are the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[test]
fn property_the_record_decoders_never_panic_and_round_trip_what_they_accept() {
    let mut rng = Rng(0x5452_414E_5349_5400);
    let seeds: Vec<Vec<u8>> = vectors()
        .into_iter()
        .filter(|v| v.error.is_none())
        .map(|v| v.bytes)
        .collect();
    for i in 0..20_000 {
        let mut bytes = if i % 2 == 0 {
            // Random lengths around the record sizes, random content.
            let len = (rng.next() % 140) as usize;
            (0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>()
        } else {
            // A good record with a few random bytes changed.
            let mut b = seeds[(rng.next() as usize) % seeds.len()].clone();
            for _ in 0..1 + rng.next() % 3 {
                let at = (rng.next() as usize) % b.len();
                b[at] = rng.next() as u8;
            }
            b
        };
        if let Ok(r) = Ef1aRecord::decode(&bytes) {
            assert_eq!(r.encode().to_vec(), bytes);
        }
        let _ = Ef1aRecord::decode_slot(&bytes);
        if let Ok(r) = Ef1eRecord::decode(&bytes) {
            assert_eq!(r.encode().to_vec(), bytes);
        }
        bytes.truncate(7);
        let _ = BcdDateTime::new(bytes.clone().try_into().unwrap_or([0xFF; 7]));
    }
}

// ---- fare table ----

#[test]
fn the_fare_table_prices_pairs_distances_and_flat_lines() {
    let t = fares();
    let s = StationRef::new;
    let fare = |a, b| t.fare(a, b).unwrap();
    assert_eq!(
        (fare(s(1, 1), s(2, 1)).amount, fare(s(1, 1), s(2, 1)).basis),
        (350, FareBasis::Pair)
    );
    assert_eq!(fare(s(2, 1), s(1, 1)).amount, 350);
    assert_eq!(fare(s(1, 1), s(1, 3)).basis, FareBasis::Distance(4000));
    assert_eq!(fare(s(1, 1), s(1, 3)).amount, 300);
    assert_eq!(fare(s(1, 4), s(1, 1)).amount, 400);
    assert_eq!(fare(s(1, 1), s(1, 5)).amount, 500);
    assert_eq!(fare(s(2, 5), s(1, 3)).basis, FareBasis::Distance(11000));
    assert_eq!(fare(s(1, 1), s(1, 1)).amount, 300);
    assert_eq!(fare(s(901, 3), s(901, 9)).basis, FareBasis::Flat);
    assert_eq!(t.fare(s(1, 1), s(2, 5)), None);
    assert_eq!(t.max_fare(), 900);
    let mut no_max = FareTable::new();
    no_max.band(1000, 250).unwrap();
    no_max.flat(7, 120).unwrap();
    assert_eq!(no_max.max_fare(), 250);
}

#[test]
fn fare_table_parse_errors_name_the_line_and_the_fault() {
    use FareParseErrorKind as K;
    let cases: &[(&str, usize, FareParseErrorKind)] = &[
        ("", 0, K::MissingHeader),
        ("# only a comment\n", 0, K::MissingHeader),
        ("band 100 200\n", 1, K::MissingHeader),
        ("ykt-fares 2\n", 1, K::UnsupportedVersion(2)),
        ("ykt-fares\n", 1, K::MissingField("version")),
        ("ykt-fares 1 x\n", 1, K::ExtraField),
        ("ykt-fares 1\nbogus 1\n", 2, K::UnknownStatement),
        ("ykt-fares 1\n\nband 100\n", 3, K::MissingField("fare")),
        ("ykt-fares 1\nband 100 +2\n", 2, K::BadNumber("fare")),
        ("ykt-fares 1\nband 100 -2\n", 2, K::BadNumber("fare")),
        ("ykt-fares 1\nband 4294967296 2\n", 2, K::BadNumber("limit")),
        ("ykt-fares 1\nstation 65536 1 0\n", 2, K::BadNumber("line")),
        ("ykt-fares 1\nstation 1 256 0\n", 2, K::BadNumber("station")),
        ("ykt-fares 1\nflat 901 200 7\n", 2, K::ExtraField),
        ("ykt-fares 1\nmax 9 9\n", 2, K::ExtraField),
        (
            "ykt-fares 1\nband 500 2\nband 500 3\n",
            3,
            K::Table(ykt_terminal::transit::FareError::BandNotAscending { limit: 500 }),
        ),
        (
            "ykt-fares 1\nfare 1 1 2 1 3\nfare 2 1 1 1 4\n",
            3,
            K::Table(ykt_terminal::transit::FareError::Duplicate),
        ),
    ];
    for (text, line, kind) in cases {
        let e = FareTable::parse(text).unwrap_err();
        assert_eq!((e.line, e.kind), (*line, *kind), "{text:?}");
        assert!(!e.to_string().is_empty());
    }
}

// ---- decisions ----

fn entry_at(
    line: u16,
    station: u8,
    now: BcdDateTime,
    current: Option<&Ef1aRecord>,
    c: &TransitConfig,
) -> Ef1aRecord {
    match decide(
        current,
        &card(),
        10_000,
        &site(line, station, GateRole::Entry),
        now,
        c,
    ) {
        Decision::Entry(charge) => charge.ef1a,
        other => panic!("{other:?}"),
    }
}

fn exit_at(
    line: u16,
    station: u8,
    now: BcdDateTime,
    current: &Ef1aRecord,
    c: &TransitConfig,
) -> Decision {
    decide(
        Some(current),
        &card(),
        10_000,
        &site(line, station, GateRole::Exit),
        now,
        c,
    )
}

#[test]
fn an_entry_marks_the_max_fare_and_an_exit_charges_the_distance_fare() {
    let c = config();
    let t0 = dt("20260115083000");
    let d = decide(None, &card(), 10_000, &site(1, 1, GateRole::Entry), t0, &c);
    let Decision::Entry(entry) = d else {
        panic!("{d:?}")
    };
    assert_eq!(entry.amount, 0);
    assert_eq!(entry.ef1a.state, TripState::Entered);
    assert_eq!(entry.ef1a.marked_max_fare, 900);
    assert_eq!(entry.history.len(), 1);
    assert_eq!(entry.history[0].record_type, HistoryType::EpEntry);
    let records = entry.capp_records();
    assert_eq!(
        (records[0].p1, records[0].p2, records[0].data.len()),
        (0x02, 0xD0, 128)
    );
    assert_eq!(
        (records[1].p1, records[1].p2, records[1].data.len()),
        (0x00, 0xF0, 48)
    );

    let d = exit_at(1, 4, plus("20260115083000", 25), &entry.ef1a, &c);
    let Decision::Exit(exit) = d else {
        panic!("{d:?}")
    };
    assert_eq!(exit.amount, 400);
    assert_eq!(exit.fare.unwrap().basis, FareBasis::Distance(9000));
    assert_eq!(
        (exit.ef1a.state, exit.ef1a.amount, exit.ef1a.mileage),
        (TripState::Exited, 400, 90)
    );
    assert_eq!(exit.ef1a.entry, entry.ef1a.entry);
    assert_eq!(exit.history[0].record_type, HistoryType::EpExit);
    assert_eq!(exit.history[0].balance_after, 9_600);
}

#[test]
fn an_entry_charge_is_taken_off_the_exit_fare() {
    let c = TransitConfig {
        entry_charge: 100,
        ..config()
    };
    let t0 = dt("20260115083000");
    let d = decide(None, &card(), 10_000, &site(1, 1, GateRole::Entry), t0, &c);
    assert_eq!(d.charge().unwrap().amount, 100);
    let ef1a = d.charge().unwrap().ef1a.clone();
    let Decision::Exit(exit) = exit_at(1, 4, plus("20260115083000", 10), &ef1a, &c) else {
        panic!()
    };
    assert_eq!((exit.amount, exit.ef1a.amount), (300, 400));
}

#[test]
fn entered_without_exit_is_charged_the_marked_fare_at_the_next_entry() {
    let c = config();
    let first = entry_at(1, 1, dt("20260115083000"), None, &c);
    // Elsewhere, an hour later.
    let d = decide(
        Some(&first),
        &card(),
        10_000,
        &site(2, 5, GateRole::Entry),
        dt("20260115093000"),
        &c,
    );
    let Decision::Entry(e) = d else {
        panic!("{d:?}")
    };
    assert_eq!((e.amount, e.penalty), (900, 900));
    let types: Vec<_> = e.history.iter().map(|h| h.record_type).collect();
    assert_eq!(types, [HistoryType::EpMakeUp, HistoryType::EpEntry]);
    assert_eq!(e.history[0].balance_after, 9_100);

    let refuse = TransitConfig {
        open_trip_at_entry: Penalty::Refuse,
        ..config()
    };
    let d = decide(
        Some(&first),
        &card(),
        10_000,
        &site(2, 5, GateRole::Entry),
        dt("20260115093000"),
        &refuse,
    );
    assert_eq!(d, Decision::Refuse(RefuseReason::OpenTrip));
}

#[test]
fn a_second_entry_tap_at_the_same_station_is_a_double_tap_until_the_grace_ends() {
    let c = config();
    let first = entry_at(1, 1, dt("20260115083000"), None, &c);
    let again = |minutes| {
        decide(
            Some(&first),
            &card(),
            10_000,
            &site(1, 1, GateRole::Entry),
            plus("20260115083000", minutes),
            &c,
        )
    };
    assert_eq!(again(20), Decision::Refuse(RefuseReason::DoubleTap));
    assert_eq!(again(21).charge().unwrap().penalty, 900);
}

#[test]
fn exit_without_entry_is_refused_or_charged_as_configured() {
    let c = config();
    let d = decide(
        None,
        &card(),
        10_000,
        &site(1, 4, GateRole::Exit),
        dt("20260115083000"),
        &c,
    );
    assert_eq!(d, Decision::Refuse(RefuseReason::ExitWithoutEntry));
    let charge = TransitConfig {
        exit_without_entry: Penalty::ChargeMaxFare,
        ..config()
    };
    let d = decide(
        None,
        &card(),
        10_000,
        &site(1, 4, GateRole::Exit),
        dt("20260115083000"),
        &charge,
    );
    let Decision::Exit(x) = d else {
        panic!("{d:?}")
    };
    assert_eq!(
        (x.amount, x.penalty, x.ef1a.state),
        (900, 900, TripState::Exited)
    );
}

#[test]
fn overtime_and_unpriced_exits_follow_the_penalty_rule() {
    let c = config();
    let entry = entry_at(1, 1, dt("20260115080000"), None, &c);
    // 240 minutes is still a trip; 241 is overtime.
    assert_eq!(
        exit_at(1, 4, plus("20260115080000", 240), &entry, &c)
            .charge()
            .unwrap()
            .amount,
        400
    );
    let over = exit_at(1, 4, plus("20260115080000", 241), &entry, &c);
    assert_eq!(
        (
            over.charge().unwrap().amount,
            over.charge().unwrap().penalty
        ),
        (900, 900)
    );
    let refuse = TransitConfig {
        unpriced_exit: Penalty::Refuse,
        ..config()
    };
    assert_eq!(
        exit_at(1, 4, plus("20260115080000", 241), &entry, &refuse),
        Decision::Refuse(RefuseReason::Overtime)
    );
    // Entered in another network: the exit cannot be priced here.
    let mut elsewhere = entry.clone();
    elsewhere.entry.institution = [0x52; 8];
    assert_eq!(
        exit_at(1, 4, plus("20260115080000", 30), &elsewhere, &c)
            .charge()
            .unwrap()
            .penalty,
        900
    );
    assert_eq!(
        exit_at(1, 4, plus("20260115080000", 30), &elsewhere, &refuse),
        Decision::Refuse(RefuseReason::Unpriced)
    );
    // A trip recorded as starting after now.
    assert_eq!(
        exit_at(1, 4, dt("20260115075900"), &entry, &c),
        Decision::Refuse(RefuseReason::EntryAfterNow)
    );
}

/// A closed trip on line 2 ending at 09:00, then an entry on `line` `minutes` later and an exit
/// at 1/3 (1/1 → 1/3 = 4 km = 300; with the transfer, 200).
fn fare_after_transfer(line: u16, station: u8, minutes: u32, c: &TransitConfig) -> u32 {
    let first = entry_at(2, 1, dt("20260115083000"), None, c);
    let Decision::Exit(closed) = exit_at(2, 5, dt("20260115090000"), &first, c) else {
        panic!()
    };
    let second = entry_at(
        line,
        station,
        plus("20260115090000", minutes),
        Some(&closed.ef1a),
        c,
    );
    assert_eq!(
        second.exit, closed.ef1a.exit,
        "the entry keeps the previous exit"
    );
    let exit = exit_at(1, 3, plus("20260115090000", minutes + 10), &second, c);
    exit.charge().unwrap().amount
}

#[test]
fn the_transfer_window_boundary_is_inclusive_to_the_minute() {
    let c = config();
    assert_eq!(fare_after_transfer(1, 1, 29, &c), 200);
    assert_eq!(fare_after_transfer(1, 1, 30, &c), 200);
    assert_eq!(fare_after_transfer(1, 1, 31, &c), 300);
    let free = TransitConfig {
        transfer: Some(TransferRule {
            window_minutes: 30,
            discount: TransferDiscount::Free,
        }),
        ..config()
    };
    assert_eq!(fare_after_transfer(1, 1, 30, &free), 0);
    let none = TransitConfig {
        transfer: None,
        ..config()
    };
    assert_eq!(fare_after_transfer(1, 1, 5, &none), 300);
}

#[test]
fn a_transfer_needs_another_line() {
    let c = config();
    let first = entry_at(1, 5, dt("20260115083000"), None, &c);
    let Decision::Exit(closed) = exit_at(1, 4, dt("20260115090000"), &first, &c) else {
        panic!()
    };
    let second = entry_at(1, 1, plus("20260115090000", 5), Some(&closed.ef1a), &c);
    assert_eq!(
        exit_at(1, 3, plus("20260115090000", 15), &second, &c)
            .charge()
            .unwrap()
            .amount,
        300
    );
}

#[test]
fn a_bus_tap_charges_the_flat_fare_with_the_transfer_window() {
    let c = config();
    let first = entry_at(1, 1, dt("20260115083000"), None, &c);
    let Decision::Exit(closed) = exit_at(1, 4, dt("20260115090000"), &first, &c) else {
        panic!()
    };
    let bus = |minutes| {
        decide(
            Some(&closed.ef1a),
            &card(),
            10_000,
            &site(901, 17, GateRole::Single),
            plus("20260115090000", minutes),
            &c,
        )
    };
    for (minutes, amount) in [(29, 100), (30, 100), (31, 200)] {
        let Decision::Single(s) = bus(minutes) else {
            panic!()
        };
        assert_eq!(s.amount, amount, "{minutes} minutes");
        assert_eq!(
            (s.ef1a.state, s.history[0].record_type),
            (TripState::Exited, HistoryType::EpSingle)
        );
        assert_eq!(s.history[0].industry, industry::BUS);
    }
    let d = decide(
        None,
        &card(),
        10_000,
        &site(77, 1, GateRole::Single),
        dt("20260115090000"),
        &c,
    );
    assert_eq!(d, Decision::Refuse(RefuseReason::NoFare));
}

#[test]
fn validity_dates_balance_and_locks_are_checked() {
    let c = config();
    let entry = site(1, 1, GateRole::Entry);
    let at = |s: &str, balance| decide(None, &card(), balance, &entry, dt(s), &c);
    assert_eq!(
        at("20231231235959", 10_000),
        Decision::Refuse(RefuseReason::NotYetValid)
    );
    assert_eq!(
        at("20350101000000", 10_000),
        Decision::Refuse(RefuseReason::Expired)
    );
    assert!(matches!(at("20341231235959", 10_000), Decision::Entry(_)));
    assert_eq!(
        at("20260115083000", 899),
        Decision::Refuse(RefuseReason::InsufficientBalance {
            balance: 899,
            needed: 900
        })
    );
    let low = TransitConfig {
        min_entry_balance: Some(0),
        ..config()
    };
    assert!(matches!(
        decide(None, &card(), 0, &entry, dt("20260115083000"), &low),
        Decision::Entry(_)
    ));
    let mut locked = entry_at(1, 1, dt("20260115083000"), None, &c);
    locked.app_lock = 0x01;
    assert_eq!(
        decide(
            Some(&locked),
            &card(),
            10_000,
            &entry,
            dt("20260115100000"),
            &c
        ),
        Decision::Refuse(RefuseReason::RecordLocked(1))
    );
}

// ---- end to end on the test card ----

fn run(
    card: &mut ykt_card::Card,
    d: &Decision,
    now: BcdDateTime,
) -> ykt_terminal::purchase::PurchaseRecord {
    let params = d.charge().unwrap().purchase_params(1, now);
    let mut sam = sam();
    let (flow, first) = PurchaseFlow::start(params, &mut sam);
    ykt_terminal::drive(flow, first, via(card)).unwrap()
}

fn ef1e(card: &mut ykt_card::Card, number: u8) -> Ef1eRecord {
    let r = via(card)(&read_record(0x1E, number, 48)).unwrap();
    assert_eq!(r.sw, StatusWord::SUCCESS);
    Ef1eRecord::decode(&r.data).unwrap()
}

#[test]
fn entry_then_exit_on_the_test_card_deducts_the_fare_and_closes_ef1a() {
    let c = config();
    let mut card = card_with(10_000);
    let t0 = dt("20260115083000");
    let s = tap(&mut card).unwrap();
    let d = s.decide(&site(1, 1, GateRole::Entry), t0, &c);
    let p = run(&mut card, &d, t0);
    assert_eq!((p.transaction_type, p.amount), (0x09, 0));

    let s = tap(&mut card).unwrap();
    assert_eq!(s.balance, 10_000);
    let open = s.ef1a.clone().unwrap().unwrap();
    assert_eq!(&open, &d.charge().unwrap().ef1a);
    assert_eq!(open.state, TripState::Entered);

    let t1 = plus("20260115083000", 25);
    let d = s.decide(&site(1, 4, GateRole::Exit), t1, &c);
    let p = run(&mut card, &d, t1);
    assert_eq!(
        (p.transaction_type, p.amount, p.balance_after()),
        (0x09, 400, 9_600)
    );

    let s = tap(&mut card).unwrap();
    assert_eq!(s.balance, 9_600);
    let closed = s.ef1a.unwrap().unwrap();
    assert_eq!(
        (closed.state, closed.amount, closed.exit.station),
        (TripState::Exited, 400, 4)
    );
    assert_eq!(closed.exit.datetime, Some(t1));
    assert_eq!(ef1e(&mut card, 1).record_type, HistoryType::EpExit);
    assert_eq!(ef1e(&mut card, 1).balance_after, 9_600);
    assert_eq!(ef1e(&mut card, 2).record_type, HistoryType::EpEntry);
}

#[test]
fn entered_without_exit_on_the_test_card_pays_the_make_up_fare() {
    let c = config();
    let mut card = card_with(10_000);
    let t0 = dt("20260115083000");
    let d = tap(&mut card)
        .unwrap()
        .decide(&site(1, 1, GateRole::Entry), t0, &c);
    run(&mut card, &d, t0);
    let t1 = dt("20260115120000");
    let d = tap(&mut card)
        .unwrap()
        .decide(&site(2, 5, GateRole::Entry), t1, &c);
    let p = run(&mut card, &d, t1);
    assert_eq!(p.amount, 900);
    let s = tap(&mut card).unwrap();
    assert_eq!(s.balance, 9_100);
    assert_eq!(s.ef1a.unwrap().unwrap().entry.line, 2);
    assert_eq!(ef1e(&mut card, 1).record_type, HistoryType::EpEntry);
    assert_eq!(ef1e(&mut card, 2).record_type, HistoryType::EpMakeUp);
    assert_eq!(ef1e(&mut card, 2).amount, 900);
}

fn random_time(rng: &mut Rng) -> BcdDateTime {
    let bcd = |n: u64| (((n / 10) << 4) | (n % 10)) as u8;
    let r = |rng: &mut Rng, n: u64| rng.next() % n;
    let bytes = [
        0x20,
        bcd(24 + r(rng, 12)),
        bcd(1 + r(rng, 12)),
        bcd(1 + r(rng, 28)),
        bcd(r(rng, 24)),
        bcd(r(rng, 60)),
        bcd(r(rng, 60)),
    ];
    BcdDateTime::new(bytes).unwrap()
}

#[test]
fn property_decide_never_panics_and_its_charges_are_consistent() {
    let mut rng = Rng(0x4445_4349_4445_0001);
    let seeds: Vec<Ef1aRecord> = vectors()
        .into_iter()
        .filter(|v| v.record == "ef1a" && v.error.is_none())
        .map(|v| Ef1aRecord::decode(&v.bytes).unwrap())
        .collect();
    let penalties = [Penalty::ChargeMaxFare, Penalty::Refuse];
    for _ in 0..5_000 {
        let mut record = seeds[(rng.next() as usize) % seeds.len()].clone();
        record.state =
            [TripState::Initial, TripState::Entered, TripState::Exited][(rng.next() % 3) as usize];
        record.entry.datetime =
            Some(random_time(&mut rng)).filter(|_| !rng.next().is_multiple_of(8));
        record.exit.datetime =
            Some(random_time(&mut rng)).filter(|_| !rng.next().is_multiple_of(8));
        record.entry.line = [1, 2, 901, 7][(rng.next() % 4) as usize];
        record.entry.station = (rng.next() % 7) as u8;
        record.marked_max_fare = [0, 900, u32::MAX][(rng.next() % 3) as usize];
        record.app_lock = u8::from(rng.next().is_multiple_of(16));
        let c = TransitConfig {
            entry_charge: [0, 100, u32::MAX][(rng.next() % 3) as usize],
            min_entry_balance: [None, Some(0), Some(u32::MAX)][(rng.next() % 3) as usize],
            open_trip_at_entry: penalties[(rng.next() % 2) as usize],
            exit_without_entry: penalties[(rng.next() % 2) as usize],
            unpriced_exit: penalties[(rng.next() % 2) as usize],
            double_tap_minutes: (rng.next() % 60) as u32,
            max_trip_minutes: [None, Some(0), Some(240)][(rng.next() % 3) as usize],
            transfer: [
                None,
                Some(TransferRule {
                    window_minutes: 30,
                    discount: TransferDiscount::Free,
                }),
                Some(TransferRule {
                    window_minutes: u32::MAX,
                    discount: TransferDiscount::Amount(u32::MAX),
                }),
            ][(rng.next() % 3) as usize],
            ..config()
        };
        let role = [GateRole::Entry, GateRole::Exit, GateRole::Single][(rng.next() % 3) as usize];
        let line = [1, 2, 901, 7][(rng.next() % 4) as usize];
        let site = site(line, (rng.next() % 7) as u8, role);
        let balance = [0, 500, 10_000, u32::MAX][(rng.next() % 4) as usize];
        let current = Some(&record).filter(|_| !rng.next().is_multiple_of(5));
        let d = decide(current, &card(), balance, &site, random_time(&mut rng), &c);
        if let Some(charge) = d.charge() {
            assert!(charge.amount <= balance, "{d:?}");
            assert_eq!(
                Ef1aRecord::decode(&charge.ef1a.encode()).unwrap(),
                charge.ef1a
            );
            for h in &charge.history {
                assert_eq!(&Ef1eRecord::decode(&h.encode()).unwrap(), h);
            }
            let records = charge.capp_records();
            assert!(records.len() <= ykt_purse::status::CAPP_CACHE_LIMIT);
            assert_eq!(records[0].data.len(), 128);
        }
    }
}

#[test]
fn a_flat_fare_can_also_be_a_plain_type_06_purchase_that_leaves_ef1a_alone() {
    let c = config();
    let mut card = card_with(1_000);
    let now = dt("20260115093000");
    let s = tap(&mut card).unwrap();
    let d = s.decide(&site(901, 17, GateRole::Single), now, &c);
    let params = d.charge().unwrap().plain_purchase_params(1, now);
    let mut sam = sam();
    let (flow, first) = PurchaseFlow::start(params, &mut sam);
    let p = ykt_terminal::drive(flow, first, via(&mut card)).unwrap();
    assert_eq!((p.transaction_type, p.amount), (0x06, 200));
    let s = tap(&mut card).unwrap();
    assert_eq!((s.balance, s.ef1a), (800, Ok(None)));
}

#[test]
fn transit_rules_parse_from_the_fare_file() {
    let c = TransitConfig::parse(include_str!("../data/transit_rules.txt")).unwrap();
    assert_eq!(c.entry_charge, 100);
    assert_eq!(c.min_entry_balance, Some(500));
    assert_eq!(c.open_trip_at_entry, Penalty::Refuse);
    assert_eq!(c.double_tap_minutes, 5);
    assert_eq!(c.exit_without_entry, Penalty::ChargeMaxFare);
    assert_eq!(c.unpriced_exit, Penalty::Refuse);
    assert_eq!(c.max_trip_minutes, None);
    assert_eq!(
        c.transfer,
        Some(TransferRule {
            window_minutes: 45,
            discount: TransferDiscount::Free
        })
    );
    assert_eq!(
        (c.fares.max_fare(), c.fares.flat_fare(901)),
        (900, Some(200))
    );
    // Without rule statements: the proposals.
    assert_eq!(TransitConfig::parse(FARES).unwrap(), config());
    // The fare table alone refuses rules.
    let e = FareTable::parse(include_str!("../data/transit_rules.txt")).unwrap_err();
    assert_eq!((e.line, e.kind), (6, FareParseErrorKind::UnknownStatement));
    let c = TransitConfig::parse(
        "ykt-fares 1\ntransfer none\nmin-entry-balance max\nmax-trip-minutes 9\n",
    )
    .unwrap();
    assert_eq!(
        (c.transfer, c.min_entry_balance, c.max_trip_minutes),
        (None, None, Some(9))
    );
}

#[test]
fn transit_rule_errors_name_the_line_and_the_fault() {
    use FareParseErrorKind as K;
    let cases: &[(&str, usize, FareParseErrorKind)] = &[
        (
            "ykt-fares 1\nopen-trip-at-entry maybe\n",
            2,
            K::BadWord("penalty"),
        ),
        (
            "ykt-fares 1\nunpriced-exit\n",
            2,
            K::MissingField("penalty"),
        ),
        ("ykt-fares 1\nentry-charge x\n", 2, K::BadNumber("fare")),
        (
            "ykt-fares 1\nmin-entry-balance +5\n",
            2,
            K::BadNumber("balance"),
        ),
        (
            "ykt-fares 1\nmax-trip-minutes soon\n",
            2,
            K::BadNumber("minutes"),
        ),
        ("ykt-fares 1\ntransfer 30\n", 2, K::MissingField("discount")),
        (
            "ykt-fares 1\ntransfer 30 half\n",
            2,
            K::BadNumber("discount"),
        ),
        ("ykt-fares 1\ntransfer none 5\n", 2, K::ExtraField),
        (
            "ykt-fares 1\nentry-charge 1\n\nentry-charge 2\n",
            4,
            K::Table(ykt_terminal::transit::FareError::Duplicate),
        ),
        ("ykt-fares 1\nentry-fee 1\n", 2, K::UnknownStatement),
    ];
    for (text, line, kind) in cases {
        let e = TransitConfig::parse(text).unwrap_err();
        assert_eq!((e.line, e.kind), (*line, *kind), "{text:?}");
    }
}
