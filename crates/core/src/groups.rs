//! Device groups: operator-named sets of devices ("North patrol", "Body cameras, shift B"),
//! defined in the config file's `[groups]` table by device-id patterns.
//!
//! Groups belong to the control room, not to the devices: a device cannot put itself in a group,
//! and every adapter's devices (native, OwnTracks `ot:...`, face terminals `face:...`) can be
//! grouped the same way. A device may be in several groups, or in none. Patterns are globs over
//! the whole device id (`*` any run of characters, `/` included; `?` one character; `[...]` a
//! class), matched by `globset` (ripgrep's matcher) as one set, so the cost of placing a device
//! does not grow with the number of patterns. Placement is computed once, when a device is first
//! seen.

use std::collections::BTreeMap;
use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Longest group name accepted (it is shown in a drop-down and on the device panel).
pub const MAX_GROUP_NAME: usize = 48;
/// Most groups in one config.
pub const MAX_GROUPS: usize = 200;

/// The configured groups and their compiled patterns.
#[derive(Debug, Clone)]
pub struct DeviceGroups {
    /// The table as configured, in display order (sorted by name, as the config is read); what
    /// two settings are compared by.
    table: Arc<[(String, Vec<String>)]>,
    /// Every pattern of every group, compiled as one set.
    set: Arc<GlobSet>,
    /// For each pattern in `set`, the index of its group in `table`.
    group_of_pattern: Arc<[usize]>,
}

impl Default for DeviceGroups {
    fn default() -> Self {
        Self {
            table: Arc::new([]),
            set: Arc::new(GlobSet::empty()),
            group_of_pattern: Arc::new([]),
        }
    }
}

impl PartialEq for DeviceGroups {
    fn eq(&self, other: &Self) -> bool {
        self.table == other.table
    }
}

impl DeviceGroups {
    /// Compiles `[groups]` (name -> id patterns). An error names the group at fault and says
    /// what is wrong with it.
    pub fn from_config(table: &BTreeMap<String, Vec<String>>) -> Result<Self, GroupError> {
        if table.len() > MAX_GROUPS {
            return Err(GroupError {
                group: format!("{} groups", table.len()),
                reason: format!("at most {MAX_GROUPS} groups are accepted"),
            });
        }
        let mut builder = GlobSetBuilder::new();
        let mut group_of_pattern = Vec::new();
        for (index, (name, patterns)) in table.iter().enumerate() {
            let fail = |reason: String| GroupError {
                group: name.clone(),
                reason,
            };
            check_name(name).map_err(fail)?;
            if patterns.is_empty() {
                return Err(fail(
                    "no patterns (list device ids, or patterns such as \"van-*\")".into(),
                ));
            }
            for pattern in patterns {
                if pattern.is_empty() || pattern.chars().any(char::is_control) {
                    return Err(fail(format!(
                        "pattern {pattern:?} is empty or has control characters"
                    )));
                }
                let glob = GlobBuilder::new(pattern)
                    .literal_separator(false)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| fail(format!("pattern {pattern:?}: {}", e.kind())))?;
                builder.add(glob);
                group_of_pattern.push(index);
            }
        }
        let set = builder.build().map_err(|e| GroupError {
            group: "[groups]".into(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            table: table.clone().into_iter().collect(),
            set: Arc::new(set),
            group_of_pattern: group_of_pattern.into(),
        })
    }

    /// The group names, in display order.
    pub fn names(&self) -> Vec<String> {
        self.table.iter().map(|(name, _)| name.clone()).collect()
    }

    /// The groups `device_id` is in, in display order, each once.
    pub fn groups_of(&self, device_id: &str) -> Vec<String> {
        let mut groups: Vec<usize> = self
            .set
            .matches(device_id)
            .into_iter()
            .map(|pattern| self.group_of_pattern[pattern])
            .collect();
        groups.sort_unstable();
        groups.dedup();
        groups
            .into_iter()
            .map(|g| self.table[g].0.clone())
            .collect()
    }
}

/// A group the config cannot have, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("group {group:?}: {reason}")]
pub struct GroupError {
    pub group: String,
    pub reason: String,
}

fn check_name(name: &str) -> Result<(), String> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed != name {
        return Err("the name is empty or starts or ends with spaces".into());
    }
    if name.chars().count() > MAX_GROUP_NAME {
        return Err(format!(
            "the name is longer than {MAX_GROUP_NAME} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("the name has control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `[groups]` table: (name, patterns) pairs.
    type Table<'a> = &'a [(&'a str, &'a [&'a str])];

    fn groups(entries: Table) -> Result<DeviceGroups, GroupError> {
        let table = entries
            .iter()
            .map(|(n, p)| (n.to_string(), p.iter().map(|s| s.to_string()).collect()))
            .collect();
        DeviceGroups::from_config(&table)
    }

    #[test]
    fn a_device_is_in_every_group_whose_pattern_matches_its_whole_id() {
        let g = groups(&[
            ("North patrol", &["van-1*", "car-12"]),
            ("Phones", &["ot:*"]),
            ("All vans", &["van-*"]),
        ])
        .unwrap();
        assert_eq!(g.names(), ["All vans", "North patrol", "Phones"]);
        assert_eq!(g.groups_of("van-17"), ["All vans", "North patrol"]);
        assert_eq!(g.groups_of("van-2"), ["All vans"]);
        assert_eq!(g.groups_of("car-12"), ["North patrol"]);
        // Whole id: a pattern is not a substring search.
        assert!(g.groups_of("car-123").is_empty());
        assert!(g.groups_of("xvan-1").is_empty());
        // `*` crosses `/` (OwnTracks ids are user/device).
        assert_eq!(g.groups_of("ot:ana/phone"), ["Phones"]);
    }

    #[test]
    fn two_patterns_of_one_group_name_it_once() {
        let g = groups(&[("Cams", &["cam-*", "cam-0?"])]).unwrap();
        assert_eq!(g.groups_of("cam-01"), ["Cams"]);
    }

    #[test]
    fn classes_and_escapes_work_as_globs() {
        let g = groups(&[("Odd", &["unit-[13579]"]), ("Literal star", &[r"odd\*id"])]).unwrap();
        assert_eq!(g.groups_of("unit-3"), ["Odd"]);
        assert!(g.groups_of("unit-4").is_empty());
        assert_eq!(g.groups_of("odd*id"), ["Literal star"]);
        assert!(g.groups_of("oddXid").is_empty());
    }

    #[test]
    fn no_groups_place_nobody() {
        let g = DeviceGroups::default();
        assert!(g.names().is_empty());
        assert!(g.groups_of("van-1").is_empty());
    }

    #[test]
    fn bad_groups_are_refused_with_the_reason() {
        let cases: &[(Table, &str)] = &[
            (&[("", &["a"])], "empty"),
            (&[(" padded", &["a"])], "spaces"),
            (&[("empty", &[])], "no patterns"),
            (&[("bad", &["van-[1"])], "unclosed"),
            (&[("bad", &[""])], "empty"),
            (&[("ctl\u{7}", &["a"])], "control"),
            (&[("bad", &["a\u{1b}[31m"])], "control"),
        ];
        for (entries, reason) in cases {
            let err = groups(entries).unwrap_err();
            assert_eq!(err.group, entries[0].0);
            assert!(err.reason.contains(reason), "{entries:?}: {err}");
        }
        let long = "x".repeat(MAX_GROUP_NAME + 1);
        assert!(groups(&[(long.as_str(), &["a"])])
            .unwrap_err()
            .reason
            .contains("longer than"));
    }
}
