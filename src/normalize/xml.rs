//! libphonenumber's `PhoneNumberMetadata.xml` read into the form `rlibphonenumber` runs on.
//!
//! Contract: [`collection`] turns the XML into a [`PhoneMetadataCollection`] as libphonenumber's
//! own build (`BuildMetadataFromXml`) turns it into its binary metadata, for everything reading
//! a number uses: a territory's attributes (country code, international prefix, national
//! prefix and the patterns to strip it, leading digits, main country for its code), its number
//! descriptions with their patterns (whitespace removed) and possible lengths, the general
//! description's lengths derived from every description but `noInternationalDialling`, an
//! absent description as one that never matches (its length `-1`), and every pattern wrapped
//! as `^(?:…)$`, the form `rlibphonenumber`'s own metadata keeps. Number formats, which only
//! formatting reads, are left out. An XML that is not such a file is an `Err` with the reason;
//! [`check_patterns`] says whether every pattern parses as a regex.

use std::collections::BTreeSet;

use quick_xml::events::Event;
use rlibphonenumber::{PhoneMetadata, PhoneMetadataCollection, PhoneNumberDesc};

/// One XML element, its attributes, its text and its children.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every descendant named `name`, depth first (the DOM's `getElementsByTagName`).
    fn descendants<'a>(&'a self, name: &'a str, out: &mut Vec<&'a Element>) {
        for child in &self.children {
            if child.name == name {
                out.push(child);
            }
            child.descendants(name, out);
        }
    }
}

/// The XML as a tree of elements (comments and declarations dropped).
fn tree(bytes: &[u8]) -> Result<Element, String> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut stack = vec![Element::default()];
    let mut buffer = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buffer)
            .map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(start) | Event::Empty(start) => {
                let mut element = Element {
                    name: String::from_utf8_lossy(start.name().as_ref()).into_owned(),
                    ..Element::default()
                };
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|e| e.to_string())?;
                    let value = attribute.unescape_value().map_err(|e| e.to_string())?;
                    let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
                    element.attributes.push((key, value.into_owned()));
                }
                if empty {
                    stack.last_mut().expect("the root").children.push(element);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                let element = stack.pop().expect("quick-xml checks end tags");
                stack
                    .last_mut()
                    .ok_or("an end tag without its start")?
                    .children
                    .push(element);
            }
            Event::Text(text) => {
                let text = text.decode().map_err(|e| e.to_string())?;
                stack.last_mut().expect("the root").text.push_str(&text);
            }
            Event::CData(text) => {
                let text = text.decode().map_err(|e| e.to_string())?;
                stack.last_mut().expect("the root").text.push_str(&text);
            }
            Event::GeneralRef(reference) => {
                let name = reference.decode().map_err(|e| e.to_string())?;
                let c = match reference.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c,
                    None => predefined_entity(&name).ok_or(format!("unknown entity &{name};"))?,
                };
                stack.last_mut().expect("the root").text.push(c);
            }
            Event::Eof => break,
            _ => {}
        }
        buffer.clear();
    }
    match stack.len() {
        1 => Ok(stack.pop().expect("the root")),
        _ => Err("the file ends inside an element".into()),
    }
}

fn predefined_entity(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => return None,
    })
}

/// The metadata of every `<territory>` under `<phoneNumberMetadata><territories>`.
pub(super) fn collection(bytes: &[u8]) -> Result<PhoneMetadataCollection, String> {
    let root = tree(bytes)?;
    let territories = root
        .child("phoneNumberMetadata")
        .and_then(|m| m.child("territories"))
        .map(|t| {
            t.children
                .iter()
                .filter(|c| c.name == "territory")
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if territories.is_empty() {
        return Err("no <territory> under <phoneNumberMetadata><territories>".into());
    }
    let metadata = territories
        .into_iter()
        .map(territory)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PhoneMetadataCollection { metadata })
}

/// Every pattern of the collection parses as a regex (as `rlibphonenumber` compiles it, with
/// Unicode classes); the error names the territory and the pattern. Parsing, not compiling:
/// a file's thousands of patterns are checked in milliseconds, and each is compiled on first
/// use.
#[allow(deprecated)] // The patterns are rlibphonenumber's input, as its docs say.
pub(super) fn check_patterns(collection: &PhoneMetadataCollection) -> Result<(), String> {
    for t in &collection.metadata {
        let descs = [
            &t.general_desc,
            &t.fixed_line,
            &t.mobile,
            &t.toll_free,
            &t.premium_rate,
            &t.shared_cost,
            &t.personal_number,
            &t.voip,
            &t.pager,
            &t.uan,
            &t.voicemail,
            &t.no_international_dialling,
        ];
        let patterns = descs
            .into_iter()
            .flatten()
            .filter_map(|d| d.national_number_pattern.as_ref())
            .chain(&t.leading_digits)
            .chain(&t.international_prefix)
            .chain(&t.national_prefix_for_parsing);
        for pattern in patterns {
            regex_syntax::Parser::new()
                .parse(pattern)
                .map_err(|e| format!("territory {}: pattern {pattern:?}: {e}", t.id))?;
        }
    }
    Ok(())
}

/// The descriptions of number types, by element name, as `setRelevantDescPatterns` reads them.
const TYPES: [&str; 11] = [
    "fixedLine",
    "mobile",
    "tollFree",
    "premiumRate",
    "sharedCost",
    "personalNumber",
    "voip",
    "pager",
    "uan",
    "voicemail",
    "noInternationalDialling",
];

/// `buildPhoneMetadataFromElement` for a territory of the main metadata (not short numbers).
#[allow(deprecated)] // The wrapped fields are `rlibphonenumber`'s input, as its docs say.
fn territory(element: &Element) -> Result<PhoneMetadata, String> {
    let id = element.attribute("id").unwrap_or("?").to_string();
    let wrong = |what: String| format!("territory {id}: {what}");
    let country_code = match element.attribute("countryCode") {
        Some(code) => Some(
            code.parse::<i32>()
                .ok()
                .filter(|c| (1..1000).contains(c))
                .ok_or_else(|| wrong(format!("country code {code:?} is not 1 to 999")))?,
        ),
        None => return Err(wrong("no countryCode".into())),
    };
    let general = element
        .child("generalDesc")
        .ok_or_else(|| wrong("has no <generalDesc>".into()))?;
    let national_prefix = element.attribute("nationalPrefix").map(str::to_string);
    let mut national_prefix_for_parsing = element
        .attribute("nationalPrefixForParsing")
        .map(|p| wrap(&without_whitespace(p)));
    let transform = national_prefix_for_parsing
        .as_ref()
        .and(element.attribute("nationalPrefixTransformRule"))
        .map(str::to_string);
    if national_prefix_for_parsing.is_none() {
        national_prefix_for_parsing = national_prefix.as_deref().map(wrap);
    }
    let general_desc = general_desc(element, general).map_err(&wrong)?;
    let mut descs = Vec::with_capacity(TYPES.len());
    for name in TYPES {
        descs.push(
            desc(element.child(name), &general_desc).map_err(|e| wrong(format!("{name}: {e}")))?,
        );
    }
    let [fixed_line, mobile, toll_free, premium_rate, shared_cost, personal_number, voip, pager, uan, voicemail, no_international_dialling] =
        <[PhoneNumberDesc; 11]>::try_from(descs).expect("one per type");
    let same_mobile_and_fixed_line_pattern =
        mobile.national_number_pattern == fixed_line.national_number_pattern;
    Ok(PhoneMetadata {
        id,
        country_code,
        international_prefix: element.attribute("internationalPrefix").map(wrap),
        preferred_international_prefix: element
            .attribute("preferredInternationalPrefix")
            .map(str::to_string),
        national_prefix,
        preferred_extn_prefix: element.attribute("preferredExtnPrefix").map(str::to_string),
        national_prefix_for_parsing,
        national_prefix_transform_rule: transform,
        main_country_for_code: element.attribute("mainCountryForCode").map(|_| true),
        mobile_number_portable_region: element
            .attribute("mobileNumberPortableRegion")
            .map(|_| true),
        leading_digits: element.attribute("leadingDigits").map(wrap),
        same_mobile_and_fixed_line_pattern: Some(same_mobile_and_fixed_line_pattern),
        general_desc: Some(general_desc),
        fixed_line: Some(fixed_line),
        mobile: Some(mobile),
        toll_free: Some(toll_free),
        premium_rate: Some(premium_rate),
        shared_cost: Some(shared_cost),
        personal_number: Some(personal_number),
        voip: Some(voip),
        pager: Some(pager),
        uan: Some(uan),
        voicemail: Some(voicemail),
        no_international_dialling: Some(no_international_dialling),
        ..PhoneMetadata::default()
    })
}

/// `setPossibleLengthsGeneralDesc`: the general description's pattern, with the lengths of
/// every other description but `noInternationalDialling` (the XML lists none for it).
#[allow(deprecated)] // The pattern is rlibphonenumber's input, as its docs say.
fn general_desc(territory: &Element, general: &Element) -> Result<PhoneNumberDesc, String> {
    let mut lengths = BTreeSet::new();
    let mut local = BTreeSet::new();
    lengths_of(general, &mut lengths, &mut local)?;
    if !lengths.is_empty() || !local.is_empty() {
        return Err("<generalDesc> lists possible lengths".into());
    }
    for child in territory
        .children
        .iter()
        .filter(|c| c.name != "noInternationalDialling")
    {
        lengths_of(child, &mut lengths, &mut local)?;
    }
    Ok(PhoneNumberDesc {
        national_number_pattern: Some(pattern(general)?),
        possible_length: lengths.iter().copied().collect(),
        possible_length_local_only: local.difference(&lengths).copied().collect(),
        ..PhoneNumberDesc::default()
    })
}

/// `processPhoneNumberDescElement` with the general description as parent: an absent
/// description never matches (length `-1`); a present one keeps its own lengths (the general
/// ones when it lists the same: libphonenumber leaves the list empty then, which means the
/// same), each of which the general description must have.
#[allow(deprecated)] // The pattern is rlibphonenumber's input, as its docs say.
fn desc(element: Option<&Element>, general: &PhoneNumberDesc) -> Result<PhoneNumberDesc, String> {
    let Some(element) = element else {
        return Ok(PhoneNumberDesc {
            possible_length: vec![-1],
            ..PhoneNumberDesc::default()
        });
    };
    let mut lengths = BTreeSet::new();
    let mut local = BTreeSet::new();
    lengths_of(element, &mut lengths, &mut local)?;
    if let Some(length) = lengths
        .iter()
        .find(|l| !general.possible_length.contains(l))
    {
        return Err(format!(
            "length {length} is not one of the general description's"
        ));
    }
    let local = local.difference(&lengths).copied().collect::<Vec<_>>();
    let same = lengths
        .iter()
        .copied()
        .eq(general.possible_length.iter().copied());
    Ok(PhoneNumberDesc {
        national_number_pattern: Some(pattern(element)?),
        possible_length: if same {
            Vec::new()
        } else {
            lengths.into_iter().collect()
        },
        possible_length_local_only: local,
        example_number: element
            .child("exampleNumber")
            .map(|e| e.text.trim().to_string()),
    })
}

/// A description's `<nationalNumberPattern>`, whitespace removed, wrapped.
fn pattern(element: &Element) -> Result<String, String> {
    let pattern = element
        .child("nationalNumberPattern")
        .ok_or_else(|| format!("<{}> without <nationalNumberPattern>", element.name))?;
    Ok(wrap(&without_whitespace(&pattern.text)))
}

/// `populatePossibleLengthSets`: the `national` and `localOnly` lengths of every
/// `<possibleLengths>` under `element`.
fn lengths_of(
    element: &Element,
    lengths: &mut BTreeSet<i32>,
    local: &mut BTreeSet<i32>,
) -> Result<(), String> {
    let mut found = Vec::new();
    element.descendants("possibleLengths", &mut found);
    if element.name == "possibleLengths" {
        found.push(element);
    }
    for tag in found {
        let national = parse_lengths(tag.attribute("national").unwrap_or(""))?;
        if let Some(only) = tag.attribute("localOnly") {
            let only = parse_lengths(only)?;
            if only.iter().any(|l| national.contains(l)) {
                return Err("a length is both national and local only".into());
            }
            local.extend(only);
        }
        lengths.extend(national);
    }
    Ok(())
}

/// `parsePossibleLengthStringToSet`: `4,7,[9-11]`.
fn parse_lengths(text: &str) -> Result<BTreeSet<i32>, String> {
    let bad = || format!("possible lengths {text:?}");
    let mut set = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
            Some(range) => {
                let (low, high) = range.split_once('-').ok_or_else(bad)?;
                let low: i32 = low.trim().parse().map_err(|_| bad())?;
                let high: i32 = high.trim().parse().map_err(|_| bad())?;
                if low >= high {
                    return Err(bad());
                }
                set.extend(low..=high);
            }
            None => {
                set.insert(part.parse().map_err(|_| bad())?);
            }
        }
    }
    if set.iter().any(|&l| !(1..64).contains(&l)) {
        return Err(bad());
    }
    Ok(set)
}

fn without_whitespace(pattern: &str) -> String {
    pattern.chars().filter(|c| !c.is_whitespace()).collect()
}

/// A pattern in the form `rlibphonenumber` keeps every pattern in.
fn wrap(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_read_as_libphonenumber_reads_them() {
        assert_eq!(
            parse_lengths("4,7,[9-11]")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![4, 7, 9, 10, 11]
        );
        assert!(parse_lengths("[9-9]").is_err());
        assert!(parse_lengths("x").is_err());
        assert!(parse_lengths("70").is_err());
    }
}
