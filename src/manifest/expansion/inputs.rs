//! The inputs a manifest names, under `inputs` and as sweep keys, looked up in the workflow's.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::super::catalog::{CatalogError, InputCatalog, InputInfo};
use super::super::diagnostic::{At, Diagnostics, closest};
use super::super::scope::RESERVED;
use super::super::source::{Segment, YamlPath};
use super::super::template::{Templates, is_builtin};
use super::sweep::Expanded;

/// An input the manifest sets, and where.
pub(super) struct Named<'a> {
    pub(super) info: InputInfo,
    pub(super) path: YamlPath,
    pub(super) value: &'a Value,
}

/// The keys under `inputs`.
pub(super) struct InputKeys<'m> {
    /// The keys that name an input of the workflow, by its system name.
    pub(super) known: IndexMap<String, Named<'m>>,
    /// Values of unknown inputs: their templates are still checked.
    pub(super) unknown: Vec<(YamlPath, &'m Value)>,
}

impl<'m> InputKeys<'m> {
    /// Looks up every key under `inputs`; an unknown input or one set twice goes to `diags`.
    pub(super) fn resolve(
        inputs: &'m Map<String, Value>,
        catalog: &dyn InputCatalog,
        diags: &mut Diagnostics<'_>,
    ) -> InputKeys<'m> {
        let mut known: IndexMap<String, Named<'m>> = IndexMap::new();
        let mut unknown: Vec<(YamlPath, &Value)> = Vec::new();
        for (key, value) in inputs {
            let path = YamlPath::keys(&["inputs", key]);
            match catalog.resolve(key) {
                Ok(info) => {
                    if let Some(other) = known.get(&info.system_name) {
                        diags.push(
                            &path,
                            At::Key,
                            format!(
                                "input `{}` is set twice (also as `{}`)",
                                info.system_name,
                                other.path.last_step()
                            ),
                            Some("keep one of the two keys".into()),
                        );
                    } else {
                        known.insert(info.system_name.clone(), Named { info, path, value });
                    }
                }
                Err(e) => {
                    diags.push(&path, At::Key, e.message, e.hint);
                    unknown.push((path, value));
                }
            }
        }
        InputKeys { known, unknown }
    }
}

/// The sweep's keys: inputs of the workflow, or template variables.
pub(super) struct SweepKeys {
    /// The keys that name an input, by key.
    pub(super) inputs: HashMap<String, InputInfo>,
    /// The keys that name no input: (key, where, why not).
    unresolved: Vec<(String, YamlPath, CatalogError)>,
}

impl SweepKeys {
    /// Looks up every sweep key; an input swept twice goes to `diags`.
    pub(super) fn resolve(
        expanded: &Expanded,
        catalog: &dyn InputCatalog,
        diags: &mut Diagnostics<'_>,
    ) -> SweepKeys {
        let mut inputs: HashMap<String, InputInfo> = HashMap::new();
        let mut swept_systems: HashMap<String, String> = HashMap::new();
        let mut unresolved = Vec::new();
        for (slot, (key, path)) in expanded.keys.iter().enumerate() {
            // A search/replace axis's key is a label: it names no input and no template uses it.
            if expanded.is_replace_slot(slot) {
                continue;
            }
            match catalog.resolve(key) {
                Ok(info) => {
                    if let Some(other) = swept_systems.get(&info.system_name) {
                        diags.push(
                            path,
                            At::Key,
                            format!(
                                "input `{}` is swept twice (also as `{other}`)",
                                info.system_name
                            ),
                            Some("keep one of the two keys".into()),
                        );
                        continue;
                    }
                    swept_systems.insert(info.system_name.clone(), key.clone());
                    inputs.insert(key.clone(), info);
                }
                Err(e) => unresolved.push((key.clone(), path.clone(), e)),
            }
        }
        SweepKeys { inputs, unresolved }
    }

    /// A sweep key that is no input is a template variable, and some template must use it
    /// (`used`: the names templates read). Reports those no template uses, and returns them
    /// with the catalog's hint (the input each was likely meant to be), so that later checks
    /// (the grid's axes) do not suggest a key that is itself refused.
    pub(super) fn report_unused(
        &self,
        expanded: &Expanded,
        templates: &Templates,
        used: &HashSet<String>,
        diags: &mut Diagnostics<'_>,
    ) -> Vec<RefusedKey> {
        let mut refused = Vec::new();
        // Unknowable when a template did not compile: that error is reported instead.
        let sweep_used = used.contains("sweep") || templates.any_failed();
        // A name a template reads that is defined nowhere is a typo, reported as an undefined
        // variable; the sweep key it was meant to be is then not reported as unused too.
        let unknown_names: Vec<&String> = used
            .iter()
            .filter(|n| {
                !expanded.keys.contains_key(*n) && !RESERVED.contains(&n.as_str()) && !is_builtin(n)
            })
            .collect();
        for (key, path, e) in &self.unresolved {
            let misspelled = unknown_names
                .iter()
                .any(|n| closest(n, [key.as_str()]).is_some());
            if !(used.contains(key) || sweep_used || misspelled) {
                let hint = e.hint.clone().unwrap_or_else(|| format!("use it in a template as `{{{{ {key} }}}}`, or name an input of the workflow"));
                diags.push(
                    path,
                    At::Key,
                    format!(
                        "{} `{key}` is not an input of the workflow, and no template uses it",
                        if path.segments().get(1) == Some(&Segment::Key("table".into())) {
                            "column"
                        } else {
                            "sweep key"
                        }
                    ),
                    Some(hint),
                );
                refused.push(RefusedKey {
                    key: key.clone(),
                    hint: e.hint.clone(),
                });
            }
        }
        refused
    }
}

/// A sweep key refused as naming no input (and used by no template).
#[derive(Debug, Clone)]
pub(crate) struct RefusedKey {
    /// The key as written.
    pub(crate) key: String,
    /// The catalog's hint for it (``did you mean `Hue shift`?``), if any.
    pub(crate) hint: Option<String>,
}
