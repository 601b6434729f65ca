//! How the jobs of a manifest are made: job *i* from sweep combination *i* and the values under
//! `inputs`, with what every job shares rendered and checked once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::super::catalog::{Checker, InputCatalog, InputInfo, InputKind};
use super::super::diagnostic::{At, bounded};
use super::super::file::ManifestFile;
use super::super::job::{InputValue, Job, LocalImage};
use super::super::model::DynamicAxis;
use super::super::scope::{Scope, Shared, file_vars};
use super::super::seed::{derive_seed, is_random_seed, job_identity};
use super::super::source::YamlPath;
use super::super::template::{Context, Templates};
use super::compile::reads_only;
use super::expand::replace_axis;
use super::inputs::InputKeys;
use super::problem::{Problem, Sink, report};
use super::sweep::{Cell, Expanded};

/// An input some job sets, and how its values are checked.
struct Input {
    info: InputInfo,
    checker: Checker,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input").field("info", &self.info).finish()
    }
}

/// A value under `inputs` for an input of the workflow.
#[derive(Debug)]
struct Setting {
    /// Index into [`Jobs::inputs`].
    input: usize,
    path: YamlPath,
    value: Value,
    /// Sweep keys (slots) that set the same input: a job with one of them takes the sweep's value.
    overridden_by: Vec<usize>,
    /// `{seed: random}`: the value is a seed derived for each job.
    random_seed: bool,
    /// The value, when it is the same for every job.
    fixed: Option<Result<InputValue, Vec<Problem>>>,
}

/// A sweep value, rendered and checked.
#[derive(Debug, Clone)]
enum CellState {
    Ready {
        shown: Value,
        /// The input value, when the key is an input.
        input: Option<Result<InputValue, Vec<Problem>>>,
    },
    Failed(Vec<Problem>),
}

/// A `{replace: [...], in: INPUT}` axis: its key, the input it edits, the word searched for.
#[derive(Debug)]
struct Replace {
    slot: usize,
    input: usize,
    first: String,
    /// The input as written after `in`.
    written: String,
    /// Where the first word is written.
    path: YamlPath,
}

/// Above this many values a column's values are checked job by job instead of kept.
const MAX_KEPT_PER_COLUMN: usize = 1 << 16;

/// How the jobs of a manifest are made (everything but the templates, which the expansion owns).
#[derive(Debug)]
pub(crate) struct Jobs {
    pub(super) expanded: Expanded,
    pub(super) count: usize,
    pub(crate) shared: Arc<Shared>,
    inputs: Vec<Input>,
    settings: Vec<Setting>,
    /// Per sweep key (slot): the input it sets, as an index into `inputs`.
    sweep_inputs: Vec<Option<usize>>,
    /// Per column, per row: the state, when it is the same for every job (empty: not kept).
    columns: Vec<Vec<Option<CellState>>>,
    /// Per `include` entry, per key: the state, when it is the same for every job.
    includes: Vec<Vec<Option<CellState>>>,
    /// Whether templates can be rendered (no broken `sweep`, `vars` or `output`).
    pub(super) templates_usable: bool,
    /// The manifest's `seed` (0 when absent).
    manifest_seed: u64,
    /// The search/replace axes.
    replaces: Vec<Replace>,
    pub(crate) dir: PathBuf,
    /// What the output templates see of the inputs.
    pub(crate) infos: Arc<IndexMap<String, InputInfo>>,
}

/// Names whose values are the same in every job.
pub(super) const JOB_FREE: &[&str] = &["vars", "manifest", "source"];

impl Jobs {
    /// How the jobs of `file` are made: `expanded` is its sweep, `input_keys` its keys under
    /// `inputs`, `sweep_inputs` its sweep keys that name an input.
    pub(super) fn new(
        file: &ManifestFile,
        catalog: &dyn InputCatalog,
        expanded: Expanded,
        input_keys: &InputKeys<'_>,
        sweep_inputs: &HashMap<String, InputInfo>,
    ) -> Jobs {
        let m = &file.manifest;
        // The inputs jobs set, each with its check.
        let mut inputs_used: IndexMap<String, InputInfo> = IndexMap::new();
        for s in input_keys.known.values() {
            inputs_used.insert(s.info.system_name.clone(), s.info.clone());
        }
        for info in sweep_inputs.values() {
            inputs_used.insert(info.system_name.clone(), info.clone());
        }
        inputs_used.sort_by(|_, a, _, b| a.index.cmp(&b.index));
        let inputs: Vec<Input> = inputs_used
            .values()
            .map(|info| Input {
                info: info.clone(),
                checker: catalog.checker(info),
            })
            .collect();
        let input_of = |system: &str| inputs_used.get_index_of(system);
        let slot_inputs: Vec<Option<usize>> = expanded
            .keys
            .keys()
            .map(|k| {
                sweep_inputs
                    .get(k)
                    .and_then(|info| input_of(&info.system_name))
            })
            .collect();
        let settings = input_keys
            .known
            .values()
            .filter_map(|s| {
                // `{dynamic: ...}` under `inputs` is a sweep key: the sweep sets the input.
                if DynamicAxis::of(s.value).is_some() {
                    return None;
                }
                let input = input_of(&s.info.system_name)?;
                let overridden_by = slot_inputs
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| **i == Some(input))
                    .map(|(slot, _)| slot)
                    .collect();
                Some(Setting {
                    input,
                    path: s.path.clone(),
                    value: s.value.clone(),
                    overridden_by,
                    random_seed: is_random_seed(s.value),
                    fixed: None,
                })
            })
            .collect();

        let replaces = expanded
            .replace_columns()
            .into_iter()
            .filter_map(|(_, slot, path)| {
                let axis = replace_axis(&m.sweep, path)?;
                let info = catalog.resolve(&axis.input).ok()?;
                Some(Replace {
                    slot,
                    input: input_of(&info.system_name)?,
                    first: axis.replace[0].clone(),
                    written: axis.input.clone(),
                    path: path.key("replace").index(0),
                })
            })
            .collect();
        let job_count = expanded.count() * m.runs as usize;
        let shared = Shared::new(
            Value::Object(m.vars.clone()),
            file_vars(&file.path, &file.dir),
            file.each.as_ref().map(|e| e.vars.clone()),
            m.runs,
            job_count,
        );
        let templates_usable = !file
            .broken
            .iter()
            .any(|s| matches!(*s, "sweep" | "vars" | "output"));
        Jobs {
            count: job_count,
            shared,
            inputs,
            settings,
            sweep_inputs: slot_inputs,
            columns: Vec::new(),
            includes: Vec::new(),
            templates_usable,
            manifest_seed: m.seed.unwrap_or(0),
            replaces,
            dir: file.dir.clone(),
            infos: Arc::new(inputs_used),
            expanded,
        }
    }

    fn key(&self, slot: usize) -> &str {
        self.expanded
            .keys
            .get_index(slot)
            .map_or("", |(k, _)| k.as_str())
    }

    fn cached(&self, cell: Cell) -> Option<&CellState> {
        match cell {
            Cell::Column { column, row } => self.columns[column].get(row)?.as_ref(),
            Cell::Include { entry, key } => self.includes[entry][key].as_ref(),
        }
    }

    /// Renders every template string inside `value`; `Err` when one failed (its problem, or
    /// nothing when it is reported elsewhere: a template that did not compile or ran out of
    /// budget, or a manifest whose templates cannot be trusted).
    pub(super) fn render_value(
        &self,
        templates: &Templates,
        value: &Value,
        path: &YamlPath,
        ctx: &mut LazyContext<impl Fn() -> Context>,
        sink: &dyn Sink,
    ) -> Result<Value, Vec<Problem>> {
        match value {
            Value::String(_) if templates.failed(path) => Err(Vec::new()),
            Value::String(s) if templates.contains(path) => {
                if !self.templates_usable || sink.spent(path) {
                    return Err(Vec::new());
                }
                templates
                    .render(path, s, ctx.get())
                    .map(Value::String)
                    .map_err(|p| vec![Problem::template(path, p)])
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| self.render_value(templates, v, &path.index(i), ctx, sink))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| {
                    self.render_value(templates, v, &path.key(k), ctx, sink)
                        .map(|r| (k.clone(), r))
                })
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object),
            other => Ok(other.clone()),
        }
    }

    /// Checks and converts a rendered value for input `input` (a string for an image input is a
    /// local file).
    fn convert(
        &self,
        input: usize,
        value: &Value,
        origin: &YamlPath,
        sink: &mut dyn Sink,
    ) -> Result<InputValue, Vec<Problem>> {
        let Input { info, checker } = &self.inputs[input];
        if info.kind == InputKind::Image {
            if let Value::String(written) = value {
                let path = self.dir.join(written);
                if !sink.image_exists(&path) {
                    return Err(vec![Problem {
                        path: origin.clone(),
                        at: At::Value,
                        kind: format!("image:{written}"),
                        message: format!(
                            "image file `{written}` not found (input `{}`)",
                            info.user_name
                        ),
                        hint: Some(format!(
                            "local paths are relative to the manifest's folder `{}`; for an image already on the server write `{{image_name: NAME}}`",
                            self.dir.display()
                        )),
                        over_budget: false,
                    }]);
                }
                return Ok(InputValue::LocalImage(LocalImage {
                    written: written.clone(),
                    path,
                }));
            }
        }
        checker(value).map(InputValue::value).map_err(|e| {
            vec![Problem {
                path: origin.clone(),
                at: At::Value,
                kind: "check".into(),
                message: format!(
                    "invalid value for input `{}`: {}",
                    info.user_name, e.message
                ),
                hint: e.hint,
                over_budget: false,
            }]
        })
    }

    /// Renders and checks the sweep value at `cell` (key `slot`).
    fn cell_state(
        &self,
        templates: &Templates,
        slot: usize,
        cell: Cell,
        ctx: &mut LazyContext<impl Fn() -> Context>,
        sink: &mut dyn Sink,
    ) -> CellState {
        let value = self.expanded.value(cell);
        let origin = self.expanded.origin(cell);
        let shown = if self.expanded.is_literal(cell) {
            Ok(value.into_owned())
        } else {
            self.render_value(templates, &value, &origin, ctx, sink)
        };
        match shown {
            Err(problems) => CellState::Failed(problems),
            Ok(shown) => {
                let input = self.sweep_inputs[slot].map(|i| self.convert(i, &shown, &origin, sink));
                CellState::Ready { shown, input }
            }
        }
    }

    /// Makes job `index`; problems go to `sink` (a value that failed is `null` in the job).
    pub(super) fn build(&self, templates: &Templates, index: usize, sink: &mut dyn Sink) -> Job {
        let combos = self.expanded.count().max(1);
        let run = u32::try_from(index / combos).unwrap_or(u32::MAX);
        let combo = self.expanded.combination(index % combos);

        // Sweep values are rendered first, with the variables that do not depend on them.
        let shared = &self.shared;
        let mut base = LazyContext::new(|| Context::scope(Scope::job(shared, index, run, None)));
        let mut sweep: IndexMap<String, Value> = IndexMap::with_capacity(combo.len());
        let mut seeds: IndexMap<String, u64> = IndexMap::new();
        // (input, value or None when it failed, where it came from)
        let mut values: Vec<(usize, Option<InputValue>)> = Vec::with_capacity(self.inputs.len());
        for &(slot, cell) in &combo {
            let computed;
            let state = match self.cached(cell) {
                Some(state) => state,
                None => {
                    computed = self.cell_state(templates, slot, cell, &mut base, sink);
                    &computed
                }
            };
            let key = self.key(slot).to_owned();
            match state {
                CellState::Ready { shown, input } => {
                    if let (true, Some(seed)) = (self.expanded.is_seed(cell), shown.as_u64()) {
                        seeds.insert(key.clone(), seed);
                    }
                    sweep.insert(key, shown.clone());
                    if let (Some(input), Some(result)) = (self.sweep_inputs[slot], input) {
                        values.push((input, report(result, index, sink)));
                    }
                }
                CellState::Failed(problems) => {
                    for p in problems {
                        sink.report(index, p);
                    }
                    sweep.insert(key, self.expanded.value(cell).into_owned());
                    if let Some(input) = self.sweep_inputs[slot] {
                        values.push((input, None));
                    }
                }
            }
        }
        drop(base);

        {
            let mut full = LazyContext::new(|| {
                Context::scope(Scope::job(shared, index, run, Some(sweep.clone())))
            });
            for s in &self.settings {
                let swept = s
                    .overridden_by
                    .iter()
                    .any(|slot| combo.iter().any(|(s, _)| s == slot));
                if swept {
                    continue;
                }
                if s.random_seed {
                    let key = s.path.last_step();
                    let seed = derive_seed(self.manifest_seed, &job_identity(&key, run, &sweep));
                    seeds.insert(key, seed);
                    let result = self.convert(s.input, &Value::from(seed), &s.path, sink);
                    values.push((s.input, report(&result, index, sink)));
                    continue;
                }
                let value = match &s.fixed {
                    Some(result) => report(result, index, sink),
                    None => {
                        let result = self
                            .render_value(templates, &s.value, &s.path, &mut full, sink)
                            .and_then(|v| self.convert(s.input, &v, &s.path, sink));
                        report(&result, index, sink)
                    }
                };
                values.push((s.input, value));
            }
        }
        self.apply_replaces(&combo, &sweep, &mut values, index, sink);
        values.sort_by_key(|(input, _)| self.inputs[*input].info.index);
        let inputs = values
            .into_iter()
            .map(|(input, value)| {
                (
                    self.inputs[input].info.system_name.clone(),
                    value.unwrap_or_else(|| InputValue::value(Value::Null)),
                )
            })
            .collect();
        Job {
            index,
            run,
            inputs,
            sweep,
            seeds,
        }
    }
}

impl Jobs {
    /// Replaces, in the text of each search/replace axis's input, its first word by the job's.
    fn apply_replaces(
        &self,
        combo: &[(usize, Cell)],
        sweep: &IndexMap<String, Value>,
        values: &mut [(usize, Option<InputValue>)],
        index: usize,
        sink: &mut dyn Sink,
    ) {
        for r in &self.replaces {
            if !combo.iter().any(|(slot, _)| *slot == r.slot) {
                continue;
            }
            let Some(Value::String(word)) = sweep.get(self.key(r.slot)) else {
                continue;
            };
            let Some((_, Some(InputValue::Value(current)))) =
                values.iter_mut().find(|(i, _)| *i == r.input)
            else {
                continue;
            };
            let Value::String(text) = current.get() else {
                sink.report(
                    index,
                    &Problem {
                        path: r.path.clone(),
                        at: At::Value,
                        kind: "replace-text".into(),
                        message: format!(
                            "input `{}` holds no text to replace `{}` in",
                            r.written, r.first
                        ),
                        hint: Some("`in` names a text input, such as a prompt".into()),
                        over_budget: false,
                    },
                );
                continue;
            };
            if !text.contains(r.first.as_str()) {
                sink.report(
                    index,
                    &Problem {
                        path: r.path.clone(),
                        at: At::Value,
                        kind: "replace-missing".into(),
                        message: format!(
                            "`{}`, the word `replace` searches for, does not occur in the text of input `{}`: {}",
                            r.first,
                            r.written,
                            bounded(text)
                        ),
                        hint: Some(format!(
                            "the first word of `replace` is the one in the text; write it there (`... {} ...`) or put the word that is there first",
                            r.first
                        )),
                        over_budget: false,
                    },
                );
                continue;
            }
            let replaced = text.replace(r.first.as_str(), word);
            *current = super::super::job::ValueKey::new(Value::String(replaced));
        }
    }
}

/// A template context made on first use.
pub(super) struct LazyContext<F: Fn() -> Context> {
    make: F,
    made: Option<Context>,
}

impl<F: Fn() -> Context> LazyContext<F> {
    pub(super) fn new(make: F) -> LazyContext<F> {
        LazyContext { make, made: None }
    }

    fn get(&mut self) -> &Context {
        self.made.get_or_insert_with(|| (self.make)())
    }
}

impl Jobs {
    /// Renders and checks, once, every sweep value and every value under `inputs` that is the same
    /// in every job (no template, or one that reads only `vars` and `manifest`).
    pub(super) fn keep_what_every_job_shares(
        &mut self,
        templates: &Templates,
        sink: &mut dyn Sink,
    ) {
        let jobs = self;
        let shared = jobs.shared.clone();
        let mut ctx = LazyContext::new(|| Context::scope(Scope::job(&shared, 0, 0, None)));
        let mut columns = Vec::with_capacity(jobs.expanded.columns.len());
        for (column, col) in jobs.expanded.columns.iter().enumerate() {
            if col.len() > MAX_KEPT_PER_COLUMN {
                columns.push(Vec::new());
                continue;
            }
            let states = (0..col.len())
                .map(|row| {
                    let cell = Cell::Column { column, row };
                    let free = jobs.expanded.is_literal(cell)
                        || reads_only(
                            templates,
                            &jobs.expanded.value(cell),
                            &jobs.expanded.origin(cell),
                            JOB_FREE,
                        );
                    free.then(|| jobs.cell_state(templates, col.slot, cell, &mut ctx, sink))
                })
                .collect();
            columns.push(states);
        }
        let mut includes: Vec<Vec<Option<CellState>>> = jobs
            .expanded
            .include_sizes()
            .map(Vec::with_capacity)
            .collect();
        for (slot, cell) in jobs.expanded.include_cells() {
            let Cell::Include { entry, .. } = cell else {
                continue;
            };
            let free = reads_only(
                templates,
                &jobs.expanded.value(cell),
                &jobs.expanded.origin(cell),
                JOB_FREE,
            );
            includes[entry]
                .push(free.then(|| jobs.cell_state(templates, slot, cell, &mut ctx, sink)));
        }
        let fixed: Vec<Option<Result<InputValue, Vec<Problem>>>> = jobs
            .settings
            .iter()
            .map(|s| {
                (!s.random_seed && reads_only(templates, &s.value, &s.path, JOB_FREE)).then(|| {
                    jobs.render_value(templates, &s.value, &s.path, &mut ctx, sink)
                        .and_then(|v| jobs.convert(s.input, &v, &s.path, sink))
                })
            })
            .collect();
        drop(ctx);
        jobs.columns = columns;
        jobs.includes = includes;
        for (s, f) in jobs.settings.iter_mut().zip(fixed) {
            s.fixed = f;
        }
    }
}
