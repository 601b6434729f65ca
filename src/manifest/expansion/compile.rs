//! The manifest's templates: every templated string compiled once, and what each reads.

use std::collections::HashSet;

use serde_json::Value;

use super::super::diagnostic::{At, Diagnostics};
use super::super::model::{DynamicAxis, Output};
use super::super::source::YamlPath;
use super::super::template::{Templates, is_template};
use super::inputs::InputKeys;
use super::sweep::{Cell, Expanded, Values};

/// Compiles every templated string of the manifest once: under `inputs`, in the sweep's written
/// values, in `output.dir` and `output.name`. A template that does not compile goes to `diags`.
/// Returns the templates and every top-level name they read.
pub(super) fn compile_templates(
    keys: &InputKeys<'_>,
    expanded: &Expanded,
    output: &Output,
    diags: &mut Diagnostics<'_>,
) -> (Templates, HashSet<String>) {
    let mut templates = Templates::new();
    let mut used: HashSet<String> = HashSet::new();
    let mut attempted: HashSet<YamlPath> = HashSet::new();
    let mut compile =
        |templates: &mut Templates, diags: &mut Diagnostics<'_>, path: &YamlPath, s: &str| {
            if !is_template(s) || !attempted.insert(path.clone()) {
                return;
            }
            match templates.add(path, s) {
                Ok(()) => used.extend(templates.top_level_names(path)),
                Err(p) => diags.push(path, At::Value, p.message, p.hint),
            }
        };
    let known = keys.known.values().map(|s| (&s.path, s.value));
    for (path, value) in known.chain(keys.unknown.iter().map(|(p, v)| (p, *v))) {
        // `{dynamic: ...}` is a sweep of prompts, never a template.
        if DynamicAxis::of(value).is_some() {
            continue;
        }
        for_each_string(value, path, &mut |p, text| {
            compile(&mut templates, diags, p, text);
        });
    }
    for (column, col) in expanded.columns.iter().enumerate() {
        if matches!(col.values, Values::List(_)) {
            for row in 0..col.len() {
                let cell = Cell::Column { column, row };
                let origin = expanded.origin(cell);
                for_each_string(&expanded.value(cell), &origin, &mut |p, text| {
                    compile(&mut templates, diags, p, text);
                });
            }
        }
    }
    for (_, cell) in expanded.include_cells() {
        let origin = expanded.origin(cell);
        for_each_string(&expanded.value(cell), &origin, &mut |p, text| {
            compile(&mut templates, diags, p, text);
        });
    }
    let dir_path = YamlPath::keys(&["output", "dir"]);
    let name_path = YamlPath::keys(&["output", "name"]);
    compile(&mut templates, diags, &dir_path, &output.dir);
    compile(&mut templates, diags, &name_path, &output.name);
    (templates, used)
}

/// Whether every template string inside `value` reads only `allowed` variables.
pub(super) fn reads_only(
    templates: &Templates,
    value: &Value,
    path: &YamlPath,
    allowed: &[&str],
) -> bool {
    let mut all = true;
    for_each_string(value, path, &mut |p, _| {
        all &= templates.reads_only(p, allowed);
    });
    all
}

/// Calls `f` for every string inside `value`, with its path.
fn for_each_string(value: &Value, path: &YamlPath, f: &mut impl FnMut(&YamlPath, &str)) {
    match value {
        Value::String(s) => f(path, s),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                for_each_string(v, &path.index(i), f);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                for_each_string(v, &path.key(k), f);
            }
        }
        _ => {}
    }
}
