//! The sandbox's operator data: a deterministic answer for every number, derived from the
//! number alone (Russian mobile operators with MCC 250, regions with their UTC offsets, some
//! neighbouring countries, a share of "operator not found"), so every sandbox answers alike.

use crate::normalize::E164;
use crate::provider::OperatorInfo;

/// A stable 64-bit mix of the number (splitmix64), so answers never depend on request order.
pub(super) fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Country {
    /// E.164 prefix (country code, or `7` plus the leading digit for Russia/Kazakhstan).
    prefix: &'static str,
    name: &'static str,
    mcc: u16,
    operators: &'static [(&'static str, &'static str)],
    regions: &'static [(&'static str, i8)],
}

const COUNTRIES: &[Country] = &[
    Country {
        prefix: "79",
        name: "Россия",
        mcc: 250,
        operators: &[
            ("МТС", "01"),
            ("МегаФон", "02"),
            ("Билайн", "99"),
            ("Tele2", "20"),
            ("Yota", "11"),
            ("Т-Мобайл", "62"),
            ("Мотив", "35"),
        ],
        regions: &[
            ("Москва", 3),
            ("Московская область", 3),
            ("Санкт-Петербург", 3),
            ("Краснодарский край", 3),
            ("Республика Татарстан", 3),
            ("Калининградская область", 2),
            ("Самарская область", 4),
            ("Свердловская область", 5),
            ("Республика Башкортостан", 5),
            ("Омская область", 6),
            ("Новосибирская область", 7),
            ("Красноярский край", 7),
            ("Иркутская область", 8),
            ("Республика Саха (Якутия)", 9),
            ("Приморский край", 10),
            ("Магаданская область", 11),
            ("Камчатский край", 12),
        ],
    },
    Country {
        prefix: "77",
        name: "Казахстан",
        mcc: 401,
        operators: &[
            ("Beeline KZ", "01"),
            ("Kcell", "02"),
            ("Altel", "07"),
            ("Tele2 KZ", "77"),
        ],
        regions: &[
            ("Алматы", 5),
            ("Астана", 5),
            ("Шымкент", 5),
            ("Актюбинская область", 5),
        ],
    },
    Country {
        prefix: "375",
        name: "Беларусь",
        mcc: 257,
        operators: &[("A1", "01"), ("МТС", "02"), ("life:)", "04")],
        regions: &[
            ("Минск", 3),
            ("Гомельская область", 3),
            ("Брестская область", 3),
        ],
    },
    Country {
        prefix: "380",
        name: "Украина",
        mcc: 255,
        operators: &[
            ("Vodafone Украина", "01"),
            ("Киевстар", "03"),
            ("lifecell", "06"),
        ],
        regions: &[
            ("Киев", 2),
            ("Львовская область", 2),
            ("Одесская область", 2),
        ],
    },
    Country {
        prefix: "998",
        name: "Узбекистан",
        mcc: 434,
        operators: &[("Beeline UZ", "04"), ("Ucell", "05"), ("Mobiuz", "07")],
        regions: &[("Ташкент", 5), ("Самаркандская область", 5)],
    },
    Country {
        prefix: "374",
        name: "Армения",
        mcc: 283,
        operators: &[("Beeline AM", "01"), ("Viva", "05")],
        regions: &[("Ереван", 4)],
    },
    Country {
        prefix: "995",
        name: "Грузия",
        mcc: 282,
        operators: &[("Geocell", "01"), ("Magti", "02")],
        regions: &[("Тбилиси", 4)],
    },
    Country {
        prefix: "996",
        name: "Кыргызстан",
        mcc: 437,
        operators: &[("Beeline KG", "01"), ("MegaCom", "05"), ("O!", "09")],
        regions: &[("Бишкек", 6)],
    },
];

/// What the sandbox answers for a number: `None` is "operator not found".
pub fn operator_of(number: E164, not_found_percent: u8) -> Option<OperatorInfo> {
    let digits = number.to_string();
    let country = COUNTRIES.iter().find(|c| digits.starts_with(c.prefix))?;
    let h = mix(number.0);
    if (h % 100) < not_found_percent as u64 {
        return None;
    }
    let (operator, mnc) = country.operators[((h >> 8) % country.operators.len() as u64) as usize];
    let (region, tz) = country.regions[((h >> 24) % country.regions.len() as u64) as usize];
    Some(OperatorInfo {
        country: country.name.into(),
        operator: operator.into(),
        region: region.into(),
        mcc: Some(country.mcc),
        mnc: mnc.into(),
        tz: Some(tz),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_deterministic_and_plausible() {
        let cases: &[(u64, Option<(&str, u16)>)] = &[
            (79161234567, Some(("Россия", 250))),
            (77011234567, Some(("Казахстан", 401))),
            (375291234567, Some(("Беларусь", 257))),
            (380671234567, Some(("Украина", 255))),
            (74951234567, None),
            (12025550123, None),
        ];
        for (n, want) in cases {
            let got = operator_of(E164(*n), 0);
            assert_eq!(
                got.as_ref().map(|i| (i.country.as_str(), i.mcc.unwrap())),
                *want,
                "{n}"
            );
            assert_eq!(got, operator_of(E164(*n), 0));
        }
    }

    #[test]
    fn not_found_share_follows_the_setting() {
        let total = 20_000u64;
        let missing = (0..total)
            .filter(|i| operator_of(E164(79_000_000_000 + i * 7919), 3).is_none())
            .count() as f64;
        let share = missing / total as f64;
        assert!((0.02..0.04).contains(&share), "{share}");
    }
}
