//! Dynamic prompts (`{dynamic: "a {red|green} {car|bike}"}`): the syntax of the `dynamicprompts`
//! library that InvokeAI ships, expanded here.
//!
//! - Combinatorial: every prompt, in the order of the library's combinatorial generator (a
//!   sequence varies its last part fastest; a variant gives its options in order, `{2$$a|b|c}` its
//!   ordered picks `a,b`, `a,c`, `b,a`..., with the library's removal of repeated picks).
//! - Random: draw `i` of a template is a function of a 64-bit seed, itself derived from the
//!   manifest's `seed`, the sweep key and `i`: the same on every run and after a resume.
//!
//! Everything is bounded: the template's length, variant nesting, wildcard files (count, bytes,
//! values) and wildcards within wildcards, each prompt's length, and the work of an expansion.
//! How many prompts a template makes is computed from its structure before any is made.

mod parse;
mod wildcards;

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::random::SplitMix64;

use parse::{Node, Variant};
pub use wildcards::WildcardDir;

/// A template may have at most this many characters.
pub const MAX_TEMPLATE_CHARS: usize = 10_000;
/// Variants may be nested at most this deep.
pub const MAX_DEPTH: usize = 32;
/// Wildcards may use wildcards at most this deep (a wildcard that uses itself is refused).
pub const MAX_WILDCARD_DEPTH: usize = 16;
/// A wildcard file may have at most this many bytes.
pub const MAX_WILDCARD_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// A wildcard file may have at most this many values (non-blank, non-comment lines).
pub const MAX_WILDCARD_LINES: usize = 100_000;
/// A wildcards folder may hold at most this many files and folders.
pub const MAX_WILDCARD_FILES: usize = 10_000;
/// A prompt made from a template may have at most this many bytes.
pub const MAX_PROMPT_BYTES: usize = 64 * 1024;
/// An expansion may take at most this many steps (parts expanded) before it is refused.
pub const MAX_EXPANSION_STEPS: u64 = 20_000_000;
/// Prompts kept to drop repeats, over an expansion: at most this many bytes.
const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;

/// A problem with a dynamic-prompt template or one of its wildcard files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DynamicError {
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
    /// The wildcard file and line (from 1; 0 for the whole file) the problem is in, when it is
    /// in one rather than in the template.
    pub file: Option<(PathBuf, usize)>,
}

impl DynamicError {
    pub(crate) fn new(message: String) -> DynamicError {
        DynamicError {
            message,
            hint: None,
            file: None,
        }
    }

    fn hint(mut self, hint: String) -> DynamicError {
        self.hint = Some(hint);
        self
    }
}

/// One value of a wildcard: its text, parsed, and where it is.
#[derive(Debug)]
struct WildValue {
    node: Node,
    file: PathBuf,
    line: usize,
}

/// A parsed template with every wildcard it reaches read and parsed.
#[derive(Debug)]
pub struct Prompts {
    root: Node,
    wildcards: HashMap<String, Arc<Vec<WildValue>>>,
    counts: HashMap<String, u128>,
}

impl Prompts {
    /// Parses `template` and reads the wildcards it uses from `wildcards`.
    ///
    /// # Errors
    /// A syntax error, an unknown wildcard (in a wildcard file: at its line), a file or a
    /// nesting over its limit.
    pub fn compile(
        template: &str,
        wildcards: Option<&WildcardDir>,
    ) -> Result<Prompts, DynamicError> {
        let root = parse::parse(template)?;
        let mut prompts = Prompts {
            root,
            wildcards: HashMap::new(),
            counts: HashMap::new(),
        };
        let root = std::mem::replace(&mut prompts.root, Node::Seq(Vec::new()));
        let mut chain = Vec::new();
        prompts.resolve(&root, wildcards, &mut chain, None)?;
        prompts.root = root;
        Ok(prompts)
    }

    fn resolve(
        &mut self,
        node: &Node,
        dir: Option<&WildcardDir>,
        chain: &mut Vec<String>,
        from: Option<(&Path, usize)>,
    ) -> Result<(), DynamicError> {
        let place = |e: DynamicError| match (from, &e.file) {
            (Some((f, l)), None) => DynamicError {
                file: Some((f.to_path_buf(), l)),
                ..e
            },
            _ => e,
        };
        match node {
            Node::Literal(_) => Ok(()),
            Node::Seq(parts) => parts
                .iter()
                .try_for_each(|p| self.resolve(p, dir, chain, from)),
            Node::Variant(v) => v
                .options
                .iter()
                .try_for_each(|(_, p)| self.resolve(p, dir, chain, from)),
            Node::Wildcard(name) => {
                if chain.contains(name) {
                    return Err(place(DynamicError::new(format!(
                        "the wildcard `__{name}__` uses itself ({} -> {name})",
                        chain.join(" -> ")
                    ))));
                }
                if self.wildcards.contains_key(name) {
                    return Ok(());
                }
                if chain.len() >= MAX_WILDCARD_DEPTH {
                    return Err(place(DynamicError::new(format!(
                        "wildcards use wildcards more than {MAX_WILDCARD_DEPTH} deep, the limit ({} -> {name})",
                        chain.join(" -> ")
                    ))));
                }
                let Some(dir) = dir else {
                    return Err(place(DynamicError::new(format!(
                        "the template uses the wildcard `__{name}__`, and the manifest names no wildcards folder"
                    )).hint("name the folder of its `.txt` files with `wildcards: FOLDER` at the top of the manifest".into())));
                };
                let files = dir
                    .matching(name)
                    .map_err(|m| place(DynamicError::new(m)))?;
                if files.is_empty() {
                    let hint = match super::diagnostic::closest(name, dir.names()) {
                        Some(close) => format!("did you mean `__{close}__`?"),
                        None => {
                            "a wildcard `__NAME__` is the file `NAME.txt` in the wildcards folder"
                                .into()
                        }
                    };
                    return Err(place(
                        DynamicError::new(format!("unknown wildcard `__{name}__`")).hint(hint),
                    ));
                }
                // Merged, first occurrence kept, sorted: as the library does.
                let mut seen = HashSet::new();
                let mut texts: Vec<(String, PathBuf, usize)> = Vec::new();
                for file in files {
                    for (text, line) in dir.values(file)?.iter() {
                        if seen.insert(text.clone()) {
                            texts.push((text.clone(), file.to_path_buf(), *line));
                        }
                    }
                }
                texts.sort_by(|a, b| a.0.cmp(&b.0));
                let mut values = Vec::with_capacity(texts.len());
                for (text, file, line) in texts {
                    let node = parse::parse(&text).map_err(|e| DynamicError {
                        file: Some((file.clone(), line)),
                        ..e
                    })?;
                    values.push(WildValue { node, file, line });
                }
                chain.push(name.clone());
                for v in &values {
                    self.resolve(&v.node, Some(dir), chain, Some((&v.file, v.line)))?;
                }
                chain.pop();
                let count = values
                    .iter()
                    .fold(0u128, |sum, v| sum.saturating_add(self.count_of(&v.node)));
                self.counts.insert(name.clone(), count);
                self.wildcards.insert(name.clone(), Arc::new(values));
                Ok(())
            }
        }
    }

    /// How many prompts the combinatorial expansion makes at most (exactly, unless options repeat
    /// the same text), computed from the template's structure; saturates at `u128::MAX`.
    #[must_use]
    pub fn count(&self) -> u128 {
        self.count_of(&self.root)
    }

    fn count_of(&self, node: &Node) -> u128 {
        match node {
            Node::Literal(_) => 1,
            Node::Seq(parts) => parts
                .iter()
                .fold(1u128, |p, n| p.saturating_mul(self.count_of(n))),
            Node::Wildcard(name) => self.counts.get(name).copied().unwrap_or(0),
            Node::Variant(v) => {
                let (options, lo, hi) = self.options(v);
                let counts: Vec<u128> = options.iter().map(|n| self.count_of(n)).collect();
                picks_count(&counts, lo, hi)
            }
        }
    }

    /// A variant's options (a variant of one wildcard is a variant of its values) and its bounds
    /// fitted to them.
    fn options<'a>(&'a self, v: &'a Variant) -> (Vec<&'a Node>, usize, usize) {
        let options: Vec<&Node> = match v.options.as_slice() {
            [(_, Node::Wildcard(name))] => self
                .wildcards
                .get(name)
                .map(|vals| vals.iter().map(|w| &w.node).collect())
                .unwrap_or_default(),
            opts => opts.iter().map(|(_, n)| n).collect(),
        };
        let n = options.len();
        (options, v.min.min(n), v.max.min(n))
    }

    /// The first `limit` prompts of the combinatorial expansion, in the library's order.
    ///
    /// # Errors
    /// When a prompt is too long or the expansion takes too much work.
    pub fn enumerate(&self, limit: usize) -> Result<Vec<String>, DynamicError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut g = Gen {
            p: self,
            steps: 0,
            held: 0,
        };
        let flow = g.each(&self.root, &mut |_, s| {
            out.push(s);
            if out.len() >= limit {
                ControlFlow::Break(Stop::Enough)
            } else {
                ControlFlow::Continue(())
            }
        });
        match flow {
            ControlFlow::Break(Stop::Failed(e)) => Err(e),
            _ => Ok(out),
        }
    }

    /// One random prompt, a function of `seed`: each variant picks how many options (uniformly
    /// between its bounds) and which (by weight, without repeats); each wildcard one value
    /// (uniformly).
    ///
    /// # Errors
    /// When the prompt is too long.
    pub fn draw(&self, seed: u64) -> Result<String, DynamicError> {
        let mut rng = SplitMix64(seed);
        self.sample(&self.root, &mut rng)
    }

    fn sample(&self, node: &Node, rng: &mut SplitMix64) -> Result<String, DynamicError> {
        let out = match node {
            Node::Literal(s) => s.clone(),
            Node::Seq(parts) => {
                let mut s = String::new();
                for p in parts {
                    s.push_str(&self.sample(p, rng)?);
                    too_long(&s)?;
                }
                s
            }
            Node::Wildcard(name) => match self.wildcards.get(name) {
                Some(values) if !values.is_empty() => {
                    let i = rng.below(values.len() as u64) as usize;
                    self.sample(&values[i].node, rng)?
                }
                _ => String::new(),
            },
            Node::Variant(v) => {
                let (options, lo, hi) = self.options(v);
                let weights: Vec<f64> = match v.options.as_slice() {
                    [(_, Node::Wildcard(_))] => vec![1.0; options.len()],
                    opts => opts.iter().map(|(w, _)| w.max(0.0)).collect(),
                };
                let k = lo + rng.below((hi - lo + 1) as u64) as usize;
                let mut left: Vec<usize> = (0..options.len()).collect();
                let mut parts = Vec::with_capacity(k);
                for _ in 0..k {
                    let total: f64 = left.iter().map(|&i| weights[i]).sum();
                    let pick = if total > 0.0 {
                        let mut r = rng.unit() * total;
                        let mut chosen = left.len() - 1;
                        for (j, &i) in left.iter().enumerate() {
                            if r < weights[i] {
                                chosen = j;
                                break;
                            }
                            r -= weights[i];
                        }
                        chosen
                    } else {
                        rng.below(left.len() as u64) as usize
                    };
                    let i = left.remove(pick);
                    parts.push(self.sample(options[i], rng)?);
                }
                joined(&parts, &v.separator)
            }
        };
        too_long(&out)?;
        Ok(out)
    }
}

/// How many ordered picks of `lo..=hi` distinct options, each option giving `counts[i]` texts:
/// the sum over `k` of `k!` times the `k`-th elementary symmetric sum of the counts.
fn picks_count(counts: &[u128], lo: usize, hi: usize) -> u128 {
    // 35! is beyond u128: any such pick saturates.
    const MAX_EXACT_K: usize = 34;
    let n = counts.len();
    if hi > MAX_EXACT_K
        && n > MAX_EXACT_K
        && counts.iter().filter(|&&c| c > 0).count() > MAX_EXACT_K
    {
        return u128::MAX;
    }
    let top = hi.min(MAX_EXACT_K);
    let mut e = vec![0u128; top + 1];
    e[0] = 1;
    for &c in counts {
        for j in (1..=top).rev() {
            e[j] = e[j].saturating_add(e[j - 1].saturating_mul(c));
        }
    }
    let mut total = 0u128;
    let mut factorial = 1u128;
    for (k, ek) in e.iter().enumerate() {
        if k > 0 {
            factorial = factorial.saturating_mul(k as u128);
        }
        if k >= lo && k <= hi {
            total = total.saturating_add(factorial.saturating_mul(*ek));
        }
    }
    total
}

/// The library's `SamplingResult.joined`: one part as it is; several joined by `separator`, one
/// leading and one trailing `separator` removed.
fn joined(parts: &[String], separator: &str) -> String {
    if let [one] = parts {
        return one.clone();
    }
    let mut s = parts.join(separator);
    if !separator.is_empty() {
        if s.starts_with(separator) {
            s.drain(..separator.len());
        }
        if s.ends_with(separator) {
            s.truncate(s.len() - separator.len());
        }
    }
    s
}

fn too_long(s: &str) -> Result<(), DynamicError> {
    if s.len() > MAX_PROMPT_BYTES {
        return Err(DynamicError::new(format!(
            "a prompt of the template is longer than {MAX_PROMPT_BYTES} bytes, the limit"
        )));
    }
    Ok(())
}

enum Stop {
    Enough,
    Failed(DynamicError),
}

type Flow = ControlFlow<Stop>;

/// The combinatorial expansion, each prompt handed to a callback (nothing is enumerated beyond
/// what the caller takes).
struct Gen<'p> {
    p: &'p Prompts,
    steps: u64,
    held: usize,
}

type Out<'f> = dyn FnMut(&mut Gen<'_>, String) -> Flow + 'f;

impl Gen<'_> {
    fn tick(&mut self) -> Flow {
        self.steps += 1;
        if self.steps > MAX_EXPANSION_STEPS {
            return ControlFlow::Break(Stop::Failed(
                DynamicError::new(format!(
                    "expanding the template takes more than {MAX_EXPANSION_STEPS} steps, the limit"
                ))
                .hint("take fewer prompts with `max: N`, or repeat fewer identical options".into()),
            ));
        }
        ControlFlow::Continue(())
    }

    fn each(&mut self, node: &Node, f: &mut Out<'_>) -> Flow {
        self.tick()?;
        match node {
            Node::Literal(s) => f(self, s.clone()),
            Node::Seq(parts) => self.seq(parts, String::new(), f),
            Node::Wildcard(name) => {
                let values = self.p.wildcards.get(name).cloned().unwrap_or_default();
                for v in values.iter() {
                    self.each(&v.node, f)?;
                }
                ControlFlow::Continue(())
            }
            Node::Variant(v) => self.variant(v, f),
        }
    }

    fn seq(&mut self, parts: &[Node], prefix: String, f: &mut Out<'_>) -> Flow {
        let Some((first, rest)) = parts.split_first() else {
            return f(self, prefix);
        };
        self.each(first, &mut |g, text| {
            let mut s = prefix.clone();
            s.push_str(&text);
            if let Err(e) = too_long(&s) {
                return ControlFlow::Break(Stop::Failed(e));
            }
            g.seq(rest, s, f)
        })
    }

    fn variant(&mut self, v: &Variant, f: &mut Out<'_>) -> Flow {
        let (options, lo, hi) = self.p.options(v);
        let mut seen: HashSet<Vec<String>> = HashSet::new();
        let held_before = self.held;
        let mut flow = ControlFlow::Continue(());
        for k in lo..=hi {
            let all: Vec<usize> = (0..options.len()).collect();
            let mut chosen = Vec::with_capacity(k);
            flow = self.picks(&options, &all, k, &mut chosen, &v.separator, &mut seen, f);
            if flow.is_break() {
                break;
            }
        }
        self.held = held_before;
        flow
    }

    /// Every ordered pick of `k` more options from `left`; a picked option removes every option
    /// equal to it (the library compares options by value).
    #[allow(clippy::too_many_arguments)]
    fn picks(
        &mut self,
        options: &[&Node],
        left: &[usize],
        k: usize,
        chosen: &mut Vec<usize>,
        separator: &str,
        seen: &mut HashSet<Vec<String>>,
        f: &mut Out<'_>,
    ) -> Flow {
        self.tick()?;
        if k == 0 {
            let nodes: Vec<&Node> = chosen.iter().map(|&i| options[i]).collect();
            let want = nodes.len();
            let mut parts = Vec::with_capacity(want);
            return self.product(&nodes, &mut parts, want, separator, seen, f);
        }
        for &i in left {
            let rest: Vec<usize> = left
                .iter()
                .copied()
                .filter(|&j| options[j] != options[i])
                .collect();
            chosen.push(i);
            let flow = self.picks(options, &rest, k - 1, chosen, separator, seen, f);
            chosen.pop();
            flow?;
        }
        ControlFlow::Continue(())
    }

    fn product(
        &mut self,
        nodes: &[&Node],
        parts: &mut Vec<String>,
        want: usize,
        separator: &str,
        seen: &mut HashSet<Vec<String>>,
        f: &mut Out<'_>,
    ) -> Flow {
        let Some((first, rest)) = nodes.split_first() else {
            // Parts with the same text count once; a pick whose parts repeat is dropped.
            let mut unique: Vec<String> = Vec::with_capacity(parts.len());
            for p in parts.iter() {
                if !unique.contains(p) {
                    unique.push(p.clone());
                }
            }
            if unique.len() != want || seen.contains(&unique) {
                return ControlFlow::Continue(());
            }
            let text = joined(&unique, separator);
            self.held += unique.iter().map(|s| s.len() + 24).sum::<usize>();
            if self.held > MAX_HELD_BYTES {
                return ControlFlow::Break(Stop::Failed(
                    DynamicError::new(format!(
                        "expanding the template holds more than {MAX_HELD_BYTES} bytes, the limit"
                    ))
                    .hint("take fewer prompts with `max: N`".into()),
                ));
            }
            seen.insert(unique);
            if let Err(e) = too_long(&text) {
                return ControlFlow::Break(Stop::Failed(e));
            }
            return f(self, text);
        };
        self.each(first, &mut |g, text| {
            parts.push(text);
            let flow = g.product(rest, parts, want, separator, seen, f);
            parts.pop();
            flow
        })
    }
}

/// The seed of random draw `index` of the dynamic sweep key `key`: the first eight bytes of
/// SHA-256 over `invk-run dynamic 1`, the manifest's seed, the key and the index, each on its
/// own line.
#[must_use]
pub fn draw_seed(manifest_seed: u64, key: &str, index: usize) -> u64 {
    let text = format!("invk-run dynamic 1\n{manifest_seed}\n{key}\n{index}");
    let digest = Sha256::digest(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Every prompt of `template` in the library's combinatorial order, at most `limit` of them,
/// with wildcards from the folder `wildcards`.
///
/// # Errors
/// As [`Prompts::compile`] and [`Prompts::enumerate`].
pub fn combinations(
    template: &str,
    wildcards: Option<&Path>,
    limit: usize,
) -> Result<Vec<String>, DynamicError> {
    let dir = wildcards.map(WildcardDir::open).transpose()?;
    Prompts::compile(template, dir.as_ref())?.enumerate(limit)
}

#[cfg(test)]
mod tests;
