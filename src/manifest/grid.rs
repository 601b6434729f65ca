//! `output.grid`: the X/Y/Z grids a run draws from its sweep, their defaults, their file names
//! and their cells' captions (their checks are [`super::grid_check`]'s).

use minijinja::{Environment, UndefinedBehavior};
use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use super::diagnostic::describe;
use super::output::check_name;
use super::scope::RESERVED;
use super::source::YamlPath;
use super::template::{Context, Templates};

/// The most cells (columns × rows) one grid may have.
pub const MAX_CELLS: usize = 2_500;
/// The most grid files one grid entry may make (one per page, per output node).
pub const MAX_PAGES: usize = 256;
/// The smallest cell size, in pixels.
pub const MIN_CELL: u32 = 16;
/// The largest cell size, in pixels (also the largest default).
pub const MAX_CELL: u32 = 1024;
/// The default cell size's upper bound: the largest image side, but no more than this.
pub const DEFAULT_CELL_MAX: u32 = 512;
/// The longest axis label (a sweep value as text), in characters.
pub const MAX_LABEL_CHARS: usize = 200;
/// The most pixels one grid image may have.
pub const MAX_GRID_PIXELS: u64 = 120_000_000;
/// The longest cell caption drawn, in characters (longer ones are cut with `…`).
pub const MAX_CAPTION_CHARS: usize = 200;
/// The most lines a cell's caption takes under the cell (more are cut with `…`).
pub const MAX_CAPTION_LINES: usize = 3;

/// One grid: which sweep keys run along which axis, which output node it shows, how large its
/// cells are and what its file is called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GridSpec {
    /// The sweep key whose values are the columns.
    pub x: String,
    /// The sweep key whose values are the rows (none: a single row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// The sweep key whose values are sub-grids, side by side or stacked in one image (none: one
    /// sub-grid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z: Option<String>,
    /// Where the sub-grids of `z` go: `across` (side by side, the default) or `down` (stacked).
    #[serde(default, skip_serializing_if = "ZLayout::is_across")]
    pub z_layout: ZLayout,
    /// More sweep keys: one grid per combination of their values. Sweep keys on no axis are
    /// pages too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pages: Vec<String>,
    /// The label of the output node to show; default: one grid per output node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The file name without extension, relative to `output.dir` (a template with `node.label`,
    /// `node.id`, `x`, `y`, `page`, `grid.number`); default `grid-{{ node.label }}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A cell's side, in pixels (16 to 1024): larger images are scaled down to fit, smaller ones
    /// are centred at their own size; default: the images' longest side, 128 to 512.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 16, max = 1024))]
    pub cell: Option<u32>,
    /// The image format of the grid file.
    #[serde(default)]
    pub format: GridFormat,
    /// A caption under each cell: a template with the job's sweep values (`NAME`,
    /// `sweep["NAME"]`), `seed`, `job.index` and `node.label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// Where the sub-grids of a grid's Z axis go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ZLayout {
    /// Side by side, left to right (they share the row labels).
    #[default]
    Across,
    /// Stacked, top to bottom (each has its column labels).
    Down,
}

impl ZLayout {
    fn is_across(&self) -> bool {
        *self == ZLayout::Across
    }
}

/// The image format of a grid file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GridFormat {
    /// PNG (lossless).
    #[default]
    Png,
    /// JPEG (quality 90; smaller files).
    Jpeg,
}

impl GridFormat {
    /// The file extension.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            GridFormat::Png => "png",
            GridFormat::Jpeg => "jpg",
        }
    }
}

/// `output.grid`: `false` (no grid), `true` (the default grid), one grid (a map) or several
/// (a list of maps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Grids {
    /// `false`: no grid, not even the default one; `true`: the default grid.
    Enabled(bool),
    /// One grid.
    One(GridSpec),
    /// Several grids.
    Many(Vec<GridSpec>),
}

impl<'de> Deserialize<'de> for Grids {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let one = |value: Value, at: &str| {
            serde_path_to_error::deserialize::<_, GridSpec>(value).map_err(|e| {
                let inner = e
                    .inner()
                    .to_string()
                    .replace("unknown field", "unknown key");
                let path = e.path().to_string();
                if path == "." || inner.starts_with("unknown key") {
                    D::Error::custom(format!("{inner} in `{at}`"))
                } else {
                    D::Error::custom(format!("{inner} in `{at}.{path}`"))
                }
            })
        };
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(Grids::Enabled(b)),
            v @ Value::Object(_) => one(v, "output.grid").map(Grids::One),
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| one(v, &format!("output.grid[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Grids::Many),
            other => Err(D::Error::custom(format!(
                "expected a grid (`{{x: KEY, y: KEY}}`), a list of grids, or `true`/`false`, found {}",
                describe(&other)
            ))),
        }
    }
}

impl GridSpec {
    /// A grid of `x` (columns) and, optionally, `y` (rows), with everything else defaulted.
    #[must_use]
    pub fn new(x: &str, y: Option<&str>) -> GridSpec {
        GridSpec {
            x: x.to_owned(),
            y: y.map(str::to_owned),
            z: None,
            z_layout: ZLayout::Across,
            pages: Vec::new(),
            node: None,
            name: None,
            cell: None,
            format: GridFormat::Png,
            caption: None,
        }
    }

    /// The sweep keys on an axis: x, y, z, then the pages written.
    #[must_use]
    pub fn axes(&self) -> Vec<&str> {
        let mut axes = vec![self.x.as_str()];
        axes.extend(self.y.as_deref());
        axes.extend(self.z.as_deref());
        axes.extend(self.pages.iter().map(String::as_str));
        axes
    }

    /// The file name template of grid `index` of `count` (`name`, or the default).
    #[must_use]
    pub fn name_template(&self, count: usize) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None if count > 1 => "grid{{ grid.number }}-{{ node.label }}".to_owned(),
            None => "grid-{{ node.label }}".to_owned(),
        }
    }
}

/// The default grid of a full product of one or two keys (in their order: the first varies
/// slowest).
#[must_use]
pub fn default_grid(keys: &[&String]) -> Option<GridSpec> {
    match keys {
        [x] => Some(GridSpec::new(x, None)),
        [y, x] => Some(GridSpec::new(x, Some(y))),
        _ => None,
    }
}

/// The variables of a grid's file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridNameVars {
    /// The output node's label.
    pub node_label: String,
    /// The output node's id.
    pub node_id: String,
    /// The grid entry's number, from 1.
    pub number: usize,
    /// The X key.
    pub x: String,
    /// The Y key (empty without one).
    pub y: String,
    /// The Z key (empty without one).
    pub z: String,
    /// The page's values as `key=value` joined by `,` (empty without pages).
    pub page: String,
    /// The page's values by key.
    pub pages: Map<String, Value>,
}

impl GridNameVars {
    pub(super) fn example() -> GridNameVars {
        GridNameVars {
            node_label: "node-label".into(),
            node_id: "node-id".into(),
            number: 1,
            x: "x".into(),
            y: "y".into(),
            z: "z".into(),
            page: "key=value".into(),
            pages: Map::new(),
        }
    }
}

/// Renders a grid's file name template; a page's values are appended (`-key=value`) when the
/// template does not use `page`, so pages never overwrite each other.
///
/// # Errors
/// The template's syntax error, an undefined variable, or a name that would leave `output.dir`.
pub fn render_grid_name(template: &str, vars: &GridNameVars) -> Result<String, String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let ctx = json!({
        "node": {"label": vars.node_label, "id": vars.node_id},
        "grid": {"number": vars.number},
        "x": vars.x,
        "y": vars.y,
        "z": vars.z,
        "page": vars.page,
        "pages": vars.pages,
    });
    let mut name = env
        .render_str(template, ctx)
        .map_err(|e| format!("grid name template: {}", e.detail().unwrap_or("invalid")))?;
    if !vars.page.is_empty() && !template.contains("page") {
        name.push('-');
        name.push_str(&vars.page);
    }
    check_name(&name).map_err(|problem| problem.describe("the grid name"))?;
    Ok(name)
}

/// A sweep value as an axis label: strings as they are, other values as JSON.
#[must_use]
pub fn value_label(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "(none)".to_owned(),
        other => other.to_string(),
    }
}

/// A cell caption's template, compiled once (the project's template engine: strict undefined
/// variables, bounded renders).
#[derive(Debug)]
pub struct CaptionTemplate {
    source: String,
    path: YamlPath,
    templates: Templates,
}

/// What a caption template may read of one job.
#[derive(Debug, Clone, Copy)]
pub struct CaptionVars<'a> {
    /// The job's sweep values, by key.
    pub sweep: &'a Map<String, Value>,
    /// The job's index, from 0.
    pub job: usize,
    /// The job's seed as its sidecars record it (`null` when none).
    pub seed: &'a Value,
    /// The output node's label.
    pub node_label: &'a str,
}

impl CaptionTemplate {
    /// Compiles `source` (found at `path` of the manifest, for messages).
    ///
    /// # Errors
    /// The template's syntax error, and what to do.
    pub fn new(source: &str, path: &YamlPath) -> Result<CaptionTemplate, (String, Option<String>)> {
        let mut templates = Templates::new();
        templates
            .add(path, source)
            .map_err(|p| (p.message, p.hint))?;
        Ok(CaptionTemplate {
            source: source.to_owned(),
            path: path.clone(),
            templates,
        })
    }

    /// The caption of one cell.
    ///
    /// # Errors
    /// An undefined variable (named, with the closest defined one) or an evaluation error.
    pub fn render(&self, vars: &CaptionVars<'_>) -> Result<String, (String, Option<String>)> {
        let mut ctx = Map::new();
        ctx.insert("seed".into(), vars.seed.clone());
        for (k, v) in vars.sweep {
            if !RESERVED.contains(&k.as_str()) {
                ctx.insert(k.clone(), v.clone());
            }
        }
        ctx.insert("sweep".into(), Value::Object(vars.sweep.clone()));
        ctx.insert("job".into(), json!({"index": vars.job}));
        ctx.insert("node".into(), json!({"label": vars.node_label}));
        self.templates
            .render(&self.path, &self.source, &Context::new(ctx))
            .map_err(|p| (p.message, p.hint))
    }
}
