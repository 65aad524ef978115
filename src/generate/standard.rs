//! The standard profile: the shapes the generator has always written (`8 (9xx) ...`, `+7 9xx
//! ...`, bare digits, dashes, stray blanks, two numbers in a cell), mostly Russian mobiles with
//! some Kazakh, Belarusian, Ukrainian and Uzbek numbers and Moscow landlines, 2% garbage and
//! 2% empty cells.
//!
//! Contract: [`row`] draws one row's name, phone cell and city from the rows' generator, in an
//! order that keeps the bytes of earlier exports of the same seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Rows;

pub(super) const FIRST: &[&str] = &[
    "Иван",
    "Мария",
    "Алексей",
    "Ольга",
    "Дмитрий",
    "Анна",
    "Сергей",
    "Елена",
    "Андрей",
    "Наталья",
    "Павел",
    "Татьяна",
    "Артём",
    "Юлия",
    "Никита",
    "Ксения",
];
pub(super) const LAST: &[&str] = &[
    "Иванов",
    "Смирнова",
    "Кузнецов",
    "Попова",
    "Васильев",
    "Петрова",
    "Соколов",
    "Михайлова",
    "Новиков",
    "Фёдорова",
    "Морозов",
    "Волкова",
    "Алексеев",
    "Лебедева",
];
pub(super) const CITIES: &[&str] = &[
    "Москва",
    "Санкт-Петербург",
    "Новосибирск",
    "Екатеринбург",
    "Казань",
    "Нижний Новгород",
    "Краснодар",
    "Самара",
    "Ростов-на-Дону",
    "Уфа",
    "Алматы",
    "Минск",
];
const GARBAGE: &[&str] = &[
    "-",
    "нет",
    "n/a",
    "12345",
    "звонить после 18:00",
    "0",
    "тел. уточнить",
    "+7 (000) 000-00-00",
];

/// The digits of the `index`-th distinct number of a generated export (E.164, no `+`).
fn number_for(index: u64, seed: u64) -> (u64, Kind) {
    let mut rng = StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let roll = rng.random_range(0..100);
    let tail = |rng: &mut StdRng, digits: u32| rng.random_range(0..10u64.pow(digits));
    match roll {
        0..=87 => (79_000_000_000 + tail(&mut rng, 9), Kind::RuMobile),
        88..=91 => {
            let code =
                [701u64, 702, 705, 707, 747, 771, 775, 776, 777, 778][rng.random_range(0..10)];
            (
                70_000_000_000 + code * 10_000_000 + tail(&mut rng, 7),
                Kind::Foreign,
            )
        }
        92..=93 => {
            let code = [25u64, 29, 33, 44][rng.random_range(0..4)];
            (
                375_000_000_000 + code * 10_000_000 + tail(&mut rng, 7),
                Kind::Foreign,
            )
        }
        94..=95 => {
            let code = [50u64, 63, 66, 67, 68, 73, 93, 95, 96, 97, 98, 99][rng.random_range(0..12)];
            (
                380_000_000_000 + code * 10_000_000 + tail(&mut rng, 7),
                Kind::Foreign,
            )
        }
        96 => {
            let code = [90u64, 91, 93, 94, 95, 97, 99][rng.random_range(0..7)];
            (
                998_000_000_000 + code * 10_000_000 + tail(&mut rng, 7),
                Kind::Foreign,
            )
        }
        _ => (
            74_950_000_000 + rng.random_range(2_000_000..10_000_000),
            Kind::RuLandline,
        ),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    RuMobile,
    RuLandline,
    Foreign,
}

/// Writes a number the way a person might have typed it.
fn typed(number: u64, kind: Kind, rng: &mut StdRng) -> String {
    let d = number.to_string();
    if kind == Kind::Foreign {
        let cc = if d.starts_with('7') { 1 } else { 3 };
        let (c, rest) = d.split_at(cc);
        return match rng.random_range(0..3) {
            0 => format!(
                "+{c} {} {}-{}-{}",
                &rest[..rest.len() - 7],
                &rest[rest.len() - 7..rest.len() - 4],
                &rest[rest.len() - 4..rest.len() - 2],
                &rest[rest.len() - 2..]
            ),
            1 => format!("+{d}"),
            _ => format!(
                "+{c} {} {}",
                &rest[..rest.len() - 7],
                &rest[rest.len() - 7..]
            ),
        };
    }
    // Russian: 7 + 10 national digits.
    let n = &d[1..];
    let (a, b, c, e) = (&n[..3], &n[3..6], &n[6..8], &n[8..]);
    match rng.random_range(0..10) {
        0 => format!("8 ({a}) {b}-{c}-{e}"),
        1 => format!("+7 {a} {b} {c} {e}"),
        2 => n.to_string(),
        3 => format!("+7({a}){b}{c}{e}"),
        4 => format!("7{n}"),
        5 => format!("8{n}"),
        6 => format!("  +7 {a} {b}-{c}-{e} "),
        7 => format!("+7-{a}-{b}-{c}-{e}"),
        8 => format!("8-{a}-{b}{c}{e}"),
        _ => format!("+7 ({a}) {b}-{c}-{e}"),
    }
}

/// One row's name, phone cell and city.
pub(super) fn row(rows: &mut Rows) -> (String, Option<String>, &'static str) {
    let rng = &mut rows.rng;
    let last = LAST[rng.random_range(0..LAST.len())];
    let first = FIRST[rng.random_range(0..FIRST.len())];
    let roll: f64 = rng.random();
    let phone = if roll < 0.02 {
        None
    } else if roll < 0.04 {
        Some(GARBAGE[rng.random_range(0..GARBAGE.len())].to_string())
    } else {
        let index = rows.number_index();
        let rng = &mut rows.rng;
        let (number, kind) = number_for(index, rows.seed);
        let text = typed(number, kind, rng);
        if rng.random_range(0..100) == 0 {
            let (other, kind) = number_for(index + 1_000_003, rows.seed);
            Some(format!("{text}, {}", typed(other, kind, rng)))
        } else {
            Some(text)
        }
    };
    let rng = &mut rows.rng;
    let city = CITIES[rng.random_range(0..CITIES.len())];
    (format!("{last} {first}"), phone, city)
}
