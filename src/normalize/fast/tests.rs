//! The fast path against the crate: numbers of every country code in the crate's database
//! (its own example numbers, and random digits), typed in random layouts with every kind of
//! prefix, in random default regions, with junk mixed in; and random text. Wherever the fast
//! path answers it must give exactly the crate's reading, and it must answer every readable cell.

use std::io::Read;
use std::sync::LazyLock;

use phonenumber::country::Id as Region;
use phonenumber::metadata::DATABASE;
use proptest::prelude::*;
use proptest::sample::{select, Index};

use super::readable;
use crate::normalize::{Normalized, Normalizer, PhoneMetadata, E164};

/// The crate's own `PhoneNumberMetadata.xml` (libphonenumber 9.0.33), committed gzipped.
fn crate_xml() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/PhoneNumberMetadata-9.0.33.xml.gz"
    );
    let mut xml = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect(path))
        .read_to_string(&mut xml)
        .expect(path);
    xml
}

/// RU's mobile pattern as the crate's XML has it, and widened to a range it does not open:
/// `+7 300 …`.
const RU_MOBILE: (&str, &str) = (
    r"<nationalNumberPattern>9\d{9}</nationalNumberPattern>",
    r"<nationalNumberPattern>9\d{9}|300\d{7}</nationalNumberPattern>",
);

/// Plans loaded from XML text, as `normalize.metadata` loads a file.
fn load(xml: &str) -> PhoneMetadata {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), xml).expect("written");
    PhoneMetadata::load(file.path()).expect("the XML loads")
}

/// The built-in plans, the crate's XML loaded, and that XML with RU's new range.
static PLANS: LazyLock<[PhoneMetadata; 3]> = LazyLock::new(|| {
    let xml = crate_xml();
    assert_eq!(xml.matches(RU_MOBILE.0).count(), 1, "RU's mobile pattern");
    [
        PhoneMetadata::built_in(),
        load(&xml),
        load(&xml.replace(RU_MOBILE.0, RU_MOBILE.1)),
    ]
});

fn plans() -> impl Strategy<Value = PhoneMetadata> {
    select(PLANS.to_vec())
}

/// Every region the crate knows, sorted (non-geographic entities are no default region).
fn all_regions() -> Vec<Region> {
    let mut ids: Vec<&str> = DATABASE.iter().map(|m| m.id()).collect();
    ids.sort_unstable();
    ids.into_iter().filter_map(|id| id.parse().ok()).collect()
}

/// The regions this tool's users mostly run in, and some with unusual prefixes: the US (`1`
/// national prefix, `011`), Italy (national numbers keep their leading 0), Brazil and Argentina
/// (carrier codes, prefix transform rules), China, Israel, Japan.
const HOME_REGIONS: &[Region] = &[
    Region::RU,
    Region::KZ,
    Region::BY,
    Region::UA,
    Region::UZ,
    Region::DE,
    Region::IT,
    Region::US,
    Region::GB,
    Region::BR,
    Region::AR,
    Region::MX,
    Region::CN,
    Region::IL,
    Region::JP,
];

fn region() -> impl Strategy<Value = Region> {
    prop_oneof![3 => select(HOME_REGIONS), 1 => select(all_regions())]
}

/// A number's parts: country code, national number, the region's national prefix.
type Parts = (String, String, String);

/// Every example number of the crate's metadata, with its region's code and national prefix.
fn examples() -> Vec<Parts> {
    let mut all = Vec::new();
    for meta in DATABASE.iter() {
        let d = meta.descriptors();
        let typed = [d.mobile(), d.fixed_line(), d.toll_free(), d.voip(), d.uan()];
        for example in typed.into_iter().flatten().filter_map(|t| t.example()) {
            all.push((
                meta.country_code().to_string(),
                example.to_string(),
                meta.national_prefix().unwrap_or("0").to_string(),
            ));
        }
    }
    all.sort_unstable();
    all
}

fn codes() -> Vec<String> {
    let mut codes: Vec<String> = DATABASE
        .iter()
        .map(|m| m.country_code().to_string())
        .collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// Real numbers of every country, the same with a digit changed, added or lost, and random
/// digits after a real country code.
fn parts() -> impl Strategy<Value = Parts> {
    let examples = examples();
    let mutated = (
        select(examples.clone()),
        any::<Index>(),
        "[0-9]{0,2}",
        0..2usize,
    )
        .prop_map(|((code, national, np), at, digits, cut)| {
            let i = at.index(national.len() + 1);
            let end = (i + cut).min(national.len());
            let national = format!("{}{digits}{}", &national[..i], &national[end..]);
            (code, national, np)
        });
    // Vanity numbers: the last digits as letters (the crate maps them to keys).
    let vanity =
        (select(examples.clone()), "[A-Za-z]{1,7}").prop_map(|((code, national, np), word)| {
            let keep = national.len().saturating_sub(word.len());
            (code, format!("{}{word}", &national[..keep]), np)
        });
    prop_oneof![
        3 => select(examples),
        2 => mutated,
        1 => vanity,
        1 => (select(codes()), "[1-9][0-9]{3,12}", select(&["0", "8", "1"][..]))
            .prop_map(|(c, n, np)| (c, n, np.to_string())),
        1 => (select(codes()), "[0-9]{0,16}").prop_map(|(c, n)| (c, n, "8".to_string())),
        1 => "300[0-9]{6,8}".prop_map(|n| ("7".to_string(), n, "8".to_string())),
    ]
}

/// How the start of a number is typed: `{cc}` the country code, `{np}` the national prefix.
const PREFIXES: &[&str] = &[
    "+{cc} ",
    "+{cc}",
    "+{cc}-",
    "+{cc}(",
    "+ {cc} ",
    "(+{cc}) ",
    "+{cc} ({np}) ",
    "+{cc}{np}",
    "00{cc} ",
    "00 {cc} ",
    "00{cc}",
    "810{cc}",
    "8 10 {cc} ",
    "8-10-{cc}-",
    "011 {cc} ",
    "{cc} ",
    "{cc}",
    "{cc}-",
    "{np}",
    "{np} ",
    "{np}-",
    "({np})",
    "",
    "",
    "+0{cc}",
    "++{cc}",
    "+",
    "7",
    "8 ",
    "+7 ",
    "0",
    "(",
];

/// What people put between groups of digits (or what a word processor or a web form puts
/// there: every kind of space, hyphen, dash and minus, in ASCII or fullwidth); the last ones
/// are not readable.
const SEPARATORS: &[&str] = &[
    " ",
    " ",
    "-",
    "-",
    "",
    "",
    ".",
    "/",
    " - ",
    "  ",
    ") ",
    " (",
    "(",
    ")",
    "+",
    "-(",
    "–",
    "—",
    "\u{a0}",
    "\u{ad}",
    "\u{200b}",
    "\u{2010}",
    "\u{2011}",
    "\u{2012}",
    "\u{2015}",
    "\u{2053}",
    "\u{2060}",
    "\u{2212}",
    "\u{223c}",
    "\u{3000}",
    "\u{ff08}",
    "\u{ff09}",
    "\u{ff0d}",
    "\u{ff0e}",
    "\u{ff0f}",
    "\u{ff3b}",
    "\u{ff3d}",
    " \u{200b}",
    "\u{3000}(",
    ":",
    "_",
    "\t",
    "~",
    "\u{ff5e}",
    "\u{30fc}",
    "[",
];

/// Text people add to a number, readable or not.
const JUNK: &[&str] = &[
    " доб. ",
    "тел. ",
    "моб: ",
    " Иван",
    "ф",
    "№",
    ":",
    "+",
    " (жена)",
    "Ё",
    "тел.",
    "ї",
    "x",
    " ext. ",
    "#",
    ",",
    ";",
    "*",
    "a",
    "|",
    "\\",
    "O",
    "l",
    " x12",
    ", 2",
    "; 12",
    "/x",
    "tel:",
    ";ext=1",
    "٣",
    "\u{301}",
];

/// A number typed in a random layout, sometimes with junk in it.
fn typed() -> impl Strategy<Value = String> {
    (
        parts(),
        select(PREFIXES),
        proptest::collection::vec((1..=5usize, select(SEPARATORS)), 1..7),
        proptest::option::weighted(0.15, (any::<Index>(), select(JUNK))),
        select(&["", " ", "  ", "-", ".", ")", " +"][..]),
    )
        .prop_map(|((code, national, np), prefix, groups, junk, tail)| {
            let mut text = prefix.replace("{cc}", &code).replace("{np}", &np);
            let mut rest = national.as_str();
            for (len, separator) in groups {
                let (group, after) = rest.split_at(len.min(rest.len()));
                text.push_str(group);
                rest = after;
                if !rest.is_empty() {
                    text.push_str(separator);
                }
            }
            text.push_str(rest);
            text.push_str(tail);
            if let Some((at, junk)) = junk {
                let mut i = at.index(text.len() + 1);
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                text.insert_str(i, junk);
            }
            text
        })
}

/// Words people write before and after a number.
const BEFORE: &[&str] = &[
    "моб. ", "тел.", "тел: ", "Тел.:", "сот.", "№ ", "раб. ", "ф.", "", "tel. ", "Mob: ", "x ",
    "tel:", "TEL:", "Tel:+", "ab",
];
const AFTER: &[&str] = &[
    " (Иван)",
    " доб. 12",
    " доб.123",
    "доб",
    " жена",
    " - раб.",
    " :",
    "",
    ", 5",
    ",12",
    " ;3",
    ",-49",
    " WhatsApp",
    " ext. 12",
    " x12",
    " / x 3",
    "/x45",
    " EXT: 7",
    " int 1",
    " mob",
    "CALL",
    "abc",
    "-F1",
];

/// The zeros of some scripts' digits: fullwidth, Arabic-Indic, Eastern Arabic-Indic,
/// Devanagari, Bengali, mathematical bold.
const SCRIPT_ZEROS: &[char] = &['０', '٠', '۰', '०', '০', '𝟎'];

/// A typed number with its digits, or some of them, in another script.
fn in_a_script() -> impl Strategy<Value = String> {
    (typed(), select(SCRIPT_ZEROS), any::<bool>()).prop_map(|(text, zero, all)| {
        text.chars()
            .enumerate()
            .map(|(i, c)| match c.to_digit(10) {
                Some(d) if all || i % 3 == 0 => char::from_u32(zero as u32 + d).expect("a digit"),
                _ => c,
            })
            .collect()
    })
}

/// One number, with words around it, or two in a cell.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => typed(),
        1 => in_a_script(),
        1 => (select(BEFORE), typed(), select(AFTER)).prop_map(|(b, n, a)| format!("{b}{n}{a}")),
        1 => (typed(), select(&[", ", ",", "; ", " / ", "/", " | ", "\n"][..]), typed())
            .prop_map(|(a, s, b)| format!("{a}{s}{b}")),
    ]
}

fn check(region: Region, plans: PhoneMetadata, raw: &str) -> Result<(), TestCaseError> {
    let n = Normalizer::new(region, plans);
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(());
    }
    let want = n.crate_path(raw);
    match n.fast_path(raw) {
        Some(got) => prop_assert_eq!(got, want, "{:?} in {:?}", raw, region),
        None => prop_assert!(
            !readable(raw),
            "{raw:?} in {region:?} is readable and was left to the crate"
        ),
    }
    prop_assert_eq!(n.normalize(raw), want, "{:?} in {:?}", raw, region);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6_000))]

    #[test]
    fn typed_numbers_read_as_the_crate_reads_them(
        region in region(),
        plans in plans(),
        raw in cell(),
    ) {
        check(region, plans, &raw)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn plain_text_reads_as_the_crate_reads_it(
        region in region(),
        raw in "[0-9 ()./+-]{0,24}",
    ) {
        check(region, PhoneMetadata::built_in(), &raw)?;
    }

    #[test]
    fn any_text_reads_as_the_crate_reads_it(region in region(), raw in "\\PC{0,20}") {
        check(region, PhoneMetadata::built_in(), &raw)?;
    }
}

/// The crate's readings that may surprise, kept because the crate is the reference (but for
/// its national-prefix step, which is libphonenumber's: see the next test).
#[test]
fn the_crate_s_quirks_are_kept() {
    let valid = |n: u64| Normalized::Valid(E164(n));
    let cases: &[(Region, &str, Normalized)] = &[
        (Region::RU, "8 916 123-45-67", valid(79161234567)),
        (Region::RU, "+7-916-123-4567", valid(79161234567)),
        // Without spaces a `+` number is read as RFC 3966: the country code runs to the first
        // separator, and 7916 is none.
        (Region::RU, "+7916-123-45-67", Normalized::Invalid),
        (Region::RU, "+7916 123-45-67", valid(79161234567)),
        // 00 is an international prefix in Germany (in Russia it is 8 10: see the next test).
        (Region::DE, "00375 29 123-45-67", valid(375291234567)),
        // `,` or `;` and up to 7 digits at the end are an extension, not a second number.
        (Region::RU, "4992923461, 5", valid(74992923461)),
        (Region::RU, "+7 495 123-45-67", valid(74951234567)),
        // Latin letters are keys on a phone's pad.
        (Region::RU, "+7 916 FLOWERS", valid(79163569377)),
        // `tel:` makes the text RFC 3966, where the country code runs to the first separator.
        (Region::RU, "tel:+7-916-123-45-67", valid(79161234567)),
        (Region::RU, "tel:+7916-123-45-67", Normalized::Invalid),
        // A slash, spaces and `x` start a second number.
        (Region::RU, "8 916/123-45-67 / xyz", valid(79161234567)),
        (Region::RU, "123", Normalized::Invalid),
    ];
    assert_readings(cases);
}

/// Each case read by the reference and by the fast path with the built-in plans.
fn assert_readings(cases: &[(Region, &str, Normalized)]) {
    for &(region, raw, want) in cases {
        let n = Normalizer::new(region, PhoneMetadata::built_in());
        let reference = n.crate_path(raw);
        assert_eq!(reference, want, "the reference on {raw:?} in {region:?}");
        assert_eq!(n.fast_path(raw), Some(want), "{raw:?} in {region:?}");
    }
}

/// National prefixes as libphonenumber's `PhoneNumberUtil` reads them
/// (`maybeStripNationalPrefixAndCarrierCode`: a prefix goes only when the number was not
/// viable without stripping or still is after, and what is left has a possible length;
/// `parseHelper`: with the metadata of the number's own country code), where the `phonenumber`
/// crate read them otherwise (it strips RU's 8 from every number, twice, with the default
/// region's prefix whatever the country code).
#[test]
fn national_prefixes_read_as_libphonenumber_reads_them() {
    let valid = |n: u64| Normalized::Valid(E164(n));
    let cases: &[(Region, &str, Normalized)] = &[
        // St. Petersburg, Kazan, toll-free: their national number starts with 8, the prefix.
        (Region::RU, "+7 812 123-45-67", valid(78121234567)),
        (Region::RU, "+7 (812) 1234567", valid(78121234567)),
        (Region::RU, "78121234567", valid(78121234567)),
        (Region::RU, "8121234567", valid(78121234567)),
        (Region::RU, "8 (812) 123-45-67", valid(78121234567)),
        (Region::RU, "+7 843 123-45-67", valid(78431234567)),
        (Region::RU, "8 843 123 45 67", valid(78431234567)),
        (Region::RU, "8 (800) 555-35-35", valid(78005553535)),
        (Region::RU, "+7 800 555-35-35", valid(78005553535)),
        (Region::KZ, "+7 812 123-45-67", valid(78121234567)),
        (Region::DE, "+7 812 123-45-67", valid(78121234567)),
        // A Moscow mobile, however written.
        (Region::RU, "+7 916 123-45-67", valid(79161234567)),
        (Region::RU, "8 916 123-45-67", valid(79161234567)),
        (Region::RU, "+7 8 916 123 45 67", valid(79161234567)),
        // RU's international prefix is 8 10; 00 is none there.
        (Region::RU, "8 10 375 29 123-45-67", valid(375291234567)),
        (Region::RU, "00375 29 123-45-67", Normalized::Invalid),
        // Other countries' national prefixes after their country code: the UK's 0 goes, Italy
        // has none and keeps its leading 0, Germany's 0 goes.
        (Region::RU, "+44 (0)121 234 5678", valid(441212345678)),
        (Region::RU, "+44 0121 234 5678", valid(441212345678)),
        (Region::GB, "0121 234 5678", valid(441212345678)),
        (Region::RU, "+39 02 1234 5678", valid(390212345678)),
        (Region::IT, "02 1234 5678", valid(390212345678)),
        (Region::RU, "+49 030 123456", valid(4930123456)),
        (Region::DE, "030 123456", valid(4930123456)),
        (Region::RU, "8 (800)", Normalized::Invalid),
    ];
    assert_readings(cases);
}

/// A number in a range only the edited plans open: invalid with the built-in plans and the
/// crate's XML, valid with the edited copy, the same in both paths and every layout.
#[test]
fn a_range_opened_in_a_loaded_file_is_valid_in_both_paths() {
    let new = Normalized::Valid(E164(73001234567));
    let old = Normalized::Invalid;
    let [built_in, crate_xml, edited] = *PLANS;
    for raw in [
        "+7 300 123-45-67",
        "8 (300) 123 45 67",
        "3001234567",
        "73001234567",
    ] {
        for (plans, want) in [(built_in, old), (crate_xml, old), (edited, new)] {
            let n = Normalizer::new(Region::RU, plans);
            assert_eq!(
                n.crate_path(raw),
                want,
                "the crate on {raw:?} with {plans:?}"
            );
            assert_eq!(n.fast_path(raw), Some(want), "{raw:?} with {plans:?}");
            assert_eq!(n.normalize(raw), want, "{raw:?} with {plans:?}");
        }
    }
}

/// The crate's XML loaded reads every example number of every region as the built-in plans
/// (built from the same XML) do.
#[test]
fn the_crate_s_xml_loaded_reads_as_the_built_in_plans() {
    let [built_in, crate_xml, _] = *PLANS;
    for (code, national, np) in examples() {
        for raw in [format!("+{code} {national}"), format!("{np}{national}")] {
            for region in &[Region::RU, Region::IT, Region::US, Region::BR] {
                let (a, b) = (
                    Normalizer::new(*region, built_in),
                    Normalizer::new(*region, crate_xml),
                );
                assert_eq!(
                    a.crate_path(&raw),
                    b.crate_path(&raw),
                    "{raw:?} in {region:?}"
                );
                assert_eq!(
                    a.fast_path(&raw),
                    b.fast_path(&raw),
                    "{raw:?} in {region:?}"
                );
            }
        }
    }
}
