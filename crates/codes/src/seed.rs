//! The lists shipped with the platform, loaded into an empty store at first start.
//!
//! Sources and licences: see `data/README.md` (administrative units derived
//! from `vietnamadminunits` 1.0.4, MIT License, Copyright (c) 2025 Tran Ngoc
//! Minh Hieu; ethnic groups: public facts of the General Statistics Office).

use std::collections::BTreeMap;

use lgsp_store::{
    CodeItemRow, CodeListRow, CodeMappingRow, CodeVersionRow, NewCodeVersion, Store, StoreError,
};
use serde::Deserialize;
use serde_json::json;

const UNITS_LEGACY: &str = include_str!("../../../data/admin-units/units-legacy.csv");
const UNITS_2025: &str = include_str!("../../../data/admin-units/units-2025.csv");
const MAPPING_2025: &str = include_str!("../../../data/admin-units/mapping-2025.csv");
const ETHNIC_GROUPS: &str = include_str!("../../../data/ethnic-groups.csv");
const COUNTRIES: &str = include_str!("../../../data/countries.csv");

pub const ADMIN_UNITS: &str = "dvhc";
pub const ETHNIC: &str = "dantoc";
pub const COUNTRIES_LIST: &str = "quocgia";
pub const SEX: &str = "gioitinh";
const REFORM_DATE: &str = "2025-07-01";

const ADMIN_UNITS_SOURCE: &str = "Derived from the PyPI package vietnamadminunits 1.0.4 \
     (MIT License, Copyright (c) 2025 Tran Ngoc Minh Hieu), General Statistics Office coding.";

/// Loads every shipped list the store does not have yet. Returns how many were added.
pub async fn seed_builtin_lists(
    store: &Store,
    owner_unit: Option<&str>,
    now: &str,
) -> Result<usize, StoreError> {
    let mut added = 0;
    if !store.code_list_exists(ADMIN_UNITS).await? {
        let (list, versions) = admin_units(owner_unit, now);
        store.insert_code_list(&list, &versions).await?;
        added += 1;
    }
    type Builder = fn(Option<&str>, &str) -> (CodeListRow, Vec<NewCodeVersion>);
    let lists: [(&str, Builder); 3] = [
        (ETHNIC, ethnic_groups),
        (COUNTRIES_LIST, countries),
        (SEX, sexes),
    ];
    for (id, build) in lists {
        if !store.code_list_exists(id).await? {
            let (list, versions) = build(owner_unit, now);
            store.insert_code_list(&list, &versions).await?;
            added += 1;
        }
    }
    Ok(added)
}

#[derive(Deserialize)]
struct LegacyRow {
    province_code: String,
    province_name: String,
    district_code: String,
    district_name: String,
    district_type: String,
    ward_code: String,
    ward_name: String,
    ward_type: String,
}

#[derive(Deserialize)]
struct NewRow {
    province_code: String,
    province_name: String,
    ward_code: String,
    ward_name: String,
    ward_type: String,
}

#[derive(Deserialize)]
struct MappingRow {
    old_ward_code: String,
    new_ward_code: String,
    kind: String,
    is_default: u8,
}

#[derive(Deserialize)]
struct CountryRow {
    alpha_2: String,
    alpha_3: String,
    numeric: String,
    name_en: String,
    name_vi: String,
}

#[derive(Deserialize)]
struct EthnicRow {
    code: String,
    name: String,
    other_spellings: String,
}

fn rows<T: for<'de> Deserialize<'de> + 'static>(csv_text: &'static str) -> impl Iterator<Item = T> {
    csv::Reader::from_reader(csv_text.as_bytes())
        .into_deserialize()
        .map(|row| row.expect("shipped CSV files are well-formed"))
}

fn province_type(name: &str) -> &'static str {
    if name.starts_with("Thành phố") {
        "Thành phố"
    } else {
        "Tỉnh"
    }
}

/// Collects items by code so that a province or district appears once.
struct Items {
    list: &'static str,
    version: &'static str,
    items: BTreeMap<String, CodeItemRow>,
}

impl Items {
    fn new(list: &'static str, version: &'static str) -> Items {
        Items {
            list,
            version,
            items: BTreeMap::new(),
        }
    }

    fn add(
        &mut self,
        code: &str,
        name: &str,
        parent: Option<&str>,
        level: i64,
        attributes: serde_json::Value,
    ) {
        if code.is_empty() || self.items.contains_key(code) {
            return;
        }
        self.items.insert(
            code.to_owned(),
            CodeItemRow {
                list_id: self.list.to_owned(),
                version: self.version.to_owned(),
                code: code.to_owned(),
                name: name.to_owned(),
                parent_code: parent.map(str::to_owned),
                level,
                attributes: attributes.to_string(),
            },
        );
    }

    fn into_rows(self) -> Vec<CodeItemRow> {
        self.items.into_values().collect()
    }
}

fn admin_units(owner_unit: Option<&str>, now: &str) -> (CodeListRow, Vec<NewCodeVersion>) {
    let list = CodeListRow {
        id: ADMIN_UNITS.to_owned(),
        name: "Danh mục đơn vị hành chính Việt Nam".to_owned(),
        name_en: "Administrative units of Viet Nam".to_owned(),
        owner_unit: owner_unit.map(str::to_owned),
        description: "Tỉnh, huyện, xã theo mã của Tổng cục Thống kê; từ 01/07/2025 chỉ còn tỉnh và xã."
            .to_owned(),
        legal_basis: "Quyết định 124/2004/QĐ-TTg; Nghị quyết 202/2025/QH15 và các nghị quyết sắp xếp đơn vị hành chính năm 2025".to_owned(),
        source: ADMIN_UNITS_SOURCE.to_owned(),
    };

    let mut legacy = Items::new(ADMIN_UNITS, "legacy");
    for r in rows::<LegacyRow>(UNITS_LEGACY) {
        legacy.add(
            &r.province_code,
            &r.province_name,
            None,
            1,
            json!({"type": province_type(&r.province_name)}),
        );
        legacy.add(
            &r.district_code,
            &r.district_name,
            Some(&r.province_code),
            2,
            json!({"type": r.district_type}),
        );
        legacy.add(
            &r.ward_code,
            &r.ward_name,
            Some(&r.district_code),
            3,
            json!({"type": r.ward_type}),
        );
    }

    let mut current = Items::new(ADMIN_UNITS, "2025");
    for r in rows::<NewRow>(UNITS_2025) {
        current.add(
            &r.province_code,
            &r.province_name,
            None,
            1,
            json!({"type": province_type(&r.province_name)}),
        );
        current.add(
            &r.ward_code,
            &r.ward_name,
            Some(&r.province_code),
            2,
            json!({"type": r.ward_type}),
        );
    }

    let mappings = rows::<MappingRow>(MAPPING_2025)
        .map(|m| CodeMappingRow {
            list_id: ADMIN_UNITS.to_owned(),
            from_version: "legacy".to_owned(),
            to_version: "2025".to_owned(),
            old_code: m.old_ward_code,
            new_code: m.new_ward_code,
            kind: m.kind,
            is_default: m.is_default == 1,
        })
        .collect();

    let versions = vec![
        NewCodeVersion {
            version: version_row(ADMIN_UNITS, "legacy", None, Some(REFORM_DATE), now),
            items: legacy.into_rows(),
            mappings: Vec::new(),
        },
        NewCodeVersion {
            version: version_row(ADMIN_UNITS, "2025", Some(REFORM_DATE), None, now),
            items: current.into_rows(),
            mappings,
        },
    ];
    (list, versions)
}

fn ethnic_groups(owner_unit: Option<&str>, now: &str) -> (CodeListRow, Vec<NewCodeVersion>) {
    let list = CodeListRow {
        id: ETHNIC.to_owned(),
        name: "Danh mục các dân tộc Việt Nam".to_owned(),
        name_en: "Ethnic groups of Viet Nam".to_owned(),
        owner_unit: owner_unit.map(str::to_owned),
        description: "54 dân tộc với mã của Tổng cục Thống kê.".to_owned(),
        legal_basis: "Quyết định 121-TCTK/PPCĐ ngày 02/3/1979 của Tổng cục Thống kê".to_owned(),
        source: "General Statistics Office of Viet Nam, list of 1979 (public facts).".to_owned(),
    };
    let mut items = Items::new(ETHNIC, "1979");
    for r in rows::<EthnicRow>(ETHNIC_GROUPS) {
        let others: Vec<&str> = r
            .other_spellings
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        items.add(
            &r.code,
            &r.name,
            None,
            1,
            json!({"other_spellings": others}),
        );
    }
    let versions = vec![NewCodeVersion {
        version: version_row(ETHNIC, "1979", Some("1979-03-02"), None, now),
        items: items.into_rows(),
        mappings: Vec::new(),
    }];
    (list, versions)
}

fn countries(owner_unit: Option<&str>, now: &str) -> (CodeListRow, Vec<NewCodeVersion>) {
    let list = CodeListRow {
        id: COUNTRIES_LIST.to_owned(),
        name: "Danh mục quốc gia và vùng lãnh thổ".to_owned(),
        name_en: "Countries and territories (ISO 3166-1)".to_owned(),
        owner_unit: owner_unit.map(str::to_owned),
        description: "Mã hai chữ cái ISO 3166-1, kèm mã ba chữ cái, mã số và tên tiếng Anh."
            .to_owned(),
        legal_basis: "ISO 3166-1".to_owned(),
        source: "Debian iso-codes 4.15.0 (LGPL-2.1+), with its Vietnamese translation.".to_owned(),
    };
    let mut items = Items::new(COUNTRIES_LIST, "iso-codes-4.15");
    for r in rows::<CountryRow>(COUNTRIES) {
        let attributes = json!({"alpha_3": r.alpha_3, "numeric": r.numeric, "name_en": r.name_en, "other_spellings": [r.name_en]});
        items.add(&r.alpha_2, &r.name_vi, None, 1, attributes);
    }
    let versions = vec![NewCodeVersion {
        version: version_row(COUNTRIES_LIST, "iso-codes-4.15", None, None, now),
        items: items.into_rows(),
        mappings: Vec::new(),
    }];
    (list, versions)
}

/// ISO/IEC 5218 codes, which Vietnamese population records also use.
fn sexes(owner_unit: Option<&str>, now: &str) -> (CodeListRow, Vec<NewCodeVersion>) {
    let list = CodeListRow {
        id: SEX.to_owned(),
        name: "Danh mục giới tính".to_owned(),
        name_en: "Sex (ISO/IEC 5218)".to_owned(),
        owner_unit: owner_unit.map(str::to_owned),
        description: "0 chưa xác định, 1 nam, 2 nữ, 9 không áp dụng.".to_owned(),
        legal_basis: "ISO/IEC 5218:2022".to_owned(),
        source: "ISO/IEC 5218 (public codes).".to_owned(),
    };
    let mut items = Items::new(SEX, "5218");
    for (code, name, en) in [
        ("0", "Chưa xác định", "Not known"),
        ("1", "Nam", "Male"),
        ("2", "Nữ", "Female"),
        ("9", "Không áp dụng", "Not applicable"),
    ] {
        items.add(code, name, None, 1, json!({"name_en": en}));
    }
    let versions = vec![NewCodeVersion {
        version: version_row(SEX, "5218", None, None, now),
        items: items.into_rows(),
        mappings: Vec::new(),
    }];
    (list, versions)
}

fn version_row(
    list: &str,
    version: &str,
    from: Option<&str>,
    to: Option<&str>,
    now: &str,
) -> CodeVersionRow {
    CodeVersionRow {
        list_id: list.to_owned(),
        version: version.to_owned(),
        valid_from: from.map(str::to_owned),
        valid_to: to.map(str::to_owned),
        published_at: now.to_owned(),
    }
}
