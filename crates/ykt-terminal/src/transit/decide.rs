//! The tap decision (see the parent module): pure, with the time as an argument.

use alloc::vec::Vec;

use super::BcdDateTime;
use super::{
    Charge, Decision, EF1A_RECORD_ID, Ef1aRecord, Ef1eRecord, Fare, FareBasis, GateRole,
    HistoryType, MILEAGE_UNIT_METRES, Penalty, RefuseReason, Site, StationRef, TransactionFlag,
    TransferDiscount, TransitConfig, TripEnd, TripState, line_bcd, terminal8,
};
use crate::card_data::CardIdentity;

/// The EF1A transaction serial (bytes 6–13) of a trip opened at `now`.
///
/// P (e-purse.md §2 names the field only): `00` followed by the entry date-time, unique per card
/// and trip without a counter the terminal would have to keep.
pub fn trip_serial(now: BcdDateTime) -> [u8; 8] {
    let mut s = [0u8; 8];
    s[1..].copy_from_slice(&now.bytes());
    s
}

/// Decides a tap at `site` at `now`, given the card's EF1A record (`None` if never written), its
/// identity and balance.
///
/// An entry keeps the exit block, the mileage and the city-defined bytes of the previous record
/// (P), so the exit gate can apply the transfer rule to the previous trip's exit.
pub fn decide(
    current: Option<&Ef1aRecord>,
    card: &CardIdentity,
    balance: u32,
    site: &Site,
    now: BcdDateTime,
    config: &TransitConfig,
) -> Decision {
    match decide_inner(current, card, balance, site, now, config) {
        Ok(d) => d,
        Err(reason) => Decision::Refuse(reason),
    }
}

fn decide_inner(
    current: Option<&Ef1aRecord>,
    card: &CardIdentity,
    balance: u32,
    site: &Site,
    now: BcdDateTime,
    config: &TransitConfig,
) -> Result<Decision, RefuseReason> {
    // BCD dates compare as their digits do.
    if now.date() < card.start_date {
        return Err(RefuseReason::NotYetValid);
    }
    if now.date() > card.expiry_date {
        return Err(RefuseReason::Expired);
    }
    let current = current.filter(|r| r.valid);
    if let Some(r) = current
        && r.app_lock != 0
    {
        return Err(RefuseReason::RecordLocked(r.app_lock));
    }
    let open = current.filter(|r| r.state == TripState::Entered);
    let here = TripEnd {
        city: site.city,
        institution: site.institution,
        operator: site.operator,
        line: site.station.line,
        station: site.station.station,
        vehicle: site.vehicle,
        terminal: terminal8(&site.terminal_id),
        datetime: Some(now),
    };
    let max_fare = config.fares.max_fare();
    match site.role {
        GateRole::Entry => {
            let penalty = open_trip_penalty(open, site, now, config)?;
            let amount = config.entry_charge.saturating_add(penalty);
            let needed = amount.max(config.min_entry_balance.unwrap_or(max_fare));
            ensure_balance(balance, needed)?;
            let previous = current
                .cloned()
                .unwrap_or_else(|| blank_record(TripState::Initial));
            let ef1a = Ef1aRecord {
                record_id: EF1A_RECORD_ID,
                valid: true,
                transaction_flag: TransactionFlag::Segmented,
                state: TripState::Entered,
                serial: trip_serial(now),
                entry: here,
                marked_max_fare: max_fare,
                direction: site.direction,
                amount,
                ..previous
            };
            let history = tap_history(
                HistoryType::EpEntry,
                config.entry_charge,
                penalty,
                balance,
                site,
                now,
                max_fare,
            );
            Ok(Decision::Entry(Charge {
                amount,
                fare: None,
                transfer_discount: 0,
                penalty,
                ef1a,
                history,
            }))
        }
        GateRole::Exit => {
            let Some(trip) = open else {
                return match config.exit_without_entry {
                    Penalty::Refuse => Err(RefuseReason::ExitWithoutEntry),
                    Penalty::ChargeMaxFare => {
                        let mut ef1a = current
                            .cloned()
                            .unwrap_or_else(|| blank_record(TripState::Initial));
                        ef1a.serial = trip_serial(now);
                        ef1a.entry = TripEnd::default();
                        ef1a.marked_max_fare = max_fare;
                        exit_charge(ef1a, here, balance, site, now, None, 0, max_fare, None)
                    }
                };
            };
            let marked = marked_fare(trip, max_fare);
            let Some(entered) = trip.entry.datetime else {
                return penalised_exit(
                    trip,
                    here,
                    balance,
                    site,
                    now,
                    config,
                    RefuseReason::Unpriced,
                );
            };
            let elapsed = now.seconds_since(&entered);
            if elapsed < 0 {
                return Err(RefuseReason::EntryAfterNow);
            }
            if let Some(limit) = config.max_trip_minutes
                && elapsed > i64::from(limit) * 60
            {
                return penalised_exit(
                    trip,
                    here,
                    balance,
                    site,
                    now,
                    config,
                    RefuseReason::Overtime,
                );
            }
            let same_network =
                trip.entry.city == site.city && trip.entry.institution == site.institution;
            let from = StationRef::new(trip.entry.line, trip.entry.station);
            let fare = same_network
                .then(|| config.fares.fare(from, site.station))
                .flatten();
            let Some(fare) = fare else {
                return penalised_exit(
                    trip,
                    here,
                    balance,
                    site,
                    now,
                    config,
                    RefuseReason::Unpriced,
                );
            };
            let discount = transfer_discount(trip, &trip.entry, entered, fare.amount, config);
            let trip_fare = fare.amount - discount;
            let amount = trip_fare.saturating_sub(config.entry_charge);
            let mut ef1a = trip.clone();
            ef1a.mileage = mileage(config.fares.distance_between(from, site.station));
            exit_charge(
                ef1a,
                here,
                balance,
                site,
                now,
                Some(fare),
                discount,
                marked,
                Some(amount),
            )
            .map(|d| with_trip_amount(d, trip_fare))
        }
        GateRole::Single => {
            let penalty = open_trip_penalty(open, site, now, config)?;
            let fare = config
                .fares
                .flat_fare(site.station.line)
                .map(|amount| Fare {
                    amount,
                    basis: FareBasis::Flat,
                })
                .ok_or(RefuseReason::NoFare)?;
            let discount = match current.filter(|r| r.state == TripState::Exited) {
                Some(r) => transfer_discount(r, &here, now, fare.amount, config),
                None => 0,
            };
            let ride = fare.amount - discount;
            let amount = ride.saturating_add(penalty);
            ensure_balance(balance, amount)?;
            let ef1a = Ef1aRecord {
                record_id: EF1A_RECORD_ID,
                valid: true,
                transaction_flag: TransactionFlag::Segmented,
                state: TripState::Exited,
                serial: trip_serial(now),
                entry: here,
                marked_max_fare: max_fare,
                direction: site.direction,
                exit: here,
                amount: ride,
                mileage: 0,
                ..current
                    .cloned()
                    .unwrap_or_else(|| blank_record(TripState::Initial))
            };
            let history = tap_history(
                HistoryType::EpSingle,
                ride,
                penalty,
                balance,
                site,
                now,
                max_fare,
            );
            Ok(Decision::Single(Charge {
                amount,
                fare: Some(fare),
                transfer_discount: discount,
                penalty,
                ef1a,
                history,
            }))
        }
    }
}

/// The make-up fare due at an entry for an open trip, or a refusal.
fn open_trip_penalty(
    open: Option<&Ef1aRecord>,
    site: &Site,
    now: BcdDateTime,
    config: &TransitConfig,
) -> Result<u32, RefuseReason> {
    let Some(trip) = open else {
        return Ok(0);
    };
    let same_station = trip.entry.line == site.station.line
        && trip.entry.station == site.station.station
        && trip.entry.institution == site.institution;
    if let Some(entered) = trip.entry.datetime {
        let elapsed = now.seconds_since(&entered);
        if same_station && (0..=i64::from(config.double_tap_minutes) * 60).contains(&elapsed) {
            return Err(RefuseReason::DoubleTap);
        }
    }
    match config.open_trip_at_entry {
        Penalty::Refuse => Err(RefuseReason::OpenTrip),
        Penalty::ChargeMaxFare => Ok(marked_fare(trip, config.fares.max_fare())),
    }
}

fn marked_fare(trip: &Ef1aRecord, max_fare: u32) -> u32 {
    if trip.marked_max_fare > 0 {
        trip.marked_max_fare
    } else {
        max_fare
    }
}

/// The discount for a trip started at `start` (at `start_end`) after the exit recorded in `previous`.
fn transfer_discount(
    previous: &Ef1aRecord,
    start_end: &TripEnd,
    start: BcdDateTime,
    fare: u32,
    config: &TransitConfig,
) -> u32 {
    let (Some(rule), Some(left)) = (config.transfer, previous.exit.datetime) else {
        return 0;
    };
    if previous.exit.line == start_end.line {
        return 0;
    }
    let gap = start.seconds_since(&left);
    if !(0..=i64::from(rule.window_minutes) * 60).contains(&gap) {
        return 0;
    }
    match rule.discount {
        TransferDiscount::Free => fare,
        TransferDiscount::Amount(d) => d.min(fare),
    }
}

fn penalised_exit(
    trip: &Ef1aRecord,
    here: TripEnd,
    balance: u32,
    site: &Site,
    now: BcdDateTime,
    config: &TransitConfig,
    reason: RefuseReason,
) -> Result<Decision, RefuseReason> {
    match config.unpriced_exit {
        Penalty::Refuse => Err(reason),
        Penalty::ChargeMaxFare => {
            let marked = marked_fare(trip, config.fares.max_fare());
            let mut ef1a = trip.clone();
            ef1a.mileage = 0;
            exit_charge(ef1a, here, balance, site, now, None, 0, marked, None)
        }
    }
}

/// Closes `ef1a` at `here`. `amount` is the amount to deduct; `None` charges `marked` as a penalty.
#[allow(clippy::too_many_arguments)] // One private helper shared by the exit paths.
fn exit_charge(
    mut ef1a: Ef1aRecord,
    here: TripEnd,
    balance: u32,
    site: &Site,
    now: BcdDateTime,
    fare: Option<Fare>,
    discount: u32,
    marked: u32,
    amount: Option<u32>,
) -> Result<Decision, RefuseReason> {
    let (amount, penalty) = match amount {
        Some(a) => (a, 0),
        None => (marked, marked),
    };
    ensure_balance(balance, amount)?;
    ef1a.state = TripState::Exited;
    ef1a.exit = here;
    ef1a.amount = amount;
    let history = alloc::vec![history_record(
        HistoryType::EpExit,
        site,
        now,
        amount,
        balance - amount,
        ef1a.marked_max_fare,
    )];
    Ok(Decision::Exit(Charge {
        amount,
        fare,
        transfer_discount: discount,
        penalty,
        ef1a,
        history,
    }))
}

/// EF1A bytes 96–99 of a closed trip hold the trip's whole fare, also the part paid at entry.
fn with_trip_amount(d: Decision, trip_fare: u32) -> Decision {
    match d {
        Decision::Exit(mut c) => {
            c.ef1a.amount = trip_fare;
            Decision::Exit(c)
        }
        other => other,
    }
}

fn ensure_balance(balance: u32, needed: u32) -> Result<(), RefuseReason> {
    if balance < needed {
        Err(RefuseReason::InsufficientBalance { balance, needed })
    } else {
        Ok(())
    }
}

fn mileage(distance: Option<u32>) -> u16 {
    let units = distance.unwrap_or(0) / MILEAGE_UNIT_METRES;
    u16::try_from(units).unwrap_or(u16::MAX)
}

fn blank_record(state: TripState) -> Ef1aRecord {
    Ef1aRecord {
        record_id: EF1A_RECORD_ID,
        valid: true,
        transaction_flag: TransactionFlag::Segmented,
        app_lock: 0,
        serial: [0; 8],
        state,
        entry: TripEnd::default(),
        marked_max_fare: 0,
        direction: 0,
        exit: TripEnd::default(),
        amount: 0,
        mileage: 0,
        city_defined: [0; 26],
    }
}

/// The EF1E records of a tap that opens a trip or pays a single ride: the make-up record for a
/// `penalty` (if any), then the tap's own record of `charge`, each with the balance after it.
#[allow(clippy::too_many_arguments)]
fn tap_history(
    kind: HistoryType,
    charge: u32,
    penalty: u32,
    balance: u32,
    site: &Site,
    now: BcdDateTime,
    max_fare: u32,
) -> Vec<Ef1eRecord> {
    let mut history = Vec::with_capacity(2);
    let mut after = balance;
    if penalty > 0 {
        after = after.saturating_sub(penalty);
        history.push(history_record(
            HistoryType::EpMakeUp,
            site,
            now,
            penalty,
            after,
            max_fare,
        ));
    }
    after = after.saturating_sub(charge);
    history.push(history_record(kind, site, now, charge, after, max_fare));
    history
}

fn history_record(
    record_type: HistoryType,
    site: &Site,
    now: BcdDateTime,
    amount: u32,
    balance_after: u32,
    max_fare: u32,
) -> Ef1eRecord {
    Ef1eRecord {
        record_type,
        terminal: terminal8(&site.terminal_id),
        industry: site.industry,
        line: line_bcd(site.station.line),
        rfu_14: [0; 3],
        amount,
        balance_after,
        datetime: Some(now),
        acquirer_city: site.city,
        institution: site.institution,
        max_fare,
        rfu_46: [0; 2],
    }
}
