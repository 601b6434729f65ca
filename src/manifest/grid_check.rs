//! The checks of `output.grid` against the sweep and the workflow (every axis a sweep key,
//! every grid of bounded size, every node an output node), and the grids a run draws.

use super::catalog::InputCatalog;
use super::diagnostic::{At, Diagnostics, ManifestError, closest, did_you_mean};
use super::expansion::RefusedKey;
use super::expansion::sweep::{Combination, Expanded};
use super::file::ManifestFile;
use super::grid::{
    CaptionTemplate, CaptionVars, DEFAULT_CELL_MAX, GridNameVars, GridSpec, Grids, MAX_CELL,
    MAX_CELLS, MAX_GRID_PIXELS, MAX_LABEL_CHARS, MAX_PAGES, MIN_CELL, default_grid,
    render_grid_name, value_label,
};
use super::model::{Output, Sweep};
use super::source::YamlPath;

/// The grids a run draws: those `output.grid` asks for; without `output.grid` (or with `true`),
/// one default grid for a `matrix` of one or two keys (the last key, which varies fastest, as
/// columns; the first as rows) and nothing else (`table`, `zip` and `include` make sparse
/// grids); none for other sweeps or with `grid: false`.
#[must_use]
pub fn resolve_grids(output: &Output, sweep: &Sweep) -> Vec<GridSpec> {
    match &output.grid {
        Some(Grids::Enabled(false)) => Vec::new(),
        Some(Grids::One(spec)) => vec![spec.clone()],
        Some(Grids::Many(specs)) => specs.clone(),
        None | Some(Grids::Enabled(true)) => {
            if !sweep.table.is_empty() || !sweep.zip.is_empty() || !sweep.include.is_empty() {
                return Vec::new();
            }
            let keys: Vec<&String> = sweep.matrix.keys().collect();
            default_grid(&keys).into_iter().collect()
        }
    }
}

/// What the grid's axes are checked against: the sweep, the keys of it already refused (they
/// name no input), and the workflow's inputs.
pub(crate) struct SweepKeys<'a> {
    /// The sweep.
    pub(crate) expanded: &'a Expanded,
    /// Its keys that were refused.
    pub(crate) refused: &'a [RefusedKey],
    /// The workflow's inputs.
    pub(crate) catalog: &'a dyn InputCatalog,
}

/// Checks `output.grid` against the sweep: every axis is a sweep key (once), sizes and names are
/// valid, and no grid could grow past the bounds. Problems go to `diags`.
pub(crate) fn check(output: &Output, sweep: &SweepKeys<'_>, diags: &mut Diagnostics<'_>) {
    let expanded = sweep.expanded;
    let keys = &expanded.keys;
    let grid_path = YamlPath::keys(&["output", "grid"]);
    let specs: Vec<(YamlPath, &GridSpec)> = match &output.grid {
        None | Some(Grids::Enabled(false)) => return,
        Some(Grids::Enabled(true)) => {
            if !(1..=2).contains(&keys.len()) {
                diags.push(
                    &grid_path,
                    At::Value,
                    format!(
                        "`grid: true` draws the default grid of a sweep of one or two keys; this sweep has {}",
                        keys.len()
                    ),
                    Some("name the axes: `grid: {x: KEY, y: KEY, pages: [KEY...]}`".into()),
                );
            }
            return;
        }
        Some(Grids::One(spec)) => vec![(grid_path.clone(), spec)],
        Some(Grids::Many(specs)) => specs
            .iter()
            .enumerate()
            .map(|(i, s)| (grid_path.index(i), s))
            .collect(),
    };
    let count = specs.len();
    for (path, spec) in specs {
        check_spec(&path, spec, count, sweep, diags);
    }
}

/// Why grid axis `axis` (no sweep key) is refused, and what to do: the closest sweep key that
/// is valid; else, when the axis is close to a sweep key that was refused itself (a typo there),
/// that key is named as the one to fix, never suggested.
fn unknown_axis(axis: &str, sweep: &SweepKeys<'_>) -> (String, Option<String>) {
    let keys = &sweep.expanded.keys;
    let refused = |k: &str| sweep.refused.iter().any(|r| r.key == k);
    let valid = keys.keys().map(String::as_str).filter(|k| !refused(k));
    let not_a_key = format!("grid axis `{axis}` is not a sweep key");
    if let Some(hint) = did_you_mean(axis, valid.clone()) {
        return (not_a_key, Some(hint));
    }
    if let Some(typo) = closest(axis, sweep.refused.iter().map(|r| r.key.as_str()))
        .and_then(|k| sweep.refused.iter().find(|r| r.key == k))
    {
        let key = &typo.key;
        return match sweep.catalog.resolve(axis) {
            // The axis names the input right: the sweep key is the typo.
            Ok(_) => (
                format!(
                    "grid axis `{axis}` is not a sweep key: it names the input that sweep key `{key}` misspells"
                ),
                Some(format!("rename the sweep key `{key}` to `{axis}`")),
            ),
            Err(_) => (
                format!(
                    "grid axis `{axis}` is not a sweep key (sweep key `{key}`, which names no input either, is the closest)"
                ),
                Some(match &typo.hint {
                    Some(h) => {
                        format!("fix the sweep key `{key}` ({h}), and name the same input here")
                    }
                    None => format!(
                        "name an input of the workflow on the sweep key `{key}`, and the same here"
                    ),
                }),
            ),
        };
    }
    let hint = if keys.is_empty() {
        "a grid needs a `sweep:`; its keys are the axes".to_owned()
    } else {
        let names: Vec<String> = valid.map(|k| format!("`{k}`")).collect();
        if names.is_empty() {
            "no sweep key names an input yet: fix those first, and name one of them here".to_owned()
        } else {
            format!("the sweep keys are {}", names.join(", "))
        }
    };
    (not_a_key, Some(hint))
}

fn check_spec(
    path: &YamlPath,
    spec: &GridSpec,
    count: usize,
    sweep: &SweepKeys<'_>,
    diags: &mut Diagnostics<'_>,
) {
    let expanded = sweep.expanded;
    let keys = &expanded.keys;
    let mut axes_ok = true;
    let mut seen: Vec<&str> = Vec::new();
    let named: Vec<(YamlPath, &str)> = std::iter::once((path.key("x"), spec.x.as_str()))
        .chain(spec.y.iter().map(|y| (path.key("y"), y.as_str())))
        .chain(spec.z.iter().map(|z| (path.key("z"), z.as_str())))
        .chain(
            spec.pages
                .iter()
                .enumerate()
                .map(|(i, p)| (path.key("pages").index(i), p.as_str())),
        )
        .collect();
    for (at, key) in &named {
        if !keys.contains_key(*key) {
            axes_ok = false;
            let (message, hint) = unknown_axis(key, sweep);
            diags.push(at, At::Value, message, hint);
        } else if seen.contains(key) {
            axes_ok = false;
            diags.push(
                at,
                At::Value,
                format!("sweep key `{key}` is on two axes of the grid"),
                Some("each axis takes a different sweep key".into()),
            );
        }
        seen.push(key);
    }
    if let Some(cell) = spec.cell {
        if !(MIN_CELL..=MAX_CELL).contains(&cell) {
            diags.push(
                &path.key("cell"),
                At::Value,
                format!("grid cell size {cell} is out of range"),
                Some(format!(
                    "give the cell's longest side in pixels, {MIN_CELL} to {MAX_CELL}"
                )),
            );
        }
    }
    let template = spec.name_template(count);
    if let Err(message) = render_grid_name(&template, &GridNameVars::example()) {
        let at = if spec.name.is_some() {
            path.key("name")
        } else {
            path.clone()
        };
        diags.push(
            &at,
            At::Value,
            message,
            Some("the grid name may use `node.label`, `node.id`, `x`, `y`, `z`, `page`, `pages` and `grid.number`".into()),
        );
    }
    if !axes_ok {
        return;
    }
    if let Some(source) = &spec.caption {
        check_caption(&path.key("caption"), source, expanded, diags);
    }

    // Bounds, from the values the sweep gives each axis.
    // Labels of a combination's values by key slot (`None`: the key has no value there).
    let label_of = |combo: &Combination, slot: Option<usize>| -> String {
        combo.iter().find(|(s, _)| Some(*s) == slot).map_or_else(
            || "(none)".to_owned(),
            |(_, cell)| value_label(&expanded.value(*cell)),
        )
    };
    // Distinct labels of a key, in order (stops past what a grid may hold: that is reported).
    let distinct = |key: &str| -> Vec<String> {
        let slot = keys.get_index_of(key);
        let mut values: Vec<String> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        for c in 0..expanded.count() {
            let label = label_of(&expanded.combination(c), slot);
            if seen.insert(label.clone()) {
                values.push(label);
                if values.len() > MAX_CELLS {
                    break;
                }
            }
        }
        values
    };
    let xs = distinct(&spec.x);
    let ys = spec
        .y
        .as_deref()
        .map_or_else(|| vec![String::new()], distinct);
    let zs = spec
        .z
        .as_deref()
        .map_or_else(|| vec![String::new()], distinct);
    let cells = xs.len() * ys.len() * zs.len();
    if cells > MAX_CELLS {
        let of_z = if spec.z.is_some() {
            format!(" × {} sub-grids", zs.len())
        } else {
            String::new()
        };
        diags.push(
            path,
            At::Value,
            format!(
                "the grid would have {cells} cells ({} columns × {} rows{of_z}); at most {MAX_CELLS}",
                xs.len(),
                ys.len()
            ),
            Some("put a key with many values on `pages:` instead".into()),
        );
    }
    let cell = u64::from(spec.cell.unwrap_or(DEFAULT_CELL_MAX));
    let pixels = cells as u64 * cell * cell;
    if cells <= MAX_CELLS && pixels > MAX_GRID_PIXELS {
        diags.push(
            path,
            At::Value,
            format!(
                "the grid would have about {} million pixels ({cells} cells of {cell}×{cell}); at most {}",
                pixels / 1_000_000,
                MAX_GRID_PIXELS / 1_000_000
            ),
            Some("set a smaller `cell:` size, or move a key to `pages:`".into()),
        );
    }
    let xy = [
        keys.get_index_of(spec.x.as_str()),
        spec.y.as_deref().and_then(|y| keys.get_index_of(y)),
        spec.z.as_deref().and_then(|z| keys.get_index_of(z)),
    ];
    let explicit: Vec<Option<usize>> = spec
        .pages
        .iter()
        .map(|p| keys.get_index_of(p.as_str()))
        .collect();
    let fixed = fixed_by_axes(expanded, xy);
    let mut page_combos: std::collections::HashSet<Vec<String>> = std::collections::HashSet::new();
    for c in 0..expanded.count() {
        let combo = expanded.combination(c);
        let page: Vec<String> = combo
            .iter()
            .filter(|(slot, _)| {
                !xy.contains(&Some(*slot))
                    && (explicit.contains(&Some(*slot)) || !fixed.contains(slot))
            })
            .map(|(slot, cell)| format!("{slot}={}", value_label(&expanded.value(*cell))))
            .collect();
        if page_combos.insert(page) && page_combos.len() > MAX_PAGES {
            break;
        }
    }
    if page_combos.len() > MAX_PAGES {
        diags.push(
            path,
            At::Value,
            format!("the grid would be split into more than {MAX_PAGES} pages (one per combination of the sweep keys on no axis and on `pages:`)"),
            Some("put the keys with the most values on `x` and `y`".into()),
        );
    }
    for (key, values) in [(&spec.x, &xs)]
        .into_iter()
        .chain(spec.y.as_ref().map(|y| (y, &ys)))
        .chain(spec.z.as_ref().map(|z| (z, &zs)))
    {
        if let Some(long) = values.iter().find(|v| v.chars().count() > MAX_LABEL_CHARS) {
            diags.push(
                &keys[key.as_str()],
                At::Key,
                format!(
                    "a value of grid axis `{key}` is {} characters long; a grid label holds at most {MAX_LABEL_CHARS}",
                    long.chars().count()
                ),
                Some("shorten the value, or leave this key off the grid's axes".into()),
            );
        }
    }
}

/// The key slots (on no axis) whose value the axes' values fix in every combination, as a
/// table row fixes its other columns: a grid makes no pages of them.
fn fixed_by_axes(expanded: &Expanded, xy: [Option<usize>; 3]) -> std::collections::HashSet<usize> {
    use std::collections::{HashMap, HashSet};
    let slots = expanded.keys.len();
    let mut fixed: HashSet<usize> = (0..slots).filter(|s| !xy.contains(&Some(*s))).collect();
    // (slot, x label, y label, z label) → the slot's label there.
    let mut seen: HashMap<(usize, [String; 3]), String> = HashMap::new();
    let label = |combo: &Combination, slot: Option<usize>| {
        combo.iter().find(|(s, _)| Some(*s) == slot).map_or_else(
            || "(none)".to_owned(),
            |(_, cell)| value_label(&expanded.value(*cell)),
        )
    };
    for c in 0..expanded.count() {
        if fixed.is_empty() {
            break;
        }
        let combo = expanded.combination(c);
        let place = xy.map(|axis| label(&combo, axis));
        fixed.retain(|&slot| {
            let value = label(&combo, Some(slot));
            seen.entry((slot, place.clone()))
                .or_insert_with(|| value.clone())
                == &value
        });
    }
    fixed
}

/// Checks a grid's `caption` template: it compiles, and renders with the variables of the
/// sweep's first job (an undefined variable is named, with the closest defined one).
fn check_caption(at: &YamlPath, source: &str, expanded: &Expanded, diags: &mut Diagnostics<'_>) {
    let caption = match CaptionTemplate::new(source, at) {
        Ok(caption) => caption,
        Err((message, hint)) => {
            diags.push(at, At::Value, message, hint);
            return;
        }
    };
    // Every key, with its first job's value (a key the first job lacks: a stand-in).
    let mut sweep = serde_json::Map::new();
    let first = (expanded.count() > 0).then(|| expanded.combination(0));
    for (slot, key) in expanded.keys.keys().enumerate() {
        let value = first
            .as_ref()
            .and_then(|c| c.iter().find(|(s, _)| *s == slot))
            .map_or_else(
                || serde_json::Value::from("value"),
                |(_, cell)| expanded.value(*cell).into_owned(),
            );
        sweep.insert(key.clone(), value);
    }
    let vars = CaptionVars {
        sweep: &sweep,
        job: 0,
        seed: &serde_json::Value::from(0),
        node_label: "node-label",
    };
    if let Err((message, hint)) = caption.render(&vars) {
        diags.push(at, At::Value, format!("grid caption: {message}"), hint);
    }
}

/// Checks that every `node:` of `output.grid` names one of the workflow's output nodes (by
/// label).
///
/// # Errors
/// The grids naming no output node, with their line and column.
pub fn check_grid_nodes(file: &ManifestFile, labels: &[String]) -> Result<(), ManifestError> {
    let mut diags = Diagnostics::new(&file.path, &file.source);
    let grid_path = YamlPath::keys(&["output", "grid"]);
    let specs: Vec<(YamlPath, &GridSpec)> = match &file.manifest.output.grid {
        Some(Grids::One(spec)) => vec![(grid_path, spec)],
        Some(Grids::Many(specs)) => specs
            .iter()
            .enumerate()
            .map(|(i, s)| (grid_path.index(i), s))
            .collect(),
        _ => Vec::new(),
    };
    for (path, spec) in specs {
        if let Some(node) = &spec.node {
            if !labels.iter().any(|l| l == node) {
                let hint = did_you_mean(node, labels.iter().map(String::as_str)).or_else(|| {
                    let names: Vec<String> = labels.iter().map(|l| format!("`{l}`")).collect();
                    Some(format!(
                        "the workflow's output nodes are {}",
                        names.join(", ")
                    ))
                });
                diags.push(
                    &path.key("node"),
                    At::Value,
                    format!("grid node `{node}` is not an output node of the workflow"),
                    hint,
                );
            }
        }
    }
    diags.into_result(0)
}

#[cfg(test)]
mod tests {
    use super::super::grid::GridFormat;
    use super::*;

    fn output(yaml: &str) -> Output {
        serde_norway::from_str(yaml).expect("output")
    }

    #[test]
    fn a_grid_is_a_map_a_list_or_a_switch() {
        let one = output("grid: {x: Hue, y: Blur}");
        assert_eq!(
            one.grid,
            Some(Grids::One(GridSpec::new("Hue", Some("Blur"))))
        );
        let many = output("grid: [{x: a}, {x: b, pages: [c], cell: 64, format: jpeg}]");
        let Some(Grids::Many(specs)) = many.grid else {
            panic!("a list")
        };
        assert_eq!(specs[1].pages, ["c"]);
        assert_eq!(specs[1].format, GridFormat::Jpeg);
        assert_eq!(output("grid: false").grid, Some(Grids::Enabled(false)));
        let err = serde_norway::from_str::<Output>("grid: [{x: a}, {x: b, nodes: c}]")
            .expect_err("unknown key");
        assert!(
            err.to_string()
                .contains("unknown key `nodes`, expected one of"),
            "{err}"
        );
        assert!(err.to_string().contains("in `output.grid[1]`"), "{err}");
    }

    #[test]
    fn a_grid_may_have_a_z_axis_a_layout_and_a_caption() {
        let one =
            output("grid: {x: Hue, y: Blur, z: Seed, z_layout: down, caption: 'seed {{ seed }}'}");
        let Some(Grids::One(spec)) = one.grid else {
            panic!("one grid")
        };
        assert_eq!(spec.z.as_deref(), Some("Seed"));
        assert_eq!(spec.z_layout, super::super::grid::ZLayout::Down);
        assert_eq!(spec.axes(), ["Hue", "Blur", "Seed"]);
        assert_eq!(spec.caption.as_deref(), Some("seed {{ seed }}"));
        let across = output("grid: {x: Hue, z: Seed}");
        let Some(Grids::One(spec)) = across.grid else {
            panic!("one grid")
        };
        assert_eq!(spec.z_layout, super::super::grid::ZLayout::Across);
        // The default layout is not written back (saved report settings stay as they were).
        assert!(
            !serde_json::to_string(&spec)
                .expect("json")
                .contains("z_layout")
        );
    }

    #[test]
    fn a_caption_names_an_undefined_variable_and_the_closest_one() {
        let at = YamlPath::keys(&["output", "grid", "caption"]);
        let caption = CaptionTemplate::new("{{ Hue }}/{{ sede }}", &at).expect("compiles");
        let sweep = serde_json::json!({"Hue": 90})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let vars = CaptionVars {
            sweep: &sweep,
            job: 3,
            seed: &serde_json::json!(12),
            node_label: "Tinted",
        };
        let (message, hint) = caption.render(&vars).expect_err("undefined");
        assert_eq!(message, "undefined variable `sede`");
        assert_eq!(hint.as_deref(), Some("did you mean `seed`?"));
        let caption =
            CaptionTemplate::new("{{ Hue }} {{ seed }} {{ job.index }} {{ node.label }}", &at)
                .expect("compiles");
        assert_eq!(caption.render(&vars).as_deref(), Ok("90 12 3 Tinted"));
        assert!(CaptionTemplate::new("{{ Hue ", &at).is_err());
    }

    #[test]
    fn the_default_grid_is_for_one_or_two_sweep_keys() {
        let sweep = |yaml: &str| serde_norway::from_str::<Sweep>(yaml).expect("sweep");
        let out = Output::default();
        assert_eq!(
            resolve_grids(&out, &sweep("matrix: {a: [1, 2], b: [3]}")),
            [GridSpec::new("b", Some("a"))]
        );
        assert_eq!(
            resolve_grids(&out, &sweep("matrix: {a: [1]}")),
            [GridSpec::new("a", None)]
        );
        assert!(resolve_grids(&out, &sweep("matrix: {a: [1], b: [2], c: [3]}")).is_empty());
        assert!(resolve_grids(&out, &sweep("zip: {a: [1, 2], b: [3, 4]}")).is_empty());
        // A table's rows are zipped: with a matrix key they make a sparse grid.
        assert!(resolve_grids(&out, &sweep("table: t.csv\nmatrix: {a: [1, 2]}")).is_empty());
        assert!(resolve_grids(&out, &Sweep::default()).is_empty());
        let off = output("grid: false");
        assert!(resolve_grids(&off, &sweep("matrix: {a: [1]}")).is_empty());
    }

    #[test]
    fn grid_names_render_and_pages_never_collide() {
        let mut vars = GridNameVars::example();
        vars.node_label = "Tinted".into();
        vars.page = String::new();
        assert_eq!(
            render_grid_name("grid-{{ node.label }}", &vars).as_deref(),
            Ok("grid-Tinted")
        );
        vars.page = "Size=64".into();
        assert_eq!(
            render_grid_name("grid-{{ node.label }}", &vars).as_deref(),
            Ok("grid-Tinted-Size=64")
        );
        assert!(
            render_grid_name("../{{ node.label }}", &vars)
                .expect_err("escapes")
                .contains("`..` could leave `output.dir`")
        );
        assert!(render_grid_name("{{ nod.label }}", &vars).is_err());
    }
}
