//! The messy profile: a Russian CRM export as people fill it in, not as any parser wants it.
//!
//! Contract: [`row`] draws one row's name, phone cell and city. Phones: 3% empty, 4%
//! placeholders and junk (`нет`, `-`, `123`, `8 (800)`, input masks, numbers cut short or typed
//! too long); the rest numbers — Russian mobiles and landlines in 18 layouts, Kazakh numbers in
//! the same, and 18 other countries as `+CC …`, `00CC…`, without a `+`, or in their own
//! national form — with odd spacing (doubled, no-break spaces, dashes), notes around 1.5% of
//! them (`моб.`, `доб. 12`, a name) and a second number in 1%. A number keeps the layout it
//! was first typed in on 70% of its later rows. Names and cities carry commas and quotes.
//! Nothing here knows what the fast path reads.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::standard::{CITIES, FIRST, LAST};
use super::Rows;

/// A country's mobile numbers as the generator draws them: the national number is a prefix and
/// random digits up to `len`, typed in `groups`; `trunk` is how the country dials it at home.
struct Country {
    code: &'static str,
    prefixes: &'static [&'static str],
    len: usize,
    groups: &'static [usize],
    trunk: &'static str,
    /// In 1,000ths of the numbers.
    share: u32,
}

/// A row of [`FOREIGN`]: code, prefixes, length, groups, trunk prefix, share.
const fn country(
    (code, prefixes, len, groups, trunk, share): (
        &'static str,
        &'static [&'static str],
        usize,
        &'static [usize],
        &'static str,
        u32,
    ),
) -> Country {
    Country {
        code,
        prefixes,
        len,
        groups,
        trunk,
        share,
    }
}

const BY: &[&str] = &["25", "29", "33", "44"];
const UA: &[&str] = &[
    "50", "63", "66", "67", "68", "73", "93", "95", "96", "97", "98", "99",
];
const UZ: &[&str] = &["90", "91", "93", "94", "95", "97", "99", "33", "88"];
const DE_MOBILE: &[&str] = &[
    "151", "152", "157", "160", "170", "171", "172", "176", "177", "178",
];
const DE_CITY: &[&str] = &["30", "40", "89", "69"];
const AM: &[&str] = &["77", "93", "94", "98", "99", "91", "55", "41"];
const GE: &[&str] = &["555", "557", "568", "571", "577", "591", "595", "599"];
const KG: &[&str] = &[
    "700", "701", "703", "705", "707", "770", "772", "777", "550", "555",
];
const AZ: &[&str] = &["50", "51", "55", "70", "77"];
const TJ: &[&str] = &["90", "91", "92", "93", "98", "55"];
const MD: &[&str] = &["60", "67", "68", "69", "78", "79"];
const TR: &[&str] = &["530", "532", "533", "535", "505", "542", "555"];
const IL: &[&str] = &["50", "52", "53", "54", "58"];
const US: &[&str] = &["212", "310", "415", "646", "917"];
const GB: &[&str] = &["7700", "7911", "7400", "7500"];
const CN: &[&str] = &["138", "139", "135", "186", "158"];
const IT: &[&str] = &["320", "328", "333", "347", "06", "02"];
const PL: &[&str] = &["500", "501", "600", "601", "691"];
const FR: &[&str] = &["6", "7"];

/// The countries of a Russian CRM's foreign customers, most frequent first.
const FOREIGN: &[Country] = &[
    country(("375", BY, 9, &[2, 3, 2, 2], "80", 25)),
    country(("380", UA, 9, &[2, 3, 2, 2], "0", 20)),
    country(("998", UZ, 9, &[2, 3, 2, 2], "", 20)),
    country(("49", DE_MOBILE, 11, &[3, 4, 4], "0", 10)),
    country(("49", DE_CITY, 10, &[2, 4, 4], "0", 5)),
    country(("374", AM, 8, &[2, 3, 3], "0", 3)),
    country(("995", GE, 9, &[3, 2, 2, 2], "", 3)),
    country(("996", KG, 9, &[3, 3, 3], "0", 3)),
    country(("994", AZ, 9, &[2, 3, 2, 2], "0", 2)),
    country(("992", TJ, 9, &[2, 3, 4], "", 2)),
    country(("373", MD, 8, &[2, 3, 3], "0", 1)),
    country(("90", TR, 10, &[3, 3, 2, 2], "0", 2)),
    country(("972", IL, 9, &[2, 3, 4], "0", 1)),
    country(("1", US, 10, &[3, 3, 4], "1", 1)),
    country(("44", GB, 10, &[4, 6], "0", 1)),
    country(("86", CN, 11, &[3, 4, 4], "0", 1)),
    country(("39", IT, 10, &[3, 3, 4], "", 1)),
    country(("48", PL, 9, &[3, 3, 3], "", 1)),
    country(("33", FR, 9, &[1, 2, 2, 2, 2], "0", 1)),
];

/// Russian area codes of landlines, and Kazakh mobile codes (country code 7 as well).
const RU_LANDLINE: &[&str] = &[
    "495", "499", "812", "343", "383", "843", "861", "846", "863",
];
const KZ_MOBILE: &[&str] = &[
    "700", "701", "702", "705", "707", "747", "771", "775", "777", "778",
];

/// How Russian numbers are written, with how often (in 100ths): `a` the three-digit operator
/// or area code, `b` `c` `d` the groups of three, two and two digits after it.
const RU_LAYOUTS: &[(&str, u32)] = &[
    ("+7 a b-c-d", 12),
    ("+7 (a) b-c-d", 12),
    ("8 (a) b-c-d", 12),
    ("8abcd", 12),
    ("+7abcd", 11),
    ("8 a b c d", 6),
    ("8-a-b-c-d", 5),
    ("7abcd", 5),
    ("abcd", 4),
    ("+7 a b c d", 4),
    ("+7-a-b-cd", 3),
    ("8 a bcd", 3),
    ("8(a)bcd", 3),
    ("8 a b-c-d", 3),
    ("+7(a)b-c-d", 2),
    ("(a) b-c-d", 2),
    ("a-b-c-d", 1),
    ("8.a.b.c.d", 1),
];

/// How foreign numbers are written: `+CC`/`00CC`/`CC` then the number in the country's groups
/// (`g`, separated by `-` or ` `) or in one block (`n`); `t` the number in its national form.
const FOREIGN_LAYOUTS: &[(&str, u32)] = &[
    ("+CC g", 30),
    ("+CCn", 20),
    ("+CC (g1) g-", 8),
    ("00CC g", 8),
    ("00CCn", 8),
    ("+CC-g-", 5),
    ("CC g", 5),
    ("CCn", 5),
    ("t", 5),
    ("+CC (T) g", 3),
    ("8 10 CC n", 2),
    ("+ CC g", 1),
];

/// Placeholders people type when there is no number, with how often.
const PLACEHOLDERS: &[(&str, u32)] = &[
    ("нет", 10),
    ("-", 10),
    ("—", 3),
    ("n/a", 3),
    ("НЕТ", 3),
    ("не указан", 4),
    ("0", 5),
    ("123", 3),
    ("8 (800)", 2),
    ("+7", 4),
    ("тел. уточнить", 2),
    ("???", 2),
    ("1111111", 2),
    ("+7 (000) 000-00-00", 4),
    ("+7 (___) ___-__-__", 4),
    ("89", 2),
    ("8-", 2),
    ("звонить после 18:00", 2),
    ("0000000000", 2),
    (".", 2),
    ("нет номера", 2),
    ("см. email", 1),
    ("отказ", 2),
];

/// Notes written before and after a number.
const BEFORE: &[&str] = &["моб. ", "тел. ", "т. ", "сот. ", "раб. ", "Тел.: "];
const AFTER: &[&str] = &[
    " (Иван)",
    " доб. 123",
    " доб.45",
    " жена",
    " - раб.",
    " (рабочий)",
    " WhatsApp",
    " ext. 12",
];

/// Between two numbers in one cell.
const LIST: &[&str] = &[", ", ",", "; ", " / ", " или "];

const NAME_SUFFIXES: &[&str] = &[" Петрович", " Сергеевна", " \"Петя\"", " (менеджер)"];
const COMPANIES: &[&str] = &[
    "ООО \"Ромашка\"",
    "ИП Иванов И.И.",
    "АО \"Север, Юг и Запад\"",
    "ООО \"Торговый дом \"\"Вектор\"\"\"",
];
/// Cities written with a comma, beside the standard profile's.
const MORE_CITIES: &[&str] = &["Москва, Зеленоград", "г. Химки, Московская обл."];

/// One row's name, phone cell and city.
pub(super) fn row(rows: &mut Rows) -> (String, Option<String>, &'static str) {
    let name = name(&mut rows.rng);
    let roll: f64 = rows.rng.random();
    let phone = if roll < 0.03 {
        None
    } else if roll < 0.07 {
        Some(junk(&mut rows.rng))
    } else {
        let first = number_cell(rows);
        let rng = &mut rows.rng;
        Some(match rng.random_range(0..1000) {
            0..=9 => {
                let list = LIST[rng.random_range(0..LIST.len())];
                format!("{first}{list}{}", number_cell(rows))
            }
            10..=24 => {
                if rng.random() {
                    format!("{}{first}", BEFORE[rng.random_range(0..BEFORE.len())])
                } else {
                    format!("{first}{}", AFTER[rng.random_range(0..AFTER.len())])
                }
            }
            _ => first,
        })
    };
    let cities = match rows.rng.random_range(0..100) {
        0..=9 => MORE_CITIES,
        _ => CITIES,
    };
    let city = cities[rows.rng.random_range(0..cities.len())];
    (name, phone, city)
}

fn name(rng: &mut StdRng) -> String {
    let last = LAST[rng.random_range(0..LAST.len())];
    let first = FIRST[rng.random_range(0..FIRST.len())];
    match rng.random_range(0..100) {
        0..=5 => format!("{last}, {first}"),
        6..=8 => COMPANIES[rng.random_range(0..COMPANIES.len())].to_string(),
        9..=14 => format!(
            "{last} {first}{}",
            NAME_SUFFIXES[rng.random_range(0..NAME_SUFFIXES.len())]
        ),
        _ => format!("{last} {first}"),
    }
}

/// A placeholder, or a number cut short or typed with digits too many.
fn junk(rng: &mut StdRng) -> String {
    let digits = |rng: &mut StdRng, n: std::ops::Range<usize>| -> String {
        let n = rng.random_range(n);
        (0..n)
            .map(|_| char::from(b'0' + rng.random_range(0..10)))
            .collect()
    };
    match rng.random_range(0..100) {
        0..=79 => weighted(PLACEHOLDERS, rng).to_string(),
        80..=89 => format!("8 9{} {}", digits(rng, 2..3), digits(rng, 2..6)),
        90..=94 => format!(
            "8 9{} {} {}",
            digits(rng, 2..3),
            digits(rng, 3..4),
            digits(rng, 6..7)
        ),
        _ => format!("+7 (9{}", digits(rng, 0..3)),
    }
}

/// A number of the export typed as a person would: in the layout it was first typed in, or
/// now and then another.
fn number_cell(rows: &mut Rows) -> String {
    let index = rows.number_index();
    let mut own = StdRng::seed_from_u64(rows.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let number = number(&mut own);
    let rng = if rows.rng.random_range(0..10) < 7 {
        &mut own
    } else {
        &mut rows.rng
    };
    odd_spacing(typed(&number, rng), rng)
}

/// A number's country (`None`: Russia and Kazakhstan, code 7) and national digits.
struct Number {
    country: Option<&'static Country>,
    national: String,
}

fn number(rng: &mut StdRng) -> Number {
    let tail = |rng: &mut StdRng, prefix: &str, len: usize| -> String {
        let mut s = prefix.to_string();
        while s.len() < len {
            s.push(char::from(b'0' + rng.random_range(0..10)));
        }
        s
    };
    let mut roll = rng.random_range(0..1000u32);
    let seven = |prefix: &str, rng: &mut StdRng| Number {
        country: None,
        national: tail(rng, prefix, 10),
    };
    if roll < 820 {
        let operator = format!("9{:02}", rng.random_range(0..100));
        return seven(&operator, rng);
    }
    if roll < 870 {
        return seven(RU_LANDLINE[rng.random_range(0..RU_LANDLINE.len())], rng);
    }
    if roll < 900 {
        return seven(KZ_MOBILE[rng.random_range(0..KZ_MOBILE.len())], rng);
    }
    roll -= 900;
    let total: u32 = FOREIGN.iter().map(|c| c.share).sum();
    let mut pick = roll * total / 100;
    let country = FOREIGN
        .iter()
        .find(|c| {
            let hit = pick < c.share;
            pick = pick.saturating_sub(c.share);
            hit
        })
        .unwrap_or(&FOREIGN[0]);
    let prefix = country.prefixes[rng.random_range(0..country.prefixes.len())];
    Number {
        country: Some(country),
        national: tail(rng, prefix, country.len),
    }
}

fn weighted<'a>(choices: &[(&'a str, u32)], rng: &mut StdRng) -> &'a str {
    let total: u32 = choices.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    for &(choice, weight) in choices {
        if pick < weight {
            return choice;
        }
        pick -= weight;
    }
    choices[0].0
}

/// Writes a number in one of the layouts of its country.
fn typed(number: &Number, rng: &mut StdRng) -> String {
    let n = number.national.as_str();
    let Some(country) = number.country else {
        let (a, b, c, d) = (&n[..3], &n[3..6], &n[6..8], &n[8..]);
        let mut text = String::new();
        for ch in weighted(RU_LAYOUTS, rng).chars() {
            match ch {
                'a' => text.push_str(a),
                'b' => text.push_str(b),
                'c' => text.push_str(c),
                'd' => text.push_str(d),
                other => text.push(other),
            }
        }
        return text;
    };
    let grouped = |separator: &str, skip_first: bool| -> String {
        let mut parts = Vec::new();
        let mut at = 0;
        for &g in country.groups {
            parts.push(&n[at..(at + g).min(n.len())]);
            at += g;
        }
        if at < n.len() {
            parts.push(&n[at..]);
        }
        parts[skip_first as usize..].join(separator)
    };
    let dash = if rng.random() { "-" } else { " " };
    let cc = country.code;
    let first = &n[..country.groups[0]];
    match weighted(FOREIGN_LAYOUTS, rng) {
        "+CC g" => format!("+{cc} {}", grouped(dash, false)),
        "+CCn" => format!("+{cc}{n}"),
        "+CC (g1) g-" => format!("+{cc} ({first}) {}", grouped("-", true)),
        "00CC g" => format!("00{cc} {}", grouped(" ", false)),
        "00CCn" => format!("00{cc}{n}"),
        "+CC-g-" => format!("+{cc}-{}", grouped("-", false)),
        "CC g" => format!("{cc} {}", grouped(" ", false)),
        "CCn" => format!("{cc}{n}"),
        "t" => format!("{}{}", country.trunk, grouped(dash, false)),
        "+CC (T) g" => format!("+{cc} ({}) {}", country.trunk, grouped(" ", false)),
        "8 10 CC n" => format!("8 10 {cc} {n}"),
        _ => format!("+ {cc} {}", grouped(" ", false)),
    }
}

/// Spacing as it comes out of spreadsheets and web forms: doubled, at the ends, no-break, a
/// dash for a hyphen, a space after the `+`.
fn odd_spacing(text: String, rng: &mut StdRng) -> String {
    match rng.random_range(0..1000) {
        0..=29 => text.replacen(' ', "  ", 1),
        30..=49 => format!(" {text} "),
        50..=54 => text.replace(' ', "\u{a0}"),
        55..=57 => text.replace('-', "\u{2013}"),
        58..=62 => text.replacen('+', "+ ", 1),
        _ => text,
    }
}
