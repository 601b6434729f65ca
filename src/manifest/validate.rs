//! Checking a manifest against its workflow's inputs while making its jobs: input names, values,
//! image files, templates and required inputs, all problems at once.
//!
//! Jobs are never all in memory: [`Expansion::job`] makes job *i* from *i* (its sweep
//! combination, then its values). What does not depend on the job is worked out once: a value
//! that is no template, or a template that reads only `vars` and `manifest`, is rendered and
//! checked once per place in the manifest, and every job reuses the result. Validation makes
//! every job once, with the same code, and reports each problem once with the jobs it affects.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::catalog::{Checker, InputCatalog, InputInfo, InputKind};
use super::diagnostic::{At, Diagnostics, ManifestError, closest};
use super::expand::{Cell, Expanded, Limits, expand};
use super::file::ManifestFile;
use super::job::{InputValue, Job, LocalImage};
use super::model::Output;
use super::output::{OutputVars, check_name};
use super::scope::{OutputScope, OutputValues, Scope, Shared};
use super::scope::{RESERVED, file_vars};
use super::seed::{derive_seed, is_random_seed, job_identity};
use super::source::{Segment, SourceMap, YamlPath};
use super::template::{Context, Templates, is_builtin, is_template};

/// Limits of an expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpandOptions {
    /// Refuse a manifest that makes more jobs than this (`--max-jobs`).
    pub max_jobs: u64,
}

impl Default for ExpandOptions {
    fn default() -> ExpandOptions {
        ExpandOptions { max_jobs: 10_000 }
    }
}

/// The jobs of a valid manifest, made one at a time, with what the runner needs to name their
/// outputs.
#[derive(Debug)]
pub struct Expansion {
    /// Every input some job sets, by system name, in the workflow's input order.
    pub inputs: IndexMap<String, InputInfo>,
    pub(crate) jobs: Jobs,
    pub(crate) templates: Templates,
    pub(crate) output: Output,
    pub(crate) file: PathBuf,
    pub(crate) source: SourceMap,
}

impl Expansion {
    /// How many jobs.
    #[must_use]
    pub fn job_count(&self) -> usize {
        self.jobs.count
    }

    /// Job `index` (0-based, `index < job_count()`), as the run submits it. Validation made every
    /// job already, so this cannot fail.
    ///
    /// # Panics
    /// When `index` is out of range.
    #[must_use]
    pub fn job(&self, index: usize) -> Job {
        assert!(
            index < self.jobs.count,
            "job {index} of a manifest with {} jobs",
            self.jobs.count
        );
        self.jobs.build(&self.templates, index, &mut Quiet)
    }

    /// Every job, in order, each made when the iterator reaches it.
    pub fn jobs(&self) -> impl ExactSizeIterator<Item = Job> + '_ {
        (0..self.job_count()).map(|i| self.job(i))
    }

    /// The `output` section.
    #[must_use]
    pub fn output(&self) -> &Output {
        &self.output
    }
}

/// A problem found while making one job.
#[derive(Debug, Clone)]
struct Problem {
    path: YamlPath,
    at: At,
    /// Problems of the same kind at the same place are one diagnostic.
    kind: String,
    message: String,
    hint: Option<String>,
    /// A template that ran out of its budget: not rendered again.
    over_budget: bool,
}

impl Problem {
    fn template(path: &YamlPath, p: super::template::TemplateProblem) -> Problem {
        Problem {
            path: path.clone(),
            at: At::Value,
            kind: "template".into(),
            message: p.message,
            hint: p.hint,
            over_budget: p.over_budget,
        }
    }
}

/// Where the problems of each job go.
trait Sink {
    fn report(&mut self, job: usize, problem: &Problem);
    /// Whether a local image exists (checked once per path).
    fn image_exists(&mut self, path: &Path) -> bool;
    /// Whether the template at `path` is not to be rendered again (it ran out of its budget).
    fn spent(&self, path: &YamlPath) -> bool;
}

/// Making jobs of a valid manifest: nothing to report.
struct Quiet;

impl Sink for Quiet {
    fn report(&mut self, _: usize, _: &Problem) {}
    fn image_exists(&mut self, _: &Path) -> bool {
        true
    }
    fn spent(&self, _: &YamlPath) -> bool {
        false
    }
}

/// Validation: problems become diagnostics.
struct Checking<'d, 'a> {
    diags: &'d mut Diagnostics<'a>,
    images: HashMap<PathBuf, bool>,
    spent: HashSet<YamlPath>,
}

impl Sink for Checking<'_, '_> {
    fn report(&mut self, job: usize, p: &Problem) {
        if p.over_budget {
            // Reported once, without a job count: the template is not rendered again.
            if self.spent.insert(p.path.clone()) {
                self.diags
                    .push(&p.path, p.at, p.message.clone(), p.hint.clone());
            }
            return;
        }
        self.diags.push_job(job, &p.path, p.at, &p.kind, || {
            (p.message.clone(), p.hint.clone())
        });
    }

    fn image_exists(&mut self, path: &Path) -> bool {
        *self
            .images
            .entry(path.to_path_buf())
            .or_insert_with(|| path.is_file())
    }

    fn spent(&self, path: &YamlPath) -> bool {
        self.spent.contains(path)
    }
}

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

/// Above this many values a column's values are checked job by job instead of kept.
const MAX_KEPT_PER_COLUMN: usize = 1 << 16;

/// How the jobs of a manifest are made (everything but the templates, which the expansion owns).
#[derive(Debug)]
pub(crate) struct Jobs {
    expanded: Expanded,
    count: usize,
    pub(crate) shared: Arc<Shared>,
    inputs: Vec<Input>,
    settings: Vec<Setting>,
    /// Per sweep key (slot): the input it sets, as an index into `inputs`.
    sweep_inputs: Vec<Option<usize>>,
    /// Per column, per row: the state, when it is the same for every job (empty: not kept).
    columns: Vec<Vec<Option<CellState>>>,
    /// Per `include` entry, per key: the state, when it is the same for every job.
    includes: Vec<Vec<Option<CellState>>>,
    templates_usable: bool,
    /// The manifest's `seed` (0 when absent).
    manifest_seed: u64,
    pub(crate) dir: PathBuf,
    /// What the output templates see of the inputs.
    pub(crate) infos: Arc<IndexMap<String, InputInfo>>,
}

/// Names whose values are the same in every job.
const JOB_FREE: &[&str] = &["vars", "manifest", "source"];

impl Jobs {
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
    fn render_value(
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
    fn build(&self, templates: &Templates, index: usize, sink: &mut dyn Sink) -> Job {
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
                    let key = last(&s.path);
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

/// Reports the problems of `result` for job `job`; the value, when there is one.
fn report(
    result: &Result<InputValue, Vec<Problem>>,
    job: usize,
    sink: &mut dyn Sink,
) -> Option<InputValue> {
    match result {
        Ok(v) => Some(v.clone()),
        Err(problems) => {
            for p in problems {
                sink.report(job, p);
            }
            None
        }
    }
}

/// A template context made on first use.
struct LazyContext<F: Fn() -> Context> {
    make: F,
    made: Option<Context>,
}

impl<F: Fn() -> Context> LazyContext<F> {
    fn new(make: F) -> LazyContext<F> {
        LazyContext { make, made: None }
    }

    fn get(&mut self) -> &Context {
        self.made.get_or_insert_with(|| (self.make)())
    }
}

/// Whether every template string inside `value` reads only `allowed` variables.
fn reads_only(templates: &Templates, value: &Value, path: &YamlPath, allowed: &[&str]) -> bool {
    let mut all = true;
    for_each_string(value, path, &mut |p, _| {
        all &= templates.reads_only(p, allowed);
    });
    all
}

/// An input the manifest sets, and where.
struct Named<'a> {
    info: InputInfo,
    path: YamlPath,
    value: &'a Value,
}

/// The variables of `output.dir`: it is one folder per run.
const OUTPUT_DIR_NAMES: &[&str] = &["vars", "manifest", "source", "date", "time"];

/// The variables of `output.name` that are the same for every job (with stand-in values).
const OUTPUT_NAME_JOB_FREE: &[&str] = &[
    "vars", "manifest", "source", "date", "time", "node", "image", "item", "batch",
];

impl ManifestFile {
    /// Checks the manifest against the workflow's inputs and makes every job once.
    ///
    /// # Errors
    /// Every problem found here and while loading, each with its line and column.
    pub fn expand(
        &self,
        catalog: &dyn InputCatalog,
        options: &ExpandOptions,
    ) -> Result<Expansion, ManifestError> {
        let m = &self.manifest;
        let mut diags = Diagnostics::new(&self.path, &self.source);
        for (location, message, hint) in &self.pending {
            diags.push_at(*location, message.clone(), hint.clone());
        }

        // Input names under `inputs`.
        let mut settings: IndexMap<String, Named<'_>> = IndexMap::new();
        // Values of unknown inputs: their templates are still checked.
        let mut unknown_inputs: Vec<(YamlPath, &Value)> = Vec::new();
        for (key, value) in &m.inputs {
            let path = YamlPath::keys(&["inputs", key]);
            match catalog.resolve(key) {
                Ok(info) => {
                    if let Some(other) = settings.get(&info.system_name) {
                        diags.push(
                            &path,
                            At::Key,
                            format!(
                                "input `{}` is set twice (also as `{}`)",
                                info.system_name,
                                last(&other.path)
                            ),
                            Some("keep one of the two keys".into()),
                        );
                    } else {
                        settings.insert(info.system_name.clone(), Named { info, path, value });
                    }
                }
                Err(e) => {
                    diags.push(&path, At::Key, e.message, e.hint);
                    unknown_inputs.push((path, value));
                }
            }
        }

        // The sweep, and what its keys are.
        let runs = m.runs;
        let limits = Limits {
            runs,
            base_dir: &self.dir,
            max_jobs: options.max_jobs,
            manifest_seed: m.seed.unwrap_or(0),
        };
        let expanded = expand(&m.sweep, limits, &mut diags);
        if !self.broken.contains(&"output") && !self.broken.contains(&"sweep") {
            super::grid_check::check(&m.output, &expanded, &mut diags);
        }
        let mut sweep_inputs: HashMap<String, InputInfo> = HashMap::new();
        let mut swept_systems: HashMap<String, String> = HashMap::new();
        let mut unresolved = Vec::new();
        for (key, path) in &expanded.keys {
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
                    sweep_inputs.insert(key.clone(), info);
                }
                Err(e) => unresolved.push((key.clone(), path.clone(), e)),
            }
        }

        // Templates: compile every templated string once.
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
        let all_inputs = settings.values().map(|s| (&s.path, s.value));
        for (path, value) in all_inputs.chain(unknown_inputs.iter().map(|(p, v)| (p, *v))) {
            for_each_string(value, path, &mut |p, text| {
                compile(&mut templates, &mut diags, p, text)
            });
        }
        for (column, col) in expanded.columns.iter().enumerate() {
            if matches!(col.values, super::expand::Values::List(_)) {
                for row in 0..col.len() {
                    let cell = Cell::Column { column, row };
                    let origin = expanded.origin(cell);
                    for_each_string(&expanded.value(cell), &origin, &mut |p, text| {
                        compile(&mut templates, &mut diags, p, text)
                    });
                }
            }
        }
        for (_, cell) in expanded.include_cells() {
            let origin = expanded.origin(cell);
            for_each_string(&expanded.value(cell), &origin, &mut |p, text| {
                compile(&mut templates, &mut diags, p, text)
            });
        }
        let dir_path = YamlPath::keys(&["output", "dir"]);
        let name_path = YamlPath::keys(&["output", "name"]);
        compile(&mut templates, &mut diags, &dir_path, &m.output.dir);
        compile(&mut templates, &mut diags, &name_path, &m.output.name);

        // A sweep key that is no input is a template variable, and some template must use it.
        // (Unknowable when a template did not compile: that error is reported instead.)
        let sweep_used = used.contains("sweep") || templates.any_failed();
        // A name a template reads that is defined nowhere is a typo, reported as an undefined
        // variable; the sweep key it was meant to be is then not reported as unused too.
        let unknown_names: Vec<&String> = used
            .iter()
            .filter(|n| {
                !expanded.keys.contains_key(*n) && !RESERVED.contains(&n.as_str()) && !is_builtin(n)
            })
            .collect();
        for (key, path, e) in unresolved {
            let misspelled = unknown_names
                .iter()
                .any(|n| closest(n, [key.as_str()]).is_some());
            if !(used.contains(&key) || sweep_used || misspelled) {
                let hint = e.hint.unwrap_or_else(|| format!("use it in a template as `{{{{ {key} }}}}`, or name an input of the workflow"));
                diags.push(
                    &path,
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
            }
        }

        // The inputs jobs set, each with its check.
        let mut inputs_used: IndexMap<String, InputInfo> = IndexMap::new();
        for s in settings.values() {
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

        let job_count = expanded.count() * runs as usize;
        let shared = Shared::new(
            Value::Object(m.vars.clone()),
            file_vars(&self.path, &self.dir),
            self.each.as_ref().map(|e| e.vars.clone()),
            runs,
            job_count,
        );
        let templates_usable = !self
            .broken
            .iter()
            .any(|s| matches!(*s, "sweep" | "vars" | "output"));
        let mut jobs = Jobs {
            count: job_count,
            shared,
            inputs,
            settings: Vec::new(),
            sweep_inputs: slot_inputs,
            columns: Vec::new(),
            includes: Vec::new(),
            templates_usable,
            manifest_seed: m.seed.unwrap_or(0),
            dir: self.dir.clone(),
            infos: Arc::new(inputs_used.clone()),
            expanded,
        };
        jobs.settings = settings
            .values()
            .filter_map(|s| {
                let input = input_of(&s.info.system_name)?;
                let overridden_by = jobs
                    .sweep_inputs
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

        let mut sink = Checking {
            diags: &mut diags,
            images: HashMap::new(),
            spent: HashSet::new(),
        };
        if job_count > 0 {
            keep_what_every_job_shares(&mut jobs, &templates, &mut sink);
        }

        // Output templates.
        if templates_usable {
            check_output_dir(&jobs, &templates, &m.output, &mut *sink.diags);
        }
        let name_fixed: Option<Vec<Problem>> = (templates_usable
            && templates.reads_only(&name_path, OUTPUT_NAME_JOB_FREE))
        .then(|| {
            let scope = Scope::output(
                &jobs.shared,
                0,
                0,
                IndexMap::new(),
                OutputScope {
                    vars: OutputValues::new(OutputVars::example()),
                    inputs: None,
                },
            );
            output_name_problems(&templates, &m.output.name, &Context::scope(scope))
        });
        let example = OutputValues::new(OutputVars::example());
        let required: Vec<(String, String)> = catalog
            .missing_required()
            .into_iter()
            .map(|system| {
                let user = catalog.user_name(&system).unwrap_or_else(|| system.clone());
                (system, user)
            })
            .collect();
        let required_at = if self.source.contains(&YamlPath::keys(&["inputs"])) {
            At::Key
        } else {
            At::Value
        };
        let unknown_fixed: Vec<Option<Vec<Problem>>> = unknown_inputs
            .iter()
            .map(|(path, value)| {
                reads_only(&templates, value, path, JOB_FREE).then(|| {
                    let mut ctx = LazyContext::new(|| {
                        Context::scope(Scope::job(&jobs.shared, 0, 0, Some(IndexMap::new())))
                    });
                    jobs.render_value(&templates, value, path, &mut ctx, &sink)
                        .err()
                        .unwrap_or_default()
                })
            })
            .collect();

        // Every job, once.
        for index in 0..job_count {
            let job = jobs.build(&templates, index, &mut sink);
            for ((path, value), fixed) in unknown_inputs.iter().zip(&unknown_fixed) {
                let problems = match fixed {
                    Some(p) => p.clone(),
                    None => {
                        let mut ctx = LazyContext::new(|| {
                            Context::scope(Scope::job(
                                &jobs.shared,
                                index,
                                job.run,
                                Some(job.sweep.clone()),
                            ))
                        });
                        jobs.render_value(&templates, value, path, &mut ctx, &sink)
                            .err()
                            .unwrap_or_default()
                    }
                };
                for p in &problems {
                    sink.report(index, p);
                }
            }
            for (system, user) in &required {
                if !job.inputs.contains_key(system) {
                    let path = YamlPath::keys(&["inputs", system]);
                    sink.diags.push_job(index, &path, required_at, "required", || {
                        (
                            format!("required input `{user}` ({system}) has no value"),
                            Some(format!("the workflow leaves it empty; set it under `inputs:` as `{user}: VALUE`")),
                        )
                    });
                }
            }
            if templates_usable {
                let problems = match &name_fixed {
                    Some(p) => p.clone(),
                    None if sink.spent(&name_path) => Vec::new(),
                    None => {
                        let Job {
                            index,
                            run,
                            inputs,
                            sweep,
                            ..
                        } = job;
                        let scope = Scope::output(
                            &jobs.shared,
                            index,
                            run,
                            sweep,
                            OutputScope {
                                vars: example.clone(),
                                inputs: Some((inputs, jobs.infos.clone())),
                            },
                        );
                        output_name_problems(&templates, &m.output.name, &Context::scope(scope))
                    }
                };
                for p in &problems {
                    sink.report(index, p);
                }
            }
        }

        diags.into_result(job_count)?;
        Ok(Expansion {
            inputs: inputs_used,
            jobs,
            templates,
            output: m.output.clone(),
            file: self.path.clone(),
            source: self.source.clone(),
        })
    }
}

/// Renders and checks, once, every sweep value and every value under `inputs` that is the same
/// in every job (no template, or one that reads only `vars` and `manifest`).
fn keep_what_every_job_shares(jobs: &mut Jobs, templates: &Templates, sink: &mut dyn Sink) {
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
        includes[entry].push(free.then(|| jobs.cell_state(templates, slot, cell, &mut ctx, sink)));
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

/// `output.dir` is one folder per run: it may read only `vars`, `manifest`, `date` and `time`.
/// Checks that, and renders it once; whether it is usable.
fn check_output_dir(
    jobs: &Jobs,
    templates: &Templates,
    output: &Output,
    diags: &mut Diagnostics<'_>,
) -> bool {
    let path = YamlPath::keys(&["output", "dir"]);
    let varying: Vec<String> = templates
        .top_level_names(&path)
        .into_iter()
        .filter(|n| {
            !is_builtin(n)
                && !OUTPUT_DIR_NAMES.contains(&n.as_str())
                && (RESERVED.contains(&n.as_str()) || jobs.expanded.keys.contains_key(n))
        })
        .collect();
    if !varying.is_empty() {
        diags.push(
            &path,
            At::Value,
            "`output.dir` changes from job to job or file to file; it must be one folder (it holds the run's journal and summary)",
            Some("use only `vars`, `manifest`, `date` and `time` in `output.dir`, and put per-job folders in `output.name`, e.g. `name: \"{{ animal }}/{{ job.number }}\"`".into()),
        );
        return false;
    }
    if templates.failed(&path) {
        return false;
    }
    let scope = Scope::run_level(&jobs.shared, OutputValues::new(OutputVars::example()));
    match templates.render(&path, &output.dir, &Context::scope(scope)) {
        Ok(rendered) if rendered.trim().is_empty() => {
            diags.push(
                &path,
                At::Value,
                "`output.dir` renders to an empty path",
                Some("`output.name` is a path inside `output.dir`; put folders that lie elsewhere into `output.dir`".into()),
            );
            false
        }
        Ok(_) => true,
        Err(p) => {
            diags.push(&path, At::Value, p.message, p.hint);
            false
        }
    }
}

/// Renders `output.name` with stand-in output values and checks that it stays inside
/// `output.dir`.
fn output_name_problems(templates: &Templates, source: &str, ctx: &Context) -> Vec<Problem> {
    let path = YamlPath::keys(&["output", "name"]);
    match templates.render(&path, source, ctx) {
        Ok(rendered) => match check_name(&rendered) {
            Ok(()) => Vec::new(),
            Err(message) => vec![Problem {
                path,
                at: At::Value,
                kind: "path".into(),
                message,
                hint: Some("`output.name` is a path inside `output.dir`; put folders that lie elsewhere into `output.dir`".into()),
                over_budget: false,
            }],
        },
        Err(p) => vec![Problem::template(&path, p)],
    }
}

fn last(path: &YamlPath) -> String {
    match path.segments().last() {
        Some(super::source::Segment::Key(k)) => k.clone(),
        Some(super::source::Segment::Index(i)) => i.to_string(),
        None => String::new(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::catalog::CatalogError;
    use crate::manifest::seed::derive_seed;
    use serde_json::json;

    /// Prompt (text), Steps (integer >= 1), Photo (image, required), Model (model).
    struct Catalog;

    const INPUTS: &[(&str, &str, InputKind)] = &[
        ("p.text", "Prompt", InputKind::Other),
        ("d.steps", "Steps", InputKind::Other),
        ("i.image", "Photo", InputKind::Image),
        ("m.model", "Model", InputKind::Model),
    ];

    impl InputCatalog for Catalog {
        fn resolve(&self, key: &str) -> Result<InputInfo, CatalogError> {
            let i = INPUTS
                .iter()
                .position(|(s, u, _)| *s == key || *u == key)
                .ok_or_else(|| CatalogError::new(format!("unknown input `{key}`")))?;
            let (s, u, kind) = INPUTS[i];
            Ok(InputInfo {
                index: i,
                system_name: s.into(),
                user_name: u.into(),
                kind,
                batchable: kind != InputKind::Model,
            })
        }

        fn check(&self, input: &InputInfo, value: &Value) -> Result<Value, CatalogError> {
            match (input.system_name.as_str(), value) {
                ("d.steps", v) => match v.as_i64().or_else(|| v.as_str()?.parse().ok()) {
                    Some(n) if n >= 1 => Ok(json!(n)),
                    Some(n) => Err(CatalogError::new(format!("{n} is less than the minimum 1"))),
                    None => Err(CatalogError::new(format!("expected an integer, found {v}"))),
                },
                (_, v) => Ok(v.clone()),
            }
        }

        fn checker(&self, input: &InputInfo) -> Checker {
            let input = input.clone();
            Arc::new(move |value| Catalog.check(&input, value))
        }

        fn missing_required(&self) -> Vec<String> {
            vec!["i.image".into()]
        }
    }

    /// Expands `yaml` (after a header naming a workflow file) in a folder with `a.png`;
    /// returns the jobs as `{user name: value}` lists, or the error text.
    fn expand_yaml(yaml: &str) -> Result<Vec<Value>, String> {
        expand_with(&[], yaml).map(|jobs| jobs.into_iter().map(|j| j.0).collect())
    }

    /// As [`expand_yaml`], with data files beside the manifest; each job also with its seeds.
    fn expand_with(files: &[(&str, &str)], yaml: &str) -> Result<Vec<(Value, Value)>, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("data file");
        }
        std::fs::write(dir.path().join("wf.json"), "{}").expect("workflow");
        std::fs::write(dir.path().join("a.png"), "png").expect("image");
        let path = dir.path().join("m.yaml");
        let text = format!("version: 1\nworkflow: wf.json\n{yaml}");
        let strip = |s: String| s.replace(&format!("{}/", dir.path().display()), "");
        let file = ManifestFile::parse(&text, &path).map_err(|e| strip(e.to_string()))?;
        let expansion = file
            .expand(&Catalog, &ExpandOptions { max_jobs: 100 })
            .map_err(|e| strip(e.to_string()))?;
        Ok(expansion
            .jobs()
            .map(|j| {
                let m: Map<String, Value> = j
                    .inputs
                    .iter()
                    .map(|(k, v)| {
                        let user = expansion.inputs[k].user_name.clone();
                        let shown = match v {
                            InputValue::LocalImage(i) => json!(format!("local:{}", i.written)),
                            other => other.display_json(),
                        };
                        (user, shown)
                    })
                    .collect();
                (Value::Object(m), json!(j.seeds))
            })
            .collect())
    }

    #[test]
    fn table_rows_zip_their_columns_and_multiply_with_the_matrix() {
        let csv = "Prompt,Steps\n\"a cat, sitting\",1\ndog,2\nfox,3\n";
        let jobs = expand_with(
            &[("t.csv", csv)],
            "inputs: {Photo: a.png, Model: '{{ mood }}'}\nsweep: {table: t.csv, matrix: {mood: [x, y]}}",
        )
        .expect("valid");
        let shown: Vec<String> = jobs
            .iter()
            .map(|(j, _)| format!("{}|{}|{}", j["Prompt"], j["Steps"], j["Model"]))
            .collect();
        assert_eq!(
            shown,
            [
                "\"a cat, sitting\"|1|\"x\"",
                "\"a cat, sitting\"|1|\"y\"",
                "\"dog\"|2|\"x\"",
                "\"dog\"|2|\"y\"",
                "\"fox\"|3|\"x\"",
                "\"fox\"|3|\"y\"",
            ]
        );
        // JSON Lines keep their types; two tables are a product; lines are one value each.
        let jobs = expand_with(
            &[
                ("a.jsonl", "{\"Steps\": 4}\n{\"Steps\": 5}\n"),
                ("p.txt", "# prompts\nred\n\nblue\n"),
            ],
            "inputs: {Photo: a.png}\nsweep: {table: [a.jsonl], matrix: {Prompt: {lines: p.txt}}}",
        )
        .expect("valid");
        let shown: Vec<String> = jobs
            .iter()
            .map(|(j, _)| format!("{}/{}", j["Steps"], j["Prompt"]))
            .collect();
        assert_eq!(
            shown,
            ["4/\"red\"", "4/\"blue\"", "5/\"red\"", "5/\"blue\""]
        );
    }

    #[test]
    fn table_problems_are_placed_in_the_table() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "Prompt,Steps\ncat,1\ndog\n",
                "sweep: {table: t.csv}",
                "t.csv:3:1: error: this row has 1 field, the header has 2: `Prompt`, `Steps`\n  hint: every row needs one value per column; quote a value that holds the separator",
            ),
            (
                "Prompt,Stpes\ncat,1\n",
                "sweep: {table: t.csv}",
                "t.csv:1:8: error: column `Stpes` is not an input of the workflow, and no template uses it\n  hint: use it in a template as `{{ Stpes }}`, or name an input of the workflow",
            ),
            (
                "Prompt,Steps\ncat,1\ndog,many\n",
                "sweep: {table: t.csv}",
                "t.csv:3:5: error: invalid value for input `Steps`: expected an integer, found \"many\" (in job 1)",
            ),
            (
                "Steps\n1\n",
                "sweep: {table: t.csv, matrix: {Steps: [2]}}",
                "m.yaml:4:32: error: `Steps` is swept twice (also at `sweep.table.Steps`)\n  hint: a key may come from only one table, `sweep.matrix` or `sweep.zip` group",
            ),
        ];
        for (csv, sweep, expected) in cases {
            let yaml = format!("inputs: {{Photo: a.png}}\n{sweep}");
            let err = expand_with(&[("t.csv", csv)], &yaml).expect_err(csv);
            let err = regex_free_dir(&err);
            assert!(
                err.starts_with(expected),
                "{csv}\n  got: {err}\n want: {expected}"
            );
        }
        let err = expand_with(
            &[("p.txt", "# steps\n3\n  many\n")],
            "inputs: {Photo: a.png}\nsweep: {matrix: {Steps: {lines: p.txt}}}",
        )
        .expect_err("not a number");
        assert_eq!(
            err,
            "p.txt:3:3: error: invalid value for input `Steps`: expected an integer, found \"many\" (in job 1)"
        );
        let err =
            expand_with(&[], "inputs: {Photo: a.png}\nsweep: {table: t.xlsx}").expect_err("xlsx");
        assert!(
            err.starts_with("m.yaml:4:16: error: `t.xlsx` is not a table file this version reads"),
            "{err}"
        );
        let err = expand_with(
            &[],
            "inputs: {Photo: a.png}\nsweep: {matrix: {Prompt: {lines: p.txt}}}",
        )
        .expect_err("missing");
        assert!(
            err.starts_with("m.yaml:4:34: error: data file `p.txt` not found"),
            "{err}"
        );
    }

    #[test]
    fn seeds_are_derived_from_the_job_and_recorded() {
        let yaml = "inputs: {Photo: a.png, Steps: {seed: random}}\nseed: 9\nruns: 2\nsweep: {matrix: {Prompt: [cat, dog]}}";
        let jobs = expand_with(&[], yaml).expect("valid");
        let seeds: Vec<u64> = jobs
            .iter()
            .map(|(j, s)| {
                let seed = j["Steps"].as_u64().expect("an integer");
                assert_eq!(s["Steps"], seed, "recorded as used");
                seed
            })
            .collect();
        let expected: Vec<u64> = [(0, "cat"), (0, "dog"), (1, "cat"), (1, "dog")]
            .iter()
            .map(|(run, prompt)| {
                let sweep: IndexMap<String, Value> = [("Prompt".to_owned(), json!(prompt))].into();
                derive_seed(9, &job_identity("Steps", *run, &sweep))
            })
            .collect();
        assert_eq!(seeds, expected);
        assert_eq!(
            seeds.iter().collect::<HashSet<_>>().len(),
            4,
            "every job has its own seed"
        );
        // The same manifest gives the same seeds; another manifest seed gives others.
        let again: Vec<Value> = expand_with(&[], yaml)
            .expect("valid")
            .into_iter()
            .map(|j| j.0)
            .collect();
        assert_eq!(again, jobs.iter().map(|j| j.0.clone()).collect::<Vec<_>>());
        let other = expand_with(&[], &yaml.replace("seed: 9", "seed: 10")).expect("valid");
        assert_ne!(other[0].0["Steps"], jobs[0].0["Steps"]);

        // `{seeds: N}`: N seeds per combination, the same N for each.
        let jobs = expand_with(
            &[],
            "inputs: {Photo: a.png}\nsweep: {matrix: {Prompt: [cat, dog], Steps: {seeds: 3}}}",
        )
        .expect("valid");
        assert_eq!(jobs.len(), 6);
        let per_prompt: Vec<Vec<Value>> = jobs
            .chunks(3)
            .map(|c| c.iter().map(|(j, _)| j["Steps"].clone()).collect())
            .collect();
        assert_eq!(per_prompt[0], per_prompt[1]);
        assert_eq!(per_prompt[0].iter().collect::<HashSet<_>>().len(), 3);
        assert_eq!(jobs[1].1, json!({"Steps": per_prompt[0][1]}));
    }

    #[test]
    fn jobs_are_built_from_inputs_sweep_and_templates() {
        let cases: &[(&str, &str, Value)] = &[
            (
                "a sweep value replaces the value under inputs, whatever key names the input",
                "inputs: {Photo: a.png, Steps: 4}\nsweep: {matrix: {d.steps: [1, 2]}}",
                json!([{"Photo": "local:a.png", "Steps": 1}, {"Photo": "local:a.png", "Steps": 2}]),
            ),
            (
                "sweep values are templates over vars and job; inputs see them by key",
                "inputs: {Photo: a.png, Prompt: '{{ animal }}!'}\nvars: {x: big}\nsweep: {matrix: {animal: ['{{ vars.x }} cat', 'dog {{ job.index }}']}}",
                json!([{"Prompt": "big cat!", "Photo": "local:a.png"}, {"Prompt": "dog 1!", "Photo": "local:a.png"}]),
            ),
            (
                "a reserved sweep key is read through sweep[...]",
                "inputs: {Photo: a.png, Prompt: \"{{ sweep['job'] }}-{{ job.index }}\"}\nsweep: {matrix: {job: [x]}}",
                json!([{"Prompt": "x-0", "Photo": "local:a.png"}]),
            ),
            (
                "template strings convert to the input's type",
                "inputs: {Photo: a.png, Steps: '{{ 2 * (run.index + 1) }}'}\nruns: 2",
                json!([{"Steps": 2, "Photo": "local:a.png"}, {"Steps": 4, "Photo": "local:a.png"}]),
            ),
            (
                "an image already on the server is a value, not a file",
                "inputs: {Photo: {image_name: x.png}}",
                json!([{"Photo": {"image_name": "x.png"}}]),
            ),
            (
                "include keys that are no inputs are template variables",
                "inputs: {Photo: a.png, Prompt: '{{ mood | default(\"calm\") }}'}\nsweep:\n  matrix: {Steps: [1, 2]}\n  include: [{Steps: 2, mood: wild}]",
                json!([{"Prompt": "calm", "Steps": 1, "Photo": "local:a.png"}, {"Prompt": "wild", "Steps": 2, "Photo": "local:a.png"}]),
            ),
        ];
        for (name, yaml, expected) in cases {
            let jobs = expand_yaml(yaml).unwrap_or_else(|e| panic!("{name}:\n{e}"));
            assert_eq!(Value::Array(jobs), *expected, "{name}");
        }
    }

    #[test]
    fn problems_are_reported_once_with_their_job_count() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "a bad value in some jobs",
                "inputs: {Photo: a.png}\nsweep: {matrix: {Steps: [1, 0]}, zip: {Prompt: [a, b, c]}}",
                "m.yaml:4:29: error: invalid value for input `Steps`: 0 is less than the minimum 1 (in 3 of 6 jobs, first job 3)",
            ),
            (
                "a required input missing in every job is one problem",
                "inputs: {Prompt: x}\nsweep: {matrix: {Steps: [1, 2, 3]}}",
                "m.yaml:3:1: error: required input `Photo` (i.image) has no value\n  hint: the workflow leaves it empty; set it under `inputs:` as `Photo: VALUE`",
            ),
            (
                "the template of an unknown input is still checked",
                "inputs: {Photo: a.png, Promt: '{{ nope }}'}",
                "m.yaml:3:24: error: unknown input `Promt`\nm.yaml:3:31: error: undefined variable `nope`\n  hint: defined here: `vars`, `job`, `run`, `manifest`, `sweep`",
            ),
            (
                "a missing image file is reported once for all jobs that use it",
                "inputs: {Photo: b.png}\nruns: 3",
                "m.yaml:3:17: error: image file `b.png` not found (input `Photo`)\n  hint: local paths are relative to the manifest's folder ``; for an image already on the server write `{image_name: NAME}`",
            ),
            (
                "output names are checked before anything runs",
                "inputs: {Photo: a.png}\noutput: {name: '{{ node.lable }}'}",
                "m.yaml:4:16: error: undefined variable `node.lable`\n  hint: did you mean `node.label`?",
            ),
        ];
        for (name, yaml, expected) in cases {
            let err = expand_yaml(yaml).expect_err(name);
            let err = regex_free_dir(&err);
            assert_eq!(err, *expected, "{name}");
        }
    }

    /// Replaces the temporary folder named in a hint (`/tmp/.tmpXYZ`) by nothing.
    fn regex_free_dir(s: &str) -> String {
        match (s.find("folder `"), s.find("`; for")) {
            (Some(a), Some(b)) if a < b => format!("{}folder `{}", &s[..a], &s[b..]),
            _ => s.to_owned(),
        }
    }
}
