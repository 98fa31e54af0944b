//! Injected faults: what fails, how often, and the guarantee that transient faults
//! really are transient.
//!
//! Each request for a known line is that line's attempt number *n* (0, 1, 2, …). The
//! fault of attempt *n* is drawn from a hash of `(seed, line, n)`, so a run against a
//! fresh simulator with the same seed sees the same faults in the same places, however
//! the client interleaves its requests. A line never gets more than
//! [`MAX_FAULT_STREAK`] transient faults in a row, so a client that retries at least
//! that many times always reads every line that exists. `404` faults are different:
//! they are chosen once per line at startup and are permanent.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;

/// The most transient faults one line gets in a row; the attempt after is clean.
pub const MAX_FAULT_STREAK: u64 = 2;

/// Probabilities (each `0..=1`) of the faults the simulator injects into
/// `GET …/virtualLines/{id}/pushToTalk` answers.
///
/// Parsed from `5xx=0.02,timeout=0.01,reset=0.005,malformed=0.005,404=0.01` (and the
/// hostile kinds `oversized`, `echo`, `wrongtype`); missing entries are 0, `none` or an
/// empty string means no faults.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Per attempt: answer 500, 502, 503 or 504 (Webex-shaped body). Transient.
    pub http_5xx: f64,
    /// Per attempt: stall for `SimConfig::slow_delay` before answering. Transient.
    pub timeout: f64,
    /// Per attempt: close the connection without any response. Transient.
    pub reset: f64,
    /// Per attempt: answer 200 with a truncated, invalid JSON body. Transient.
    pub malformed: f64,
    /// Per line, chosen at startup: the line always answers 404. Permanent.
    pub not_found: f64,
    /// Per attempt: answer 200 with a JSON body larger than the client's default
    /// `--max-body` ([`OVERSIZED_BODY`] bytes). Transient.
    pub oversized: f64,
    /// Per attempt: answer 502 with a message that echoes the request's
    /// `Authorization` header, token included, as a careless proxy does. Transient.
    pub echo: f64,
    /// Per attempt: answer 200 with `allowAutoAnswer` as a string (`"true"`), a
    /// documented field of the wrong type. Transient.
    pub wrong_type: f64,
}

/// Size of an `oversized` answer's body: just over the client's default `--max-body`
/// of 8 MiB, so that a client without a cap would accept it as settings.
pub const OVERSIZED_BODY: usize = 9 * 1024 * 1024;

/// Why a fault specification was refused. Every variant names the offending entry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultsParseError {
    /// An entry without `=`.
    #[error("fault entry `{entry}` is not KIND=PROBABILITY (e.g. 5xx=0.02)")]
    Syntax {
        /// The entry as written.
        entry: String,
    },
    /// A kind that is not one of `5xx`, `timeout`, `reset`, `malformed`, `oversized`,
    /// `echo`, `wrongtype`, `404`.
    #[error(
        "unknown fault kind `{kind}` in `{entry}`: expected 5xx, timeout, reset, malformed, \
         oversized, echo, wrongtype or 404"
    )]
    UnknownKind {
        /// The entry as written.
        entry: String,
        /// The kind as written.
        kind: String,
    },
    /// A value that is not a number from 0 to 1.
    #[error("fault entry `{entry}`: the probability must be a number from 0 to 1")]
    BadValue {
        /// The entry as written.
        entry: String,
    },
    /// The same kind given twice.
    #[error("fault entry `{entry}`: this kind was already given")]
    Duplicate {
        /// The entry as written.
        entry: String,
    },
    /// The transient faults cannot all happen: together they exceed 1.
    #[error(
        "the probabilities of the transient faults (all but 404) add up to {sum}, more than 1"
    )]
    TooLikely {
        /// Their sum.
        sum: f64,
    },
}

impl Faults {
    /// No faults at all.
    pub const NONE: Faults = Faults {
        http_5xx: 0.0,
        timeout: 0.0,
        reset: 0.0,
        malformed: 0.0,
        not_found: 0.0,
        oversized: 0.0,
        echo: 0.0,
        wrong_type: 0.0,
    };

    /// Checks that every probability is in `0..=1` and that the transient ones sum to
    /// at most 1. [`Faults::from_str`] already does this; a struct built by hand is
    /// checked when the simulator starts.
    pub fn validate(&self) -> Result<(), FaultsParseError> {
        for (kind, value) in self.entries() {
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultsParseError::BadValue {
                    entry: format!("{kind}={value}"),
                });
            }
        }
        let sum = self.transient_total();
        // A little slack so that 0.1+0.2+0.7 is not refused for rounding.
        if sum > 1.0 + 1e-9 {
            return Err(FaultsParseError::TooLikely { sum });
        }
        Ok(())
    }

    /// The probability that one attempt hits some transient fault.
    pub fn transient_total(&self) -> f64 {
        self.http_5xx
            + self.timeout
            + self.reset
            + self.malformed
            + self.oversized
            + self.echo
            + self.wrong_type
    }

    fn entries(&self) -> [(&'static str, f64); 8] {
        [
            ("5xx", self.http_5xx),
            ("timeout", self.timeout),
            ("reset", self.reset),
            ("malformed", self.malformed),
            ("oversized", self.oversized),
            ("echo", self.echo),
            ("wrongtype", self.wrong_type),
            ("404", self.not_found),
        ]
    }
}

impl FromStr for Faults {
    type Err = FaultsParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut faults = Faults::NONE;
        let mut seen = [false; 8];
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("none") {
            return Ok(faults);
        }
        for raw in s.split(',') {
            let entry = raw.trim();
            let Some((kind, value)) = entry.split_once('=') else {
                return Err(FaultsParseError::Syntax {
                    entry: entry.to_string(),
                });
            };
            let kind = kind.trim();
            let (slot, field) = match kind.to_ascii_lowercase().as_str() {
                "5xx" => (0, &mut faults.http_5xx),
                "timeout" => (1, &mut faults.timeout),
                "reset" => (2, &mut faults.reset),
                "malformed" => (3, &mut faults.malformed),
                "404" | "not_found" => (4, &mut faults.not_found),
                "oversized" => (5, &mut faults.oversized),
                "echo" => (6, &mut faults.echo),
                "wrongtype" | "wrong_type" => (7, &mut faults.wrong_type),
                _ => {
                    return Err(FaultsParseError::UnknownKind {
                        entry: entry.to_string(),
                        kind: kind.to_string(),
                    })
                }
            };
            let value: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| (0.0..=1.0).contains(v))
                .ok_or_else(|| FaultsParseError::BadValue {
                    entry: entry.to_string(),
                })?;
            if std::mem::replace(&mut seen[slot], true) {
                return Err(FaultsParseError::Duplicate {
                    entry: entry.to_string(),
                });
            }
            *field = value;
        }
        faults.validate()?;
        Ok(faults)
    }
}

impl fmt::Display for Faults {
    /// The same syntax [`Faults::from_str`] reads; `none` when there are no faults.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (kind, value) in self.entries() {
            if value > 0.0 {
                if !first {
                    f.write_str(",")?;
                }
                write!(f, "{kind}={value}")?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// What to do with one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answer normally.
    None,
    /// Answer with this 5xx status.
    Status(StatusCode),
    /// Stall, then answer normally.
    Timeout,
    /// Drop the connection without answering.
    Reset,
    /// Answer 200 with broken JSON.
    Malformed,
    /// Answer 200 with a body over 8 MiB.
    Oversized,
    /// Answer 502 echoing the `Authorization` header.
    Echo,
    /// Answer 200 with a documented field of the wrong type.
    WrongType,
}

/// The per-line fault schedule of one running simulator.
#[derive(Debug)]
pub(crate) struct FaultPlan {
    faults: Faults,
    seed: u64,
    not_found: Vec<bool>,
    /// Per line: `attempts << 2 | current fault streak`.
    state: Vec<AtomicU64>,
}

const SALT_ATTEMPT: u64 = 0x5851_f42d_4c95_7f2d;
const SALT_NOT_FOUND: u64 = 0x1405_7b7e_f767_814f;

impl FaultPlan {
    /// Picks the permanently missing lines and zeroes every line's attempt counter.
    pub(crate) fn new(faults: Faults, seed: u64, lines: usize) -> FaultPlan {
        let not_found = (0..lines)
            .map(|i| {
                faults.not_found > 0.0
                    && unit(hash3(seed, i as u64, SALT_NOT_FOUND)) < faults.not_found
            })
            .collect();
        FaultPlan {
            faults,
            seed,
            not_found,
            state: (0..lines).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Whether line `index` always answers 404.
    pub(crate) fn is_not_found(&self, index: usize) -> bool {
        self.not_found.get(index).copied().unwrap_or(false)
    }

    /// Counts one attempt on line `index` and says which fault it gets.
    pub(crate) fn next(&self, index: usize) -> Fault {
        if self.faults.transient_total() <= 0.0 {
            return Fault::None;
        }
        let Some(cell) = self.state.get(index) else {
            return Fault::None;
        };
        // `fetch_update` may run the closure more than once under contention; it is
        // pure, and the outcome is recomputed from the state that won.
        let prev = match cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
            Some(self.step(index, s).0)
        }) {
            Ok(prev) | Err(prev) => prev,
        };
        self.step(index, prev).1
    }

    fn step(&self, index: usize, state: u64) -> (u64, Fault) {
        let attempt = state >> 2;
        let streak = state & 3;
        let fault = if streak >= MAX_FAULT_STREAK {
            Fault::None
        } else {
            self.draw(index, attempt)
        };
        let streak = if fault == Fault::None { 0 } else { streak + 1 };
        (((attempt + 1) << 2) | streak, fault)
    }

    fn draw(&self, index: usize, attempt: u64) -> Fault {
        let h = hash3(self.seed, index as u64, attempt ^ SALT_ATTEMPT);
        let u = unit(h);
        let f = &self.faults;
        let mut edge = f.http_5xx;
        if u < edge {
            // The low bits are independent enough of the high bits used by `unit`.
            let code = match h & 3 {
                0 => StatusCode::INTERNAL_SERVER_ERROR,
                1 => StatusCode::BAD_GATEWAY,
                2 => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::GATEWAY_TIMEOUT,
            };
            return Fault::Status(code);
        }
        edge += f.timeout;
        if u < edge {
            return Fault::Timeout;
        }
        edge += f.reset;
        if u < edge {
            return Fault::Reset;
        }
        edge += f.malformed;
        if u < edge {
            return Fault::Malformed;
        }
        edge += f.oversized;
        if u < edge {
            return Fault::Oversized;
        }
        edge += f.echo;
        if u < edge {
            return Fault::Echo;
        }
        edge += f.wrong_type;
        if u < edge {
            return Fault::WrongType;
        }
        Fault::None
    }
}

/// SplitMix64's finaliser: a fast, well-mixed 64-bit hash step.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hash3(a: u64, b: u64, c: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(a) ^ b) ^ c)
}

/// The top 53 bits as a float in `[0, 1)`.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let f: Faults = "5xx=0.02,timeout=0.01,reset=0.005,malformed=0.005,404=0.01"
            .parse()
            .unwrap();
        assert_eq!(f.http_5xx, 0.02);
        assert_eq!(f.timeout, 0.01);
        assert_eq!(f.reset, 0.005);
        assert_eq!(f.malformed, 0.005);
        assert_eq!(f.not_found, 0.01);
        assert_eq!(f.to_string().parse::<Faults>().unwrap(), f);
    }

    #[test]
    fn hostile_kinds_parse_round_trip_and_are_drawn() {
        let f: Faults = "oversized=0.25,echo=0.25,wrongtype=0.5".parse().unwrap();
        assert_eq!((f.oversized, f.echo, f.wrong_type), (0.25, 0.25, 0.5));
        assert_eq!(f.to_string().parse::<Faults>().unwrap(), f);
        let plan = FaultPlan::new(f, 1, 200);
        let drawn: Vec<Fault> = (0..200).map(|i| plan.next(i)).collect();
        for kind in [Fault::Oversized, Fault::Echo, Fault::WrongType] {
            assert!(drawn.contains(&kind), "{kind:?} never drawn");
        }
        assert!("echo=0.6,oversized=0.6".parse::<Faults>().is_err());
    }

    #[test]
    fn never_more_than_two_faults_in_a_row() {
        let f: Faults = "5xx=0.5,reset=0.5".parse().unwrap();
        let plan = FaultPlan::new(f, 3, 4);
        let outcomes: Vec<Fault> = (0..30).map(|_| plan.next(1)).collect();
        assert_eq!(
            outcomes[0..2].iter().filter(|f| **f == Fault::None).count(),
            0
        );
        assert_eq!(outcomes[2], Fault::None);
        for w in outcomes.windows(3) {
            assert!(w.contains(&Fault::None), "{w:?}");
        }
    }

    #[test]
    fn draws_depend_on_seed_line_and_attempt_only() {
        let f: Faults = "5xx=0.3,timeout=0.1".parse().unwrap();
        let a = FaultPlan::new(f, 9, 50);
        let b = FaultPlan::new(f, 9, 50);
        // Interleave differently: per-line sequences must still match.
        let seq_a: Vec<Fault> = (0..50).flat_map(|i| [a.next(i), a.next(i)]).collect();
        let mut seq_b = vec![Fault::None; 100];
        for round in 0..2 {
            for i in (0..50).rev() {
                seq_b[i * 2 + round] = b.next(i);
            }
        }
        assert_eq!(seq_a, seq_b);
        assert!(seq_a.iter().any(|f| *f != Fault::None));
    }
}
