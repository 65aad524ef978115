//! The cells the normalizer is held to libphonenumber on, drawn from a seed: for each default
//! region, libphonenumber's example number of every region and type in every layout (E.164,
//! international, national, RFC 3966, the default region's international prefix, digits
//! without `+`), near misses of each (a digit dropped, added, changed), random numbers over
//! the default region's ranges in the layouts people type, the messy profile's cells, notes
//! and extensions around numbers, junk, and cells holding two of these.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

use phone_enrich::generate::{phone_cells, Profile};

/// One example number as the oracle lists it.
#[derive(Debug, Deserialize)]
pub struct Example {
    pub region: String,
    pub e164: String,
    pub international: String,
    pub national: String,
    pub rfc3966: String,
}

/// A cell to read in a default region; `kind` says where it came from.
#[derive(Debug)]
pub struct Cell {
    pub region: &'static str,
    pub text: String,
    pub kind: &'static str,
}

/// How people in a default region write its numbers: country code, national prefix, and the
/// international prefix as typed.
struct Habits {
    code: &'static str,
    national_prefix: &'static str,
    international_prefix: &'static str,
}

fn habits(region: &str) -> Habits {
    let (code, national_prefix, international_prefix) = match region {
        "RU" | "KZ" => ("7", "8", "8 10"),
        "BY" => ("375", "8", "8 10"),
        "UA" => ("380", "0", "00"),
        "DE" => ("49", "0", "00"),
        "GB" => ("44", "0", "00"),
        "US" => ("1", "1", "011"),
        other => panic!("no habits for {other}"),
    };
    Habits {
        code,
        national_prefix,
        international_prefix,
    }
}

/// Every default region's cells.
pub fn cells(examples: &[Example], seed: u64) -> Vec<Cell> {
    let mut cells = Vec::new();
    for (i, region) in super::REGIONS.into_iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let start = cells.len();
        example_cells(region, examples, &mut rng, &mut cells);
        random_cells(region, examples, &mut rng, &mut cells);
        for text in phone_cells(Profile::Messy, 3_000, 0.9, rng.random())
            .into_iter()
            .flatten()
        {
            cells.push(Cell {
                region,
                text,
                kind: "messy profile",
            });
        }
        for _ in 0..1_000 {
            cells.push(Cell {
                region,
                text: junk(&mut rng),
                kind: "junk",
            });
        }
        let mine = cells.len() - start;
        for _ in 0..1_000 {
            let text = cells[start + rng.random_range(0..mine)].text.clone();
            cells.push(Cell {
                region,
                text: noted(&text, &mut rng),
                kind: "notes and extensions",
            });
        }
        for _ in 0..500 {
            let a = cells[start + rng.random_range(0..mine)].text.clone();
            let b = cells[start + rng.random_range(0..mine)].text.clone();
            let separator = [", ", "; ", " / ", "|", "\n", ","][rng.random_range(0..6)];
            cells.push(Cell {
                region,
                text: format!("{a}{separator}{b}"),
                kind: "two numbers",
            });
        }
    }
    cells
}

/// Every example in every layout, and three near misses of each.
fn example_cells(
    region: &'static str,
    examples: &[Example],
    rng: &mut StdRng,
    out: &mut Vec<Cell>,
) {
    let habits = habits(region);
    for ex in examples {
        let digits = &ex.e164[1..];
        let layouts = [
            ex.e164.clone(),
            ex.international.clone(),
            ex.national.clone(),
            ex.rfc3966.clone(),
            format!("{} {}", habits.international_prefix, &ex.international[1..]),
            digits.to_string(),
        ];
        for text in layouts {
            out.push(Cell {
                region,
                text,
                kind: "example",
            });
        }
        let national: String = ex.national.chars().filter(char::is_ascii_digit).collect();
        for (base, plus) in [(digits, true), (national.as_str(), false)] {
            let missed = near_miss(base, rng);
            out.push(Cell {
                region,
                text: if plus { format!("+{missed}") } else { missed },
                kind: "near miss",
            });
        }
        let missed = near_miss(digits, rng);
        out.push(Cell {
            region,
            text: format!("{} {}", habits.international_prefix, missed),
            kind: "near miss",
        });
    }
}

/// A digit dropped, added or changed.
fn near_miss(digits: &str, rng: &mut StdRng) -> String {
    let mut d: Vec<u8> = digits.bytes().collect();
    if d.is_empty() {
        return String::new();
    }
    let at = rng.random_range(0..d.len());
    let digit = b'0' + rng.random_range(0..10u8);
    match rng.random_range(0..3) {
        0 if d.len() > 1 => {
            d.remove(at);
        }
        1 => d.insert(at, digit),
        _ => {
            d[at] = if d[at] == digit {
                b'0' + (digit - b'0' + 1) % 10
            } else {
                digit
            }
        }
    }
    String::from_utf8(d).expect("digits")
}

/// Random numbers of the default region's lengths, over every leading three digits or a real
/// range's first digits, in the layouts people type.
fn random_cells(region: &'static str, examples: &[Example], rng: &mut StdRng, out: &mut Vec<Cell>) {
    let habits = habits(region);
    let own: Vec<String> = examples
        .iter()
        .filter(|e| e.region == region)
        .map(|e| e.e164[1 + habits.code.len()..].to_string())
        .collect();
    assert!(!own.is_empty(), "examples of {region}");
    for _ in 0..6_000 {
        let model = &own[rng.random_range(0..own.len())];
        let mut national: String = if rng.random_bool(0.5) {
            format!("{}", rng.random_range(100..1000))
        } else {
            model[..rng.random_range(1..=model.len().min(4))].to_string()
        };
        while national.len() < model.len() {
            national.push(char::from(b'0' + rng.random_range(0..10u8)));
        }
        out.push(Cell {
            region,
            text: layout(&national, &habits, rng),
            kind: "random",
        });
    }
}

/// A national number written as people write it.
fn layout(national: &str, habits: &Habits, rng: &mut StdRng) -> String {
    let (head, tail) = national.split_at(national.len().min(3));
    let grouped = group(tail, if rng.random_bool(0.5) { '-' } else { ' ' });
    let np = habits.national_prefix;
    let cc = habits.code;
    match rng.random_range(0..12) {
        0 => national.to_string(),
        1 => format!("{np}{national}"),
        2 => format!("{np} ({head}) {grouped}"),
        3 => format!("{np}-{head}-{grouped}"),
        4 => format!("+{cc} {head} {grouped}"),
        5 => format!("+{cc}({head}){tail}"),
        6 => format!("{cc}{national}"),
        7 => format!("{} {cc} {head} {grouped}", habits.international_prefix),
        8 => format!("({head}) {grouped}"),
        9 => format!("{np} {head} {}", group(tail, '.')),
        10 => format!("{cc} ({head}) {grouped}"),
        _ => format!("+{cc}{np}{national}"),
    }
}

/// Digits in groups of three, then twos, as phone books print them.
fn group(digits: &str, separator: char) -> String {
    let mut out = String::new();
    let mut rest = digits;
    let mut first = true;
    while !rest.is_empty() {
        let take = if first && rest.len() > 4 {
            3
        } else {
            2.min(rest.len())
        };
        if !out.is_empty() {
            out.push(separator);
        }
        out.push_str(&rest[..take]);
        rest = &rest[take..];
        first = false;
    }
    out
}

/// What [`noted`] writes around numbers (shared with the fast path's unit tests).
const AROUND: &[&str] = include!("../../data/around_numbers.rs");

/// A cell with what people and systems write around a number: a note before it (a third of
/// the time), and a note, extension (`доб. 12`, `ext. 12`, `x12`, `, 12`, `;12`, `- 503#`),
/// vanity word or other text after it.
fn noted(text: &str, rng: &mut StdRng) -> String {
    let mut out = String::new();
    if rng.random_bool(0.3) {
        out.push_str(AROUND[rng.random_range(0..AROUND.len())]);
    }
    out.push_str(text);
    out.push_str(AROUND[rng.random_range(0..AROUND.len())]);
    out
}

/// Random text over digits (ASCII and other scripts), letters, the punctuation of phone
/// numbers and of the cells around them.
fn junk(rng: &mut StdRng) -> String {
    const ALPHABET: &[&str] = &[
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "0",
        "7",
        "8",
        "9",
        " ",
        " ",
        "-",
        "(",
        ")",
        ".",
        "+",
        "/",
        ",",
        ";",
        ":",
        "x",
        "ext",
        "#",
        "*",
        "a",
        "Z",
        "т",
        "доб",
        "№",
        "٣",
        "７",
        "＋",
        "\u{a0}",
        "~",
        "tel:",
        ";phone-context=",
        "[",
        "]",
        "'",
        "\"",
    ];
    let len = rng.random_range(1..24);
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
        .collect()
}
