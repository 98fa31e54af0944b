//! Synthetic virtual lines: deterministic per seed, shaped like Webex's answers.
//!
//! The data is built to exercise a client: every combination of the three required
//! settings occurs among the first eight lines, names carry non-ASCII characters, a few
//! display names start with spreadsheet formula characters, some lines have no
//! `members` key at all and some carry fields Webex may add later.

use std::collections::HashMap;

use axum::body::Bytes;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
// Not rand's `StdRng`: its algorithm may change in any rand release, and the data for
// a seed is promised to stay the same. ChaCha12 is what StdRng was when this was
// written, so the data did not change with the switch.
use rand_chacha::ChaCha12Rng;
use serde_json::{json, Map, Value};

/// One synthetic virtual line with its answers pre-rendered.
#[derive(Debug, Clone)]
pub(crate) struct SyntheticLine {
    /// The Webex-style ID.
    pub id: String,
    /// The Push-to-Talk settings as the API returns them, serialised once so that
    /// serving them costs a reference count. Only these bytes are kept: a parsed
    /// `Value` costs ten times the memory, which adds up to gigabytes at the 100,000
    /// lines of the benchmark.
    pub body: Bytes,
    /// This line's item of the list endpoint, serialised.
    pub list_item: String,
    /// Index into [`Dataset::locations`] of the line's location.
    pub location: usize,
}

/// Every synthetic line, plus an index from ID to position.
#[derive(Debug)]
pub(crate) struct Dataset {
    /// The lines, in generation (and list) order.
    pub lines: Vec<SyntheticLine>,
    /// ID → position in `lines`.
    pub index: HashMap<String, usize>,
    /// The IDs of the locations lines live in.
    pub locations: Vec<String>,
}

/// People to draw members from: `(firstName, lastName, displayName)`. Non-ASCII names
/// are deliberate: reports must keep them intact.
const PEOPLE: &[(&str, &str, &str)] = &[
    ("Alice", "Little", "Alice Little"),
    ("Bob", "Johnson", "Bob Johnson"),
    ("Zoë", "Ångström", "Zoë Ångström"),
    ("José", "Núñez", "José Núñez"),
    ("雷", "李", "李雷"),
    ("Søren", "Madsen", "Søren Madsen"),
    ("Chloé", "Dubois", "Chloé Dubois"),
    ("Jürgen", "Müller", "Jürgen Müller"),
    ("Aoife", "Ní Bhriain", "Aoife Ní Bhriain"),
    ("Priya", "Raman", "Priya Raman"),
    ("Mohammed", "Al-Farsi", "Mohammed Al-Farsi"),
    ("Olusegun", "Adeyemi", "Olusegun Adeyemi"),
    ("Mei", "Chen", "Mei Chen"),
    ("Carlos", "García", "Carlos García"),
    ("Emma", "Wilson", "Emma Wilson"),
    ("Liam", "O'Brien", "Liam O'Brien"),
    ("Hannah", "Schmidt", "Hannah Schmidt"),
    ("Noah", "Kim", "Noah Kim"),
    ("Fatima", "Zahra", "Fatima Zahra"),
    ("Yuki", "Tanaka", "Yuki Tanaka"),
    ("Lars", "Nilsson", "Lars Nilsson"),
    ("Agnieszka", "Łukasik", "Agnieszka Łukasik"),
    ("Grace", "Okafor", "Grace Okafor"),
    ("David", "Cohen", "David Cohen"),
    ("Sofia", "Rossi", "Sofia Rossi"),
    ("Ivan", "Petrov", "Ivan Petrov"),
    ("Anna", "Kowalski", "Anna Kowalski"),
    ("Tom", "Baker", "Tom Baker"),
];

/// Display names a spreadsheet would run as formulas if a report wrote them raw.
const FORMULA_NAMES: &[&str] = &[
    "=HYPERLINK(\"https://evil.example/\",\"Click me\")",
    "+44 Reception",
    "@Front Desk",
    "-Night Shift",
    "=1+2",
];

/// Shared devices in common areas (members of type `PLACE`).
const PLACES: &[&str] = &[
    "Lobby Phone",
    "Loading Dock",
    "Break Room",
    "Salle de réunion 3",
    "Warehouse Aisle 7",
];

/// `(firstName, lastName)` of the virtual lines themselves.
const LINE_NAMES: &[(&str, &str)] = &[
    ("Warehouse", "Intercom"),
    ("Front Desk", "Line"),
    ("Lobby", "Paging"),
    ("Security", "Desk"),
    ("Küche", "Sprechanlage"),
    ("Réception", "Étage 2"),
    ("Ops", "Bridge"),
    ("Shipping", "Dock"),
    ("Nurse", "Station"),
    ("倉庫", "内線"),
];

/// `(name, routingPrefix)` of the locations lines live in.
const LOCATIONS: &[(&str, &str)] = &[
    ("HQ San José", "1234"),
    ("Warehouse Ørestad", "2345"),
    ("Berlin Mitte", "3456"),
    ("London Docklands", "4567"),
];

/// Email domains: mostly the organisation's own.
const DOMAINS: &[(&str, u32)] = &[
    ("example.com", 80),
    ("example.org", 8),
    ("partner.example.net", 7),
    ("gmail.com", 5),
];

/// Builds `lines` synthetic lines from `seed`. Same inputs, same bytes.
pub(crate) fn generate(lines: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha12Rng::seed_from_u64(seed);
    let locations: Vec<(String, &str, &str)> = LOCATIONS
        .iter()
        .map(|(name, prefix)| (webex_id(&mut rng, "LOCATION"), *name, *prefix))
        .collect();
    let mut out = Vec::with_capacity(lines);
    let mut index = HashMap::with_capacity(lines);
    for i in 0..lines {
        let id = webex_id(&mut rng, "VIRTUAL_LINE");
        let settings = settings_for(&mut rng, i);
        let (list_item, location) = list_item_for(&mut rng, i, &id, &locations);
        // Serialising a `Value` cannot fail: its keys are strings.
        let body = Bytes::from(serde_json::to_vec(&settings).unwrap_or_default());
        index.insert(id.clone(), i);
        out.push(SyntheticLine {
            id,
            body,
            list_item: list_item.to_string(),
            location,
        });
    }
    Dataset {
        lines: out,
        index,
        locations: locations.into_iter().map(|(id, _, _)| id).collect(),
    }
}

/// The three required settings of line `i`: the first eight lines walk every
/// combination, later ones are skewed the way real orgs are (mostly one-way intercoms
/// with an allow list).
fn required_settings(rng: &mut ChaCha12Rng, i: usize) -> (bool, &'static str, &'static str) {
    let (auto, two_way, block) = if i < 8 {
        (i & 4 != 0, i & 1 != 0, i & 2 != 0)
    } else {
        (
            rng.random_bool(0.7),
            rng.random_bool(0.2),
            rng.random_bool(0.15),
        )
    };
    (
        auto,
        if two_way { "TWO_WAY" } else { "ONE_WAY" },
        if block {
            "BLOCK_MEMBERS"
        } else {
            "ALLOW_MEMBERS"
        },
    )
}

fn settings_for(rng: &mut ChaCha12Rng, i: usize) -> Value {
    let (auto, connection, access) = required_settings(rng, i);
    let mut obj = Map::new();
    obj.insert("allowAutoAnswer".into(), Value::Bool(auto));
    obj.insert("connectionType".into(), connection.into());
    obj.insert("accessType".into(), access.into());

    // Lines 0..8 each guarantee one trait the tests (and a demo reader) can count on.
    let members: Option<Vec<Value>> = match i {
        0 => {
            let mut m: Vec<Value> = [2usize, 3, 4, 5]
                .iter()
                .map(|&p| person(rng, PEOPLE[p], None))
                .collect();
            let extra = rng.random_range(0..6);
            m.extend(random_members(rng, extra));
            Some(m)
        }
        1 => {
            let mut m = Vec::new();
            for name in &FORMULA_NAMES[..3] {
                let who = *PEOPLE.choose(rng).unwrap_or(&PEOPLE[0]);
                m.push(person(rng, who, Some(name)));
            }
            m.push(random_member(rng, 0.85));
            Some(m)
        }
        4 => Some(Vec::new()),
        5 => None,
        6 => Some(vec![
            person(rng, PEOPLE[0], None),
            place(rng),
            virtual_line_member(rng),
        ]),
        2 | 3 | 7 => {
            let n = 1 + rng.random_range(0..10);
            Some(random_members(rng, n))
        }
        _ => {
            let roll: f64 = rng.random();
            if roll < 0.08 {
                None
            } else if roll < 0.13 {
                Some(Vec::new())
            } else {
                // Squaring skews towards short lists, with a tail up to ~40.
                let u: f64 = rng.random();
                Some(random_members(rng, 1 + (u * u * 40.0) as usize))
            }
        }
    };
    if let Some(members) = members {
        obj.insert("members".into(), Value::Array(members));
    }

    // Fields Webex may add over time: clients must keep them and not fail on them.
    let extra = match i {
        2 => 1,
        3 => 2,
        0..8 => 0,
        _ => {
            let roll: f64 = rng.random();
            if roll < 0.03 {
                1
            } else if roll < 0.06 {
                2
            } else {
                0
            }
        }
    };
    match extra {
        1 => {
            obj.insert("pttVersion".into(), json!(2));
        }
        2 => {
            obj.insert("newSetting".into(), json!({"x": true}));
        }
        _ => {}
    }
    Value::Object(obj)
}

/// Share of lines whose member list mixes in workspaces or virtual lines: in a real
/// org most lists were built from people, a few by hand with whatever matched.
const MIXED_MEMBER_LISTS: f64 = 0.08;

fn random_members(rng: &mut ChaCha12Rng, n: usize) -> Vec<Value> {
    let people_share = if rng.random_bool(MIXED_MEMBER_LISTS) {
        0.85
    } else {
        1.0
    };
    (0..n).map(|_| random_member(rng, people_share)).collect()
}

fn random_member(rng: &mut ChaCha12Rng, people_share: f64) -> Value {
    let roll: f64 = rng.random();
    if roll < people_share {
        let who = *PEOPLE.choose(rng).unwrap_or(&PEOPLE[0]);
        let display = if rng.random_bool(0.03) {
            FORMULA_NAMES.choose(rng).copied()
        } else {
            None
        };
        person(rng, who, display)
    } else if roll < people_share + (1.0 - people_share) * 0.66 {
        place(rng)
    } else {
        virtual_line_member(rng)
    }
}

fn person(rng: &mut ChaCha12Rng, who: (&str, &str, &str), display: Option<&str>) -> Value {
    let (first, last, default_display) = who;
    let mut m = Map::new();
    m.insert("id".into(), webex_id(rng, "PEOPLE").into());
    m.insert("lastName".into(), last.into());
    m.insert("firstName".into(), first.into());
    m.insert(
        "displayName".into(),
        display.unwrap_or(default_display).into(),
    );
    m.insert("type".into(), "PEOPLE".into());
    // Every field of a member is optional in the API; a few people lack an email.
    if rng.random_bool(0.95) {
        let domain = weighted_domain(rng);
        let local = email_local(first, last, rng.random_range(1..100));
        m.insert("email".into(), format!("{local}@{domain}").into());
    }
    if rng.random_bool(0.9) {
        m.insert("numbers".into(), Value::Array(vec![number(rng)]));
    }
    Value::Object(m)
}

fn place(rng: &mut ChaCha12Rng) -> Value {
    let name = *PLACES.choose(rng).unwrap_or(&PLACES[0]);
    json!({
        "id": webex_id(rng, "PLACE"),
        "displayName": name,
        "type": "PLACE",
        "numbers": [number(rng)],
    })
}

fn virtual_line_member(rng: &mut ChaCha12Rng) -> Value {
    let (first, last) = *LINE_NAMES.choose(rng).unwrap_or(&LINE_NAMES[0]);
    json!({
        "id": webex_id(rng, "VIRTUAL_LINE"),
        "lastName": last,
        "firstName": first,
        "displayName": format!("{first} {last}"),
        "type": "VIRTUAL_LINE",
        "numbers": [number(rng)],
    })
}

fn number(rng: &mut ChaCha12Rng) -> Value {
    let (_, prefix) = *LOCATIONS.choose(rng).unwrap_or(&LOCATIONS[0]);
    let ext = rng.random_range(1000..10000u32);
    let mut n = Map::new();
    // Extension-only numbers exist: not every member has a DID.
    if rng.random_bool(0.8) {
        n.insert(
            "external".into(),
            format!("+1984555{:04}", rng.random_range(0..10000u32)).into(),
        );
    }
    n.insert("extension".into(), ext.to_string().into());
    n.insert("routingPrefix".into(), prefix.into());
    n.insert("esn".into(), format!("{prefix}{ext}").into());
    n.insert("primary".into(), Value::Bool(true));
    Value::Object(n)
}

fn list_item_for(
    rng: &mut ChaCha12Rng,
    i: usize,
    id: &str,
    locations: &[(String, &str, &str)],
) -> (Value, usize) {
    let (first, last) = LINE_NAMES[i % LINE_NAMES.len()];
    let last = if i >= LINE_NAMES.len() {
        format!("{last} {}", i / LINE_NAMES.len() + 1)
    } else {
        last.to_string()
    };
    let location = rng.random_range(0..locations.len());
    let (loc_id, loc_name, prefix) = &locations[location];
    let ext = 2000 + i as u32 % 8000;
    let policy = ["DIRECT_LINE", "LOCATION", "OTHER"][rng.random_range(0..3usize)];
    let item = json!({
        "id": id,
        "firstName": first,
        "lastName": last,
        "externalCallerIdNamePolicy": policy,
        "number": {
            "external": format!("+1984556{:04}", i % 10000),
            "extension": ext.to_string(),
            "routingPrefix": prefix,
            "esn": format!("{prefix}{ext}"),
            "primary": true,
        },
        "location": {"id": loc_id, "name": loc_name},
        "numberOfDevicesAssigned": rng.random_range(0..4u32),
    });
    (item, location)
}

fn weighted_domain(rng: &mut ChaCha12Rng) -> &'static str {
    let total: u32 = DOMAINS.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (domain, weight) in DOMAINS {
        if roll < *weight {
            return domain;
        }
        roll -= weight;
    }
    DOMAINS[0].0
}

/// An ASCII email local part: accents folded, other scripts dropped.
fn email_local(first: &str, last: &str, n: u32) -> String {
    let fold = |s: &str| -> String {
        s.chars()
            .filter_map(|c| {
                let c = match c {
                    'à' | 'á' | 'â' | 'ä' | 'å' | 'Å' | 'Á' | 'À' => 'a',
                    'é' | 'è' | 'ê' | 'ë' | 'É' => 'e',
                    'í' | 'ì' | 'î' | 'ï' => 'i',
                    'ó' | 'ò' | 'ô' | 'ö' | 'ø' | 'Ø' | 'Ö' => 'o',
                    'ú' | 'ù' | 'û' | 'ü' | 'Ü' => 'u',
                    'ñ' => 'n',
                    'ç' => 'c',
                    'Ł' | 'ł' => 'l',
                    c => c,
                };
                c.is_ascii_alphanumeric().then(|| c.to_ascii_lowercase())
            })
            .collect()
    };
    let (f, l) = (fold(first), fold(last));
    if f.is_empty() && l.is_empty() {
        format!("user{n}")
    } else {
        format!("{f}.{l}")
    }
}

/// A Webex-style ID: unpadded base64 of `ciscospark://us/KIND/<uuid>`.
fn webex_id(rng: &mut ChaCha12Rng, kind: &str) -> String {
    let uuid = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
    base64_unpadded(format!("ciscospark://us/{kind}/{uuid}").as_bytes())
}

/// Standard-alphabet base64 without padding. For ASCII input of this shape the
/// alphabet's `+` and `/` cannot occur, so the IDs are URL-safe as Webex's are.
fn base64_unpadded(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for k in 0..chars {
            let idx = (n >> (18 - 6 * k)) & 0x3f;
            out.push(char::from(ALPHABET[idx as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_reference_example() {
        // The member ID from the API page decodes to this text.
        assert_eq!(
            base64_unpadded(b"ciscospark://us/PEOPLE/61e709d7-a3b1-4607-90b8-86a9081aad6a"),
            "Y2lzY29zcGFyazovL3VzL1BFT1BMRS82MWU3MDlkNy1hM2IxLTQ2MDctOTBiOC04NmE5MDgxYWFkNmE"
        );
        assert_eq!(base64_unpadded(b"a"), "YQ");
        assert_eq!(base64_unpadded(b"ab"), "YWI");
        assert_eq!(base64_unpadded(b"abc"), "YWJj");
    }

    #[test]
    fn ids_are_url_safe_and_unique() {
        let d = generate(500, 7);
        assert_eq!(d.index.len(), 500);
        for line in &d.lines {
            assert!(
                line.id.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{}",
                line.id
            );
        }
    }

    #[test]
    fn email_local_folds_accents() {
        assert_eq!(email_local("Zoë", "Ångström", 1), "zoe.angstrom");
        assert_eq!(email_local("雷", "李", 7), "user7");
    }
}
