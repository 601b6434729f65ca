//! Checking a manifest against its workflow's inputs while building its jobs: input names, values,
//! image files, templates and required inputs, all problems at once.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use super::catalog::{InputCatalog, InputInfo, InputKind};
use super::diagnostic::{At, Diagnostics, ManifestError, closest};
use super::expand::{Combination, expand};
use super::file::ManifestFile;
use super::job::{InputValue, Job, LocalImage};
use super::model::Output;
use super::output::{OutputVars, check_name};
use super::source::{SourceMap, YamlPath};
use super::template::{Context, RESERVED, Templates, is_builtin};

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

/// The jobs of a valid manifest, with what the runner needs to name their outputs.
#[derive(Debug)]
pub struct Expansion {
    /// The jobs, in order.
    pub jobs: Vec<Job>,
    /// Every input some job sets, by system name, in the workflow's input order.
    pub inputs: IndexMap<String, InputInfo>,
    pub(crate) templates: Templates,
    pub(crate) contexts: ContextBuilder,
    pub(crate) output: Output,
    pub(crate) file: PathBuf,
    pub(crate) source: SourceMap,
}

impl Expansion {
    /// How many jobs.
    #[must_use]
    pub fn job_count(&self) -> usize {
        self.jobs.len()
    }

    /// Job `index` (0-based, `index < job_count()`), as the run submits it.
    ///
    /// # Panics
    /// When `index` is out of range.
    #[must_use]
    pub fn job(&self, index: usize) -> Job {
        self.jobs[index].clone()
    }

    /// Every job, in order.
    pub fn jobs(&self) -> impl Iterator<Item = Job> + '_ {
        (0..self.job_count()).map(|i| self.job(i))
    }

    /// The `output` section.
    #[must_use]
    pub fn output(&self) -> &Output {
        &self.output
    }
}

/// Builds the template variables of a job (see `docs/manifest.md#templates`).
#[derive(Debug, Clone)]
pub(crate) struct ContextBuilder {
    vars: Value,
    manifest: Value,
    runs: u32,
    job_count: usize,
    pub(crate) dir: PathBuf,
}

impl ContextBuilder {
    /// Variables without sweep values (what sweep values themselves are rendered with).
    pub(crate) fn base(&self, index: usize, run: u32) -> Map<String, Value> {
        let width = self.job_count.saturating_sub(1).max(1).to_string().len();
        let mut m = Map::new();
        m.insert("vars".into(), self.vars.clone());
        m.insert(
            "job".into(),
            json!({"index": index, "number": format!("{index:0width$}"), "count": self.job_count}),
        );
        m.insert("run".into(), json!({"index": run, "count": self.runs}));
        m.insert("manifest".into(), self.manifest.clone());
        m
    }

    /// Variables with the job's sweep values, each by its key (unless reserved) and in `sweep`.
    pub(crate) fn with_sweep(
        mut base: Map<String, Value>,
        sweep: &IndexMap<String, Value>,
    ) -> Map<String, Value> {
        for (k, v) in sweep {
            if !RESERVED.contains(&k.as_str()) {
                base.insert(k.clone(), v.clone());
            }
        }
        base.insert(
            "sweep".into(),
            Value::Object(sweep.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        );
        base
    }

    /// Output-side variables: the job's, plus node, image, item, batch, run id, date and inputs.
    pub(crate) fn output(
        &self,
        job: &Job,
        inputs: &IndexMap<String, InputInfo>,
        vars: &OutputVars,
    ) -> Map<String, Value> {
        let mut m = ContextBuilder::with_sweep(self.base(job.index, job.run), &job.sweep);
        m.insert(
            "node".into(),
            json!({"id": vars.node_id, "label": vars.node_label, "type": vars.node_type}),
        );
        m.insert(
            "image".into(),
            json!({"index": vars.image_index, "count": vars.image_count, "name": vars.image_name}),
        );
        m.insert("item".into(), json!({"id": vars.item_id}));
        m.insert("batch".into(), json!({"id": vars.batch_id}));
        if let Some(Value::Object(run)) = m.get_mut("run") {
            run.insert("id".into(), Value::String(vars.run_id.clone()));
        }
        m.insert("date".into(), Value::String(vars.date.clone()));
        m.insert("time".into(), Value::String(vars.time.clone()));
        let mut by_name = Map::new();
        for (system, value) in &job.inputs {
            let shown = value.display_json();
            if let Some(info) = inputs.get(system) {
                by_name.insert(info.user_name.clone(), shown.clone());
            }
            by_name.insert(system.clone(), shown);
        }
        m.insert("inputs".into(), Value::Object(by_name));
        m
    }
}

/// An input the manifest sets, and where.
struct Setting<'a> {
    info: InputInfo,
    path: YamlPath,
    value: &'a Value,
}

impl ManifestFile {
    /// Checks the manifest against the workflow's inputs and builds its jobs.
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
        let mut settings: IndexMap<String, Setting<'_>> = IndexMap::new();
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
                        settings.insert(info.system_name.clone(), Setting { info, path, value });
                    }
                }
                Err(e) => {
                    diags.push(&path, At::Key, e.message, e.hint);
                    unknown_inputs.push((path, value));
                }
            }
        }

        // The sweep, and what its keys are.
        let expanded = expand(&m.sweep, m.runs, &self.dir, options.max_jobs, &mut diags);
        if !self.broken.contains(&"output") && !self.broken.contains(&"sweep") {
            super::grid::check(
                &m.output,
                &expanded.keys,
                &expanded.combinations,
                &mut diags,
            );
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
                if !attempted.insert(path.clone()) {
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
        for combo in &expanded.combinations {
            for sv in combo.values() {
                if !sv.from_glob {
                    for_each_string(&sv.value, &sv.origin, &mut |p, text| {
                        compile(&mut templates, &mut diags, p, text)
                    });
                }
            }
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
                        "sweep key `{key}` is not an input of the workflow, and no template uses it"
                    ),
                    Some(hint),
                );
            }
        }

        // The jobs.
        let combos = &expanded.combinations;
        let job_count = combos.len() * m.runs as usize;
        let contexts = ContextBuilder {
            vars: Value::Object(m.vars.clone()),
            manifest: manifest_vars(&self.path, &self.dir),
            runs: m.runs,
            job_count,
            dir: self.dir.clone(),
        };
        let templates_usable = !self
            .broken
            .iter()
            .any(|s| matches!(*s, "sweep" | "vars" | "output"));
        let required = catalog.missing_required();
        let mut inputs_used: IndexMap<String, InputInfo> = IndexMap::new();
        let mut image_exists: HashMap<PathBuf, bool> = HashMap::new();
        let mut jobs = Vec::with_capacity(job_count);
        let mut builder = JobBuilder {
            catalog,
            templates: &templates,
            contexts: &contexts,
            templates_usable,
            image_exists: &mut image_exists,
            dir: &self.dir,
        };
        for run in 0..m.runs {
            for (i, combo) in combos.iter().enumerate() {
                let index = run as usize * combos.len() + i;
                let job = builder.build(index, run, combo, &settings, &sweep_inputs, &mut diags);
                for (path, value) in &unknown_inputs {
                    let base = contexts.base(index, run);
                    let ctx = Context::new(ContextBuilder::with_sweep(base, &job.sweep));
                    builder.render(value, path, &ctx, index, &mut diags);
                }
                for system in &required {
                    if !job.inputs.contains_key(system) {
                        let user = catalog.user_name(system).unwrap_or_else(|| system.clone());
                        let path = YamlPath::keys(&["inputs", system]);
                        let at = if self.source.contains(&YamlPath::keys(&["inputs"])) {
                            At::Key
                        } else {
                            At::Value
                        };
                        diags.push_job(index, &path, at, "required", || {
                            (
                                format!("required input `{user}` ({system}) has no value"),
                                Some(format!("the workflow leaves it empty; set it under `inputs:` as `{user}: VALUE`")),
                            )
                        });
                    }
                }
                if templates_usable {
                    builder.check_output_templates(
                        &job,
                        &settings,
                        &sweep_inputs,
                        &m.output,
                        &mut diags,
                    );
                }
                jobs.push(job);
            }
        }
        for s in settings.values() {
            inputs_used.insert(s.info.system_name.clone(), s.info.clone());
        }
        for info in sweep_inputs.values() {
            inputs_used.insert(info.system_name.clone(), info.clone());
        }
        inputs_used.sort_by(|_, a, _, b| a.index.cmp(&b.index));

        diags.into_result(job_count)?;
        Ok(Expansion {
            jobs,
            inputs: inputs_used,
            templates,
            contexts,
            output: m.output.clone(),
            file: self.path.clone(),
            source: self.source.clone(),
        })
    }
}

struct JobBuilder<'a> {
    catalog: &'a dyn InputCatalog,
    templates: &'a Templates,
    contexts: &'a ContextBuilder,
    templates_usable: bool,
    image_exists: &'a mut HashMap<PathBuf, bool>,
    dir: &'a std::path::Path,
}

impl JobBuilder<'_> {
    fn build(
        &mut self,
        index: usize,
        run: u32,
        combo: &Combination,
        settings: &IndexMap<String, Setting<'_>>,
        sweep_inputs: &HashMap<String, InputInfo>,
        diags: &mut Diagnostics<'_>,
    ) -> Job {
        // Sweep values are rendered first, with the variables that do not depend on them.
        let base = Context::new(self.contexts.base(index, run));
        let mut sweep: IndexMap<String, Value> = IndexMap::new();
        let mut failed: HashSet<String> = HashSet::new();
        for (key, sv) in combo {
            let value = if sv.from_glob {
                Some(sv.value.clone())
            } else {
                self.render(&sv.value, &sv.origin, &base, index, diags)
            };
            if value.is_none() {
                failed.insert(key.clone());
            }
            sweep.insert(key.clone(), value.unwrap_or_else(|| sv.value.clone()));
        }
        let full = Context::new(ContextBuilder::with_sweep(
            self.contexts.base(index, run),
            &sweep,
        ));

        // (input, rendered value or None when its template failed, where it came from)
        let mut values: Vec<(InputInfo, Option<Value>, YamlPath)> = Vec::new();
        for s in settings.values() {
            let swept = combo.keys().any(|k| {
                sweep_inputs
                    .get(k)
                    .is_some_and(|i| i.system_name == s.info.system_name)
            });
            if !swept {
                values.push((
                    s.info.clone(),
                    self.render(s.value, &s.path, &full, index, diags),
                    s.path.clone(),
                ));
            }
        }
        for (key, sv) in combo {
            if let (Some(info), Some(value)) = (sweep_inputs.get(key), sweep.get(key)) {
                let value = if failed.contains(key) {
                    None
                } else {
                    Some(value.clone())
                };
                values.push((info.clone(), value, sv.origin.clone()));
            }
        }
        values.sort_by_key(|(info, ..)| info.index);

        let mut inputs = IndexMap::new();
        for (info, value, origin) in values {
            // A value whose template failed is reported already; it still counts as set.
            let v = match value {
                Some(value) => self.input_value(&info, value, &origin, index, diags),
                None => None,
            };
            inputs.insert(
                info.system_name.clone(),
                v.unwrap_or_else(|| InputValue::value(Value::Null)),
            );
        }
        Job {
            index,
            run,
            inputs,
            sweep,
        }
    }

    /// Renders every string inside `value` that is a template; `None` when a template failed
    /// (the problem is recorded, and the value is not checked further).
    fn render(
        &self,
        value: &Value,
        path: &YamlPath,
        ctx: &Context,
        job: usize,
        diags: &mut Diagnostics<'_>,
    ) -> Option<Value> {
        match value {
            Value::String(_) if self.templates.failed(path) => None,
            Value::String(s) if self.templates.contains(path) => {
                if !self.templates_usable {
                    return None;
                }
                match self.templates.render(path, s, ctx) {
                    Ok(r) => Some(Value::String(r)),
                    Err(p) => {
                        diags.push_job(job, path, At::Value, "template", || (p.message, p.hint));
                        None
                    }
                }
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| self.render(v, &path.index(i), ctx, job, diags))
                .collect::<Option<Vec<_>>>()
                .map(Value::Array),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| {
                    self.render(v, &path.key(k), ctx, job, diags)
                        .map(|r| (k.clone(), r))
                })
                .collect::<Option<Map<_, _>>>()
                .map(Value::Object),
            other => Some(other.clone()),
        }
    }

    fn input_value(
        &mut self,
        info: &InputInfo,
        value: Value,
        origin: &YamlPath,
        job: usize,
        diags: &mut Diagnostics<'_>,
    ) -> Option<InputValue> {
        if info.kind == InputKind::Image {
            if let Value::String(written) = &value {
                let path = self.dir.join(written);
                let exists = *self
                    .image_exists
                    .entry(path.clone())
                    .or_insert_with(|| path.is_file());
                if !exists {
                    let dir = self.dir.display().to_string();
                    diags.push_job(job, origin, At::Value, &format!("image:{written}"), || {
                        (
                            format!("image file `{written}` not found (input `{}`)", info.user_name),
                            Some(format!(
                                "local paths are relative to the manifest's folder `{dir}`; for an image already on the server write `{{image_name: NAME}}`"
                            )),
                        )
                    });
                    return None;
                }
                return Some(InputValue::LocalImage(LocalImage {
                    written: written.clone(),
                    path,
                }));
            }
        }
        match self.catalog.check(info, &value) {
            Ok(v) => Some(InputValue::value(v)),
            Err(e) => {
                diags.push_job(job, origin, At::Value, "check", || {
                    (
                        format!(
                            "invalid value for input `{}`: {}",
                            info.user_name, e.message
                        ),
                        e.hint,
                    )
                });
                None
            }
        }
    }

    /// Renders `output.dir` and `output.name` with stand-in output values, so that undefined
    /// variables and names that leave the folder are found before anything runs.
    fn check_output_templates(
        &self,
        job: &Job,
        settings: &IndexMap<String, Setting<'_>>,
        sweep_inputs: &HashMap<String, InputInfo>,
        output: &Output,
        diags: &mut Diagnostics<'_>,
    ) {
        let mut infos: IndexMap<String, InputInfo> = settings
            .values()
            .map(|s| (s.info.system_name.clone(), s.info.clone()))
            .collect();
        for info in sweep_inputs.values() {
            infos.insert(info.system_name.clone(), info.clone());
        }
        let ctx = Context::new(self.contexts.output(job, &infos, &OutputVars::example()));
        for (key, source) in [("dir", &output.dir), ("name", &output.name)] {
            let path = YamlPath::keys(&["output", key]);
            match self.templates.render(&path, source, &ctx) {
                Ok(rendered) => {
                    let problem = if key == "name" {
                        check_name(&rendered).err()
                    } else if rendered.trim().is_empty() {
                        Some("`output.dir` renders to an empty path".to_owned())
                    } else {
                        None
                    };
                    if let Some(message) = problem {
                        diags.push_job(job.index, &path, At::Value, "path", || {
                            (message, Some("`output.name` is a path inside `output.dir`; put folders that lie elsewhere into `output.dir`".into()))
                        });
                    }
                }
                Err(p) => diags.push_job(job.index, &path, At::Value, "template", || {
                    (p.message, p.hint)
                }),
            }
        }
    }
}

fn manifest_vars(path: &std::path::Path, dir: &std::path::Path) -> Value {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let stem = path
        .file_stem()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    json!({"name": name, "stem": stem, "dir": dir.display().to_string(), "path": path.display().to_string()})
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

        fn missing_required(&self) -> Vec<String> {
            vec!["i.image".into()]
        }
    }

    /// Expands `yaml` (after a header naming a workflow file) in a folder with `a.png`;
    /// returns the jobs as `{user name: value}` lists, or the error text.
    fn expand_yaml(yaml: &str) -> Result<Vec<Value>, String> {
        let dir = tempfile::tempdir().expect("tempdir");
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
            .jobs
            .iter()
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
                Value::Object(m)
            })
            .collect())
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
