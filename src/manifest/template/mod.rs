//! Templates in manifests: minijinja with strict undefined, one compiled template per place in the
//! manifest, and the variables each place can use.
//!
//! Strings in `inputs`, sweep values, `include` entries and `output.dir`/`output.name` are
//! templates. A string without `{{`, `{%` or `{#` is taken as it is and never compiled.
//!
//! Every render has a budget: at most [`FUEL`] steps of the template engine, a result of at most
//! [`MAX_RESULT_BYTES`] bytes, and, while it runs, at most [`MAX_RENDER_MEMORY`] bytes of memory
//! and [`MAX_RENDER_TIME`] (a value can grow exponentially within a few steps: a string doubled
//! in a loop, a list repeated then joined), so a manifest cannot make validation run or grow
//! without end. A short template without tags, repetition or calls (`{{ vars.style }}`,
//! `{{ sweep.image | stem }}`, `{{ job.index + 1 }}`: see `is_plain`) cannot grow and is
//! rendered on the calling thread; any other runs under a [`crate::budget`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Once};
use std::time::Duration;

use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::{Map, Value};

use super::diagnostic::{closest, did_you_mean};
use super::scope::{RESERVED, Scope};
use super::source::YamlPath;
use crate::budget::{self, Budget, Stopped};
use plain::is_plain;

mod plain;

/// The steps (engine instructions) one render may take.
pub const FUEL: u64 = 100_000;

/// The longest result one render may have, in bytes.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;

/// The memory one render may hold at once, in bytes.
pub(super) const MAX_RENDER_MEMORY: usize = 32 << 20;

/// The time one render may take.
pub(super) const MAX_RENDER_TIME: Duration = Duration::from_secs(1);

/// Names minijinja knows without a context (functions and loop helpers); they are not undefined.
const BUILTINS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "cycler",
    "joiner",
    "loop",
    "self",
    "super",
];

/// Whether minijinja knows `name` without a context (a function or loop helper).
#[must_use]
pub(super) fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// A problem with one template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateProblem {
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// Whether the problem is an undefined variable (versus syntax or evaluation).
    pub undefined: bool,
    /// Whether the render ran out of its budget (steps or result size): the same template is
    /// not rendered again for other jobs.
    pub over_budget: bool,
}

/// Whether a string contains template syntax.
#[must_use]
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The compiled templates of one manifest, keyed by their place in it.
#[derive(Debug)]
pub(crate) struct Templates {
    /// Shared with the renders that run under a budget on another thread.
    env: Arc<Environment<'static>>,
    compiled: HashMap<YamlPath, Compiled>,
    failed: HashSet<YamlPath>,
}

#[derive(Debug)]
struct Compiled {
    name: String,
    variables: Vec<String>,
    /// Cannot grow (see [`is_plain`]): rendered without a budget.
    plain: bool,
}

impl Default for Templates {
    fn default() -> Templates {
        Templates::new()
    }
}

impl Templates {
    /// An environment with strict undefined and the `stem`, `basename` and `slug` filters.
    #[must_use]
    pub(crate) fn new() -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.set_keep_trailing_newline(true);
        env.add_filter("stem", |s: String| -> String {
            std::path::Path::new(&s)
                .file_stem()
                .map_or_else(String::new, |x| x.to_string_lossy().into_owned())
        });
        env.add_filter("basename", |s: String| -> String {
            std::path::Path::new(&s)
                .file_name()
                .map_or_else(String::new, |x| x.to_string_lossy().into_owned())
        });
        env.add_filter("slug", slug_filter);
        // The engine's own lazily made tables (small integers' text) are made here, not by a
        // budgeted render that could be stopped while making them.
        static WARM: Once = Once::new();
        WARM.call_once(|| {
            let _ = env.render_str("{{ 1 }}{{ 2.5 }}{{ 'a' ~ 1 }}{{ [1] }}{{ {'a': 1} }}", ());
        });
        Templates {
            env: Arc::new(env),
            compiled: HashMap::new(),
            failed: HashSet::new(),
        }
    }

    /// Compiles the template at `path` (a no-op for a string without template syntax).
    ///
    /// # Errors
    /// The template's syntax error.
    pub(crate) fn add(&mut self, path: &YamlPath, source: &str) -> Result<(), TemplateProblem> {
        if !is_template(source) || self.compiled.contains_key(path) {
            return Ok(());
        }
        let name = path.to_string();
        let plain = is_plain(source);
        if !plain {
            // Compiling folds constant expressions (`'x' * 100000000`, `[1] * 10**15`): a
            // first compilation, thrown away, runs under the budget.
            let owned = source.to_owned();
            let trial = budget::run(render_budget(), move || {
                Environment::new()
                    .add_template_owned("trial", owned)
                    .is_ok()
            });
            if let Err(what) = trial {
                self.failed.insert(path.clone());
                return Err(over_budget(path, what));
            }
        }
        if let Err(e) =
            Arc::make_mut(&mut self.env).add_template_owned(name.clone(), source.to_owned())
        {
            self.failed.insert(path.clone());
            return Err(problem(&e, source, path));
        }
        let template = self
            .env
            .get_template(&name)
            .map_err(|e| problem(&e, source, path))?;
        let mut variables: Vec<String> = template.undeclared_variables(true).into_iter().collect();
        variables.sort();
        self.compiled.insert(
            path.clone(),
            Compiled {
                name,
                variables,
                plain,
            },
        );
        Ok(())
    }

    /// Whether the string at `path` is a template that did not compile.
    #[must_use]
    pub(crate) fn failed(&self, path: &YamlPath) -> bool {
        self.failed.contains(path)
    }

    /// Whether any template failed to compile.
    #[must_use]
    pub(crate) fn any_failed(&self) -> bool {
        !self.failed.is_empty()
    }

    /// Whether the string at `path` was compiled as a template.
    #[must_use]
    pub(crate) fn contains(&self, path: &YamlPath) -> bool {
        self.compiled.contains_key(path)
    }

    /// The top-level variable names the template at `path` reads (`vars`, `animal`, `sweep`...).
    #[must_use]
    pub(crate) fn top_level_names(&self, path: &YamlPath) -> HashSet<String> {
        self.compiled
            .get(path)
            .map(|c| {
                c.variables
                    .iter()
                    .map(|v| v.split('.').next().unwrap_or(v).to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the template at `path` reads no variable but those in `allowed` (builtins aside).
    /// A string that is no template reads nothing.
    #[must_use]
    pub(crate) fn reads_only(&self, path: &YamlPath, allowed: &[&str]) -> bool {
        self.top_level_names(path)
            .iter()
            .all(|n| is_builtin(n) || allowed.contains(&n.as_str()))
    }

    /// Renders the template at `path` with `ctx`; a string that is no template comes back as it is.
    ///
    /// # Errors
    /// An undefined variable (named, with the closest defined name) or an evaluation error.
    pub(crate) fn render(
        &self,
        path: &YamlPath,
        source: &str,
        ctx: &Context,
    ) -> Result<String, TemplateProblem> {
        let Some(compiled) = self.compiled.get(path) else {
            return Ok(source.to_owned());
        };
        let (result, out) = if compiled.plain {
            render_to_limited(&self.env, &compiled.name, &ctx.value())
        } else {
            let env = self.env.clone();
            let name = compiled.name.clone();
            let value = ctx.value();
            match budget::run(render_budget(), move || {
                render_to_limited(&env, &name, &value)
            }) {
                Ok(done) => done,
                Err(what) => return Err(over_budget(path, what)),
            }
        };
        match result {
            Ok(()) => String::from_utf8(out.bytes).map_err(|_| TemplateProblem {
                message: "template error: the result is not valid UTF-8".into(),
                hint: None,
                undefined: false,
                over_budget: false,
            }),
            Err(_) if out.overflow => Err(TemplateProblem {
                message: format!(
                    "the template at `{path}` makes a result longer than {MAX_RESULT_BYTES} bytes, the limit"
                ),
                hint: Some("a template makes a short text (a prompt, a name); check its loops and repetitions".into()),
                undefined: false,
                over_budget: true,
            }),
            Err(e) => {
                // minijinja does not name the undefined variable; find it among those the
                // template reads (a template may test or default a variable, so this runs only
                // on failure).
                if e.kind() == ErrorKind::UndefinedError {
                    let json = ctx.json();
                    if let Some(p) = compiled
                        .variables
                        .iter()
                        .find_map(|var| undefined(var, &json))
                    {
                        return Err(p);
                    }
                }
                Err(problem(&e, source, path))
            }
        }
    }
}

/// Renders template `name` into a [`Limited`] buffer.
fn render_to_limited(
    env: &Environment<'static>,
    name: &str,
    ctx: &minijinja::Value,
) -> (Result<(), minijinja::Error>, Limited) {
    let mut out = Limited::default();
    let result = env
        .get_template(name)
        .and_then(|t| t.render_captured_to(ctx, &mut out).map(|_| ()));
    (result, out)
}

fn render_budget() -> Budget {
    Budget {
        memory: MAX_RENDER_MEMORY,
        time: MAX_RENDER_TIME,
    }
}

/// The problem of a render stopped by its memory or time budget.
fn over_budget(path: &YamlPath, what: Stopped) -> TemplateProblem {
    let message = match what {
        Stopped::Memory => format!(
            "the template at `{path}` needs more than {} MiB of memory, the limit",
            MAX_RENDER_MEMORY >> 20
        ),
        Stopped::Time => format!(
            "the template at `{path}` takes more than {} s, the limit",
            MAX_RENDER_TIME.as_secs()
        ),
        Stopped::Panic(why) => {
            return TemplateProblem {
                message: format!(
                    "the template at `{path}` made the template engine fail: {}",
                    why.chars().take(200).collect::<String>()
                ),
                hint: Some("simplify the template".into()),
                undefined: false,
                over_budget: true,
            };
        }
    };
    TemplateProblem {
        message,
        hint: Some(
            "a template makes a short text (a prompt, a name); check what grows in it: repetitions (`*`), joins, replacements, concatenation in loops".into(),
        ),
        undefined: false,
        over_budget: true,
    }
}

/// A result buffer that refuses to grow past [`MAX_RESULT_BYTES`].
struct Limited {
    bytes: Vec<u8>,
    overflow: bool,
}

impl Default for Limited {
    fn default() -> Limited {
        Limited {
            bytes: Vec::with_capacity(64),
            overflow: false,
        }
    }
}

impl std::io::Write for Limited {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_RESULT_BYTES {
            self.overflow = true;
            return Err(std::io::Error::other("template result too long"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The variables of one render: a JSON map (tests, small contexts) or a job's [`Scope`].
#[derive(Debug, Clone)]
pub(crate) enum Context {
    /// Variables given as a map.
    #[cfg_attr(not(test), allow(dead_code))]
    Json {
        /// The map (for messages).
        json: Map<String, Value>,
        /// The same as a template value.
        value: minijinja::Value,
    },
    /// A job's variables, made when read.
    Scope(Arc<Scope>),
}

impl Context {
    /// A context from a map of top-level variables.
    #[must_use]
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn new(json: Map<String, Value>) -> Context {
        let value = minijinja::Value::from_serialize(&json);
        Context::Json { json, value }
    }

    pub(crate) fn scope(scope: Arc<Scope>) -> Context {
        Context::Scope(scope)
    }

    fn value(&self) -> minijinja::Value {
        match self {
            Context::Json { value, .. } => value.clone(),
            Context::Scope(s) => minijinja::Value::from_dyn_object(s.clone()),
        }
    }

    fn json(&self) -> Map<String, Value> {
        match self {
            Context::Json { json, .. } => json.clone(),
            Context::Scope(s) => s.to_json(),
        }
    }
}

/// `Some(problem)` when `var` (`a` or `a.b.c`, as minijinja lists them) is not in `ctx`.
fn undefined(var: &str, ctx: &Map<String, Value>) -> Option<TemplateProblem> {
    let mut parts = var.split('.');
    let top = parts.next()?;
    if BUILTINS.contains(&top) {
        return None;
    }
    let Some(mut current) = ctx.get(top) else {
        let swept = ctx.get("sweep").and_then(|s| s.get(top)).is_some();
        if swept && RESERVED.contains(&top) {
            return Some(TemplateProblem {
                message: format!("undefined variable `{top}`"),
                hint: Some(format!(
                    "`{top}` is a reserved name; read the sweep value as `sweep[\"{top}\"]`"
                )),
                undefined: true,
                over_budget: false,
            });
        }
        let hint = did_you_mean(top, ctx.keys().map(String::as_str)).or_else(|| {
            let names: Vec<String> = ctx.keys().map(|k| format!("`{k}`")).collect();
            Some(format!("defined here: {}", names.join(", ")))
        });
        return Some(TemplateProblem {
            message: format!("undefined variable `{top}`"),
            hint,
            undefined: true,
            over_budget: false,
        });
    };
    let mut walked = top.to_owned();
    for part in parts {
        let Value::Object(map) = current else {
            return None;
        };
        match map.get(part) {
            Some(v) => current = v,
            None => {
                let hint = closest(part, map.keys().map(String::as_str))
                    .map(|c| format!("did you mean `{walked}.{c}`?"))
                    .or_else(|| {
                        let names: Vec<String> = map.keys().map(|k| format!("`{k}`")).collect();
                        Some(if walked == "vars" {
                            format!("define it at the top level: `vars: {{{part}: VALUE}}`")
                        } else if names.is_empty() {
                            format!("`{walked}` is empty here")
                        } else {
                            format!("`{walked}` has {}", names.join(", "))
                        })
                    });
                return Some(TemplateProblem {
                    message: format!("undefined variable `{walked}.{part}`"),
                    hint,
                    undefined: true,
                    over_budget: false,
                });
            }
        }
        walked.push('.');
        walked.push_str(part);
    }
    None
}

fn problem(e: &minijinja::Error, source: &str, path: &YamlPath) -> TemplateProblem {
    if e.kind() == ErrorKind::OutOfFuel {
        return TemplateProblem {
            message: format!("the template at `{path}` takes more than {FUEL} steps, the limit"),
            hint: Some(
                "a template makes a short text (a prompt, a name); check its loops (`range`)"
                    .into(),
            ),
            undefined: false,
            over_budget: true,
        };
    }
    let what = match e.kind() {
        ErrorKind::SyntaxError => "template syntax error",
        ErrorKind::UndefinedError => "undefined value in template",
        _ => "template error",
    };
    let mut message = match e.detail() {
        Some(d) => format!("{what}: {d}"),
        None => format!("{what}: {}", e.kind()),
    };
    if let Some(line) = e.line().filter(|_| source.trim_end().contains('\n')) {
        message.push_str(&format!(" (line {line} of the template)"));
    }
    let hint = match e.kind() {
        ErrorKind::SyntaxError => Some("templates use minijinja (Jinja2) syntax: `{{ name }}`; write `{% raw %}{{{% endraw %}` for a literal `{{`".to_owned()),
        ErrorKind::UndefinedError => Some("check the variable names against docs/manifest.md#templates".to_owned()),
        _ => None,
    };
    TemplateProblem {
        message,
        hint,
        undefined: e.kind() == ErrorKind::UndefinedError,
        over_budget: false,
    }
}

/// The `slug` filter of templates, as `docs/manifest.md` documents it: lowercase ASCII letters
/// and digits, other runs of characters replaced by one `-` (`A Red Fox!` -> `a-red-fox`). Not
/// the rule of a downloaded output's file name (`client::workflow_handle::label_file_stem`), which
/// keeps `_` and non-ASCII letters: users write paths with this one and must get what the
/// reference says.
fn slug_filter(s: String) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests;
