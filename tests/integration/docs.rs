//! Docs that run. Every fenced YAML block of `README.md`, `CONTRIBUTING.md` and `docs/*.md`
//! that names a `workflow` is a manifest: it is validated with the library, offline (the shipped
//! schema snapshot, as `invk-run validate` does), against the bundled workflows, as if it were a
//! file in `jobs/` (its relative paths start there, as the bundled examples' do: a workflow is
//! `../examples/workflows/NAME.json`). A YAML block marked with a line `<!-- partial -->` right
//! before its fence is a deliberate fragment: it must parse as YAML, nothing more; any other YAML
//! block that names no workflow is refused. Every shell block (`sh`, `bash`, `shell`, `console`:
//! its `$ ` lines) that names a bundled file (`jobs/...`, `examples/...`, `docs/images/...`,
//! `scripts/...`) names one that exists, and every relative link of the docs points to a file
//! (and to a heading of it, for an anchor).
//! Each problem is reported at the file and line of its block. The convention is written down in
//! `CONTRIBUTING.md`.

use std::path::{Path, PathBuf};

use invk_run::manifest::ManifestError;
use invk_run::run::RunError;

/// The line that marks the next fenced YAML block as a deliberate fragment.
const PARTIAL: &str = "<!-- partial -->";

/// Folders of bundled files that shell blocks name; a path under one of them must exist.
const BUNDLED: &[&str] = &["jobs/", "examples/", "docs/images/", "scripts/"];

/// Shell blocks whose bundled paths are checked; `console` blocks only on their `$ ` lines.
const SHELLS: &[&str] = &["sh", "bash", "shell", "console"];

/// How many manifest blocks the docs held when this test was written: fewer means the
/// extraction lost some (or examples were dropped without thought).
const MIN_MANIFEST_BLOCKS: usize = 6;

/// The folder the docs' manifests are validated from, relative to the repository root.
const MANIFEST_FOLDER: &str = "jobs";

/// One fenced block of a Markdown file.
#[derive(Debug)]
struct Block {
    /// The info string's first word, lowercased (`yaml`, `sh`, ...; empty when there is none).
    lang: String,
    /// The line of the opening fence, from 1.
    line: usize,
    /// The line of the closing fence (the last line when there is none), from 1.
    end: usize,
    /// How far the fence is indented (stripped from the block's lines).
    indent: usize,
    /// The block's text, one `\n`-terminated line per line.
    text: String,
    /// Whether the line right before the fence is [`PARTIAL`].
    partial: bool,
}

/// What checking the docs found.
#[derive(Debug, Default)]
struct Checked {
    /// Manifest blocks validated.
    manifests: usize,
    /// Blocks marked partial (parsed only).
    partial: usize,
    /// Shell blocks looked at.
    shell: usize,
    /// Every problem, as `FILE:LINE: what is wrong`.
    problems: Vec<String>,
}

/// The fenced blocks of `markdown`, and the problems of its fences and markers (`FILE:LINE: ...`
/// with `file` as given).
fn blocks(file: &str, markdown: &str) -> (Vec<Block>, Vec<String>) {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut blocks = Vec::new();
    let mut problems = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let fence_char = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let fence_len = fence_char.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        let (Some(fence_char), 3..) = (fence_char, fence_len) else {
            if trimmed.trim_end() == PARTIAL {
                let next = lines.get(i + 1).map(|l| l.trim_start());
                if !next.is_some_and(|l| l.starts_with("```") || l.starts_with("~~~")) {
                    problems.push(format!(
                        "{file}:{}: `{PARTIAL}` must be the line right before a fenced YAML block",
                        i + 1
                    ));
                }
            }
            i += 1;
            continue;
        };
        let info = trimmed[fence_len..].trim();
        let lang = info
            .split(|c: char| c.is_whitespace() || c == ',' || c == '{')
            .next()
            .unwrap_or("")
            .to_lowercase();
        let partial = i > 0 && lines[i - 1].trim() == PARTIAL;
        let opened = i;
        let mut text = String::new();
        i += 1;
        let mut closed = false;
        while i < lines.len() {
            let body = lines[i];
            let t = body.trim();
            if t.len() >= fence_len && t.chars().all(|c| c == fence_char) {
                closed = true;
                i += 1;
                break;
            }
            // The fence's indentation is not part of the block's text.
            let strip = body.len() - body.trim_start().len();
            text.push_str(&body[strip.min(indent)..]);
            text.push('\n');
            i += 1;
        }
        if !closed {
            problems.push(format!(
                "{file}:{}: the fenced block is never closed",
                opened + 1
            ));
        }
        if partial && !matches!(lang.as_str(), "yaml" | "yml") {
            problems.push(format!(
                "{file}:{}: `{PARTIAL}` marks YAML blocks only; this one is `{lang}`",
                opened + 1
            ));
        }
        blocks.push(Block {
            lang,
            line: opened + 1,
            end: i,
            indent,
            text,
            partial,
        });
    }
    (blocks, problems)
}

/// Checks one Markdown file, named `file` (relative to `root`, the repository) in messages.
async fn check_doc(root: &Path, file: &str, markdown: &str, checked: &mut Checked) {
    let (blocks, problems) = blocks(file, markdown);
    checked.problems.extend(problems);
    for block in &blocks {
        match block.lang.as_str() {
            "yaml" | "yml" => check_yaml(root, file, block, checked).await,
            lang if SHELLS.contains(&lang) => {
                checked.shell += 1;
                check_shell(root, file, block, &mut checked.problems);
            }
            _ => {}
        }
    }
    check_links(root, file, markdown, &blocks, &mut checked.problems);
}

/// A YAML block: a manifest (validated), a fragment marked partial (parsed), or a problem.
async fn check_yaml(root: &Path, file: &str, block: &Block, checked: &mut Checked) {
    let at = format!("{file}:{}", block.line);
    let value: serde_norway::Value = match serde_norway::from_str(&block.text) {
        Ok(v) => v,
        Err(e) => {
            checked
                .problems
                .push(format!("{at}: the YAML block does not parse: {e}"));
            return;
        }
    };
    let names_workflow = value
        .as_mapping()
        .is_some_and(|m| m.contains_key(serde_norway::Value::from("workflow")));
    if block.partial {
        checked.partial += 1;
        return;
    }
    if !names_workflow {
        checked.problems.push(format!(
            "{at}: a YAML block that names no `workflow` is not a manifest: make it a whole \
             manifest (it is validated as a file in `{MANIFEST_FOLDER}/`), or mark it with a line \
             `{PARTIAL}` right before the fence if it is a fragment on purpose"
        ));
        return;
    }
    checked.manifests += 1;
    if let Err(why) = validate(root, file, block).await {
        checked.problems.push(format!(
            "{at}: the manifest block is not valid (as a file in `{MANIFEST_FOLDER}/`, against \
             the bundled workflows):\n{why}"
        ));
    }
}

/// Validates a manifest block as `invk-run validate` would, as if it were a file in
/// [`MANIFEST_FOLDER`]; its problems are given at their lines in the Markdown file.
async fn validate(root: &Path, file: &str, block: &Block) -> Result<(), String> {
    let mut manifest = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| e.to_string())?;
    std::io::Write::write_all(&mut manifest, block.text.as_bytes()).map_err(|e| e.to_string())?;
    let display = PathBuf::from(file);
    let source = invk_run::run::ManifestSource {
        path: manifest.path().to_path_buf(),
        base_dir: root.join(MANIFEST_FOLDER),
        display_name: file.to_owned(),
        image: None,
    };
    let result =
        invk_run::run::prepare::prepare(&source, 10_000, None, crate::support::schemas()).await;
    let err = match result {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let diagnostics = match &err {
        RunError::Manifest(e @ ManifestError::Invalid { .. }) => e.diagnostics(),
        _ => &[],
    };
    if diagnostics.is_empty() {
        let mut text = format!("  {err}");
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            text.push_str(&format!("\n  caused by: {cause}"));
            source = cause.source();
        }
        return Err(text);
    }
    // A problem of the block itself is moved to its line in the Markdown file; one of a data
    // file it reads keeps that file's place.
    Err(diagnostics
        .iter()
        .map(|d| {
            let (line, col) = if d.file == display {
                (block.line + d.line, block.indent + d.col)
            } else {
                (d.line, d.col)
            };
            let file = if d.file == display {
                file.to_owned()
            } else {
                d.file.display().to_string()
            };
            let hint = d
                .hint
                .as_ref()
                .map_or(String::new(), |h| format!("\n    hint: {h}"));
            format!("  {file}:{line}:{col}: error: {}{hint}", d.message)
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The bundled paths a shell block names exist (globs match something).
fn check_shell(root: &Path, file: &str, block: &Block, problems: &mut Vec<String>) {
    let console = block.lang == "console";
    for (n, line) in block.text.lines().enumerate() {
        let command = if console {
            match line.strip_prefix("$ ") {
                Some(c) => c,
                None => continue,
            }
        } else {
            line
        };
        for path in bundled_paths(command) {
            if !exists(root, &path) {
                problems.push(format!(
                    "{file}:{}: the command names `{path}`, which is not in the repository",
                    block.line + 1 + n
                ));
            }
        }
    }
}

/// The paths under [`BUNDLED`] folders that a command line names (a `#` word starts a comment).
fn bundled_paths(command: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for word in command.split_whitespace() {
        if word.starts_with('#') {
            break;
        }
        let word = word.trim_matches(|c: char| "'\"`();,|&<>".contains(c));
        // `--each=jobs/x.yaml`, `VAR=scripts/y`: the value after the last `=`.
        let value = word.rsplit('=').next().unwrap_or(word);
        let value = value.trim_start_matches("./");
        if BUNDLED.iter().any(|b| value.starts_with(b)) {
            paths.push(value.to_owned());
        }
    }
    paths
}

/// Whether `path` (relative to `root`) exists; a glob must match at least one file.
fn exists(root: &Path, path: &str) -> bool {
    if !path.contains(['*', '?', '[', '{']) {
        return root.join(path).exists();
    }
    let Ok(glob) = globset::Glob::new(path) else {
        return false;
    };
    let matcher = glob.compile_matcher();
    // The literal folder the pattern starts with, walked whole.
    let literal: PathBuf = Path::new(path)
        .components()
        .take_while(|c| {
            !c.as_os_str()
                .to_string_lossy()
                .contains(['*', '?', '[', '{'])
        })
        .collect();
    let mut stack = vec![literal];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs_err::read_dir(root.join(&dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let relative = dir.join(entry.file_name());
            if matcher.is_match(&relative) {
                return true;
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(relative);
            }
        }
    }
    false
}

/// Every relative link or image of the Markdown text outside code (`[text](target)`) points to
/// a file or folder, relative to the Markdown file's folder; `blocks` are the file's code blocks.
fn check_links(
    root: &Path,
    file: &str,
    markdown: &str,
    blocks: &[Block],
    problems: &mut Vec<String>,
) {
    let folder = Path::new(file).parent().unwrap_or(Path::new(""));
    for (n, line) in markdown.lines().enumerate() {
        if blocks.iter().any(|b| (b.line..=b.end).contains(&(n + 1))) {
            continue;
        }
        // Links inside inline code are text, not links.
        let prose: String = line
            .split('`')
            .enumerate()
            .filter(|(k, _)| k % 2 == 0)
            .map(|(_, part)| part)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            rest = &rest[end..];
            let target = target.split_whitespace().next().unwrap_or("");
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let linked = if path.is_empty() {
                root.join(file)
            } else {
                root.join(folder).join(path)
            };
            if !linked.exists() {
                problems.push(format!(
                    "{file}:{}: the link `{target}` points to no file",
                    n + 1
                ));
                continue;
            }
            let markdown_target = linked.extension().is_some_and(|e| e == "md");
            if !anchor.is_empty() && markdown_target {
                let text = fs_err::read_to_string(&linked).expect("a linked page reads");
                if !anchors(&text).iter().any(|a| a == anchor) {
                    problems.push(format!(
                        "{file}:{}: the link `{target}` names no heading of its page",
                        n + 1
                    ));
                }
            }
        }
    }
}

/// The anchors of a Markdown page's headings, as GitHub makes them: lowercased, punctuation
/// dropped (hyphens and underscores kept), spaces made hyphens.
fn anchors(markdown: &str) -> Vec<String> {
    let (blocks, _) = blocks("", markdown);
    markdown
        .lines()
        .enumerate()
        .filter(|(n, _)| !blocks.iter().any(|b| (b.line..=b.end).contains(&(n + 1))))
        .filter_map(|(_, line)| {
            let heading = line.trim_start_matches('#');
            (heading.len() < line.len() && heading.starts_with(' ')).then(|| {
                heading
                    .trim()
                    .to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect()
            })
        })
        .collect()
}

/// The repository root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The docs: `README.md`, `CONTRIBUTING.md` and `docs/*.md`, relative to the repository root.
fn docs() -> Vec<String> {
    let root = root();
    let mut files: Vec<String> = fs_err::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| {
            e.expect("a docs/ entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    files.sort();
    let mut all = vec!["README.md".to_owned(), "CONTRIBUTING.md".to_owned()];
    all.extend(files);
    all
}

#[tokio::test]
async fn every_manifest_and_command_of_the_docs_is_valid() {
    let root = root();
    let mut checked = Checked::default();
    for file in docs() {
        let text = fs_err::read_to_string(root.join(&file)).expect("a doc reads");
        check_doc(&root, &file, &text, &mut checked).await;
    }
    println!(
        "docs: {} manifest blocks validated, {} partial blocks parsed, {} shell blocks checked",
        checked.manifests, checked.partial, checked.shell
    );
    assert!(
        checked.problems.is_empty(),
        "{} problems in the docs:\n{}",
        checked.problems.len(),
        checked.problems.join("\n")
    );
    assert!(
        checked.manifests >= MIN_MANIFEST_BLOCKS,
        "only {} manifest blocks found in the docs (at least {MIN_MANIFEST_BLOCKS} expected)",
        checked.manifests
    );
}

/// The checker itself finds what a reader would trip on, each at its line: an input the
/// workflow does not have, an unmarked fragment, a misplaced marker, a missing bundled file, a
/// dead link or anchor; and it leaves alone what is fine (a marked fragment, JSON, a console's
/// output).
#[tokio::test]
async fn the_docs_check_names_the_file_and_line_of_each_problem() {
    let markdown = "\
# A page

```yaml
version: 1
workflow: ../examples/workflows/blur-and-tint.json
inputs:
  Source image: ../examples/images/sunset.png
  Hue: 30
```

```yaml
sweep:
  matrix: {Hue shift: [0, 90]}
```

<!-- partial -->
```yaml
output:
  grid: {x: Hue shift}
```

<!-- partial -->

```json
{\"workflow\": \"not a manifest: JSON\"}
```

```sh
invk-run --local jobs/hue-sweep.yaml   # jobs/nothing-here.yaml is a comment
invk-run jobs/no-such.yaml examples/workflows/*.json examples/workflows/*.nope
```

```console
$ invk-run watch in --each jobs/each/each-photo.yaml --as \"Source image\"
jobs/missing-but-output.yaml
```

![a picture](../docs/images/hue-grid.png) and [a page](nowhere.md), `[code](not-a-link.md)`
[grids](manifest.md#grids), [no such part](manifest.md#no-such-part)
";
    let mut checked = Checked::default();
    check_doc(&root(), "docs/page.md", markdown, &mut checked).await;
    assert_eq!(checked.manifests, 1, "{checked:?}");
    assert_eq!(checked.partial, 1, "{checked:?}");
    assert_eq!(checked.shell, 2, "{checked:?}");
    let problems = checked.problems.join("\n");
    for expected in [
        "docs/page.md:3: the manifest block is not valid",
        "docs/page.md:8:3: error: unknown input `Hue`",
        "docs/page.md:11: a YAML block that names no `workflow` is not a manifest",
        "docs/page.md:22: `<!-- partial -->` must be the line right before a fenced YAML block",
        "docs/page.md:30: the command names `jobs/no-such.yaml`",
        "docs/page.md:30: the command names `examples/workflows/*.nope`",
        "docs/page.md:38: the link `nowhere.md` points to no file",
        "docs/page.md:39: the link `manifest.md#no-such-part` names no heading of its page",
    ] {
        assert!(
            problems.contains(expected),
            "missing `{expected}` in:\n{problems}"
        );
    }
    assert_eq!(checked.problems.len(), 7, "{problems}");
}

/// Whether `text` mentions `flag` (`--local`, `-q`) as itself: not as the start of a longer
/// flag (`--notify` in `--notify-on` does not count).
fn mentions(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + flag.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '-')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
    })
}

/// The flags of `command`'s own arguments (help and version aside): each argument's long
/// flag, or its short one.
fn flags(command: &clap::Command) -> Vec<(String, Option<String>)> {
    command
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .map(|a| {
            (
                a.get_long().map_or(String::new(), |l| format!("--{l}")),
                a.get_short().map(|s| format!("-{s}")),
            )
        })
        .collect()
}

/// The README's `## Commands` section names every command of `invk-run --help` and every option
/// of a run (`--local` included); every option of every subcommand is documented somewhere in
/// `README.md` or `docs/`.
#[test]
fn the_readme_and_docs_name_every_command_and_option() {
    use clap::CommandFactory;
    let root = root();
    let readme = fs_err::read_to_string(root.join("README.md")).expect("README.md");
    let mut everything = readme.clone();
    for file in docs() {
        everything.push_str(&fs_err::read_to_string(root.join(file)).expect("a doc reads"));
    }
    // The README's `## Commands` section, up to the next section.
    let commands = readme
        .split("\n## ")
        .find(|s| s.starts_with("Commands\n"))
        .expect("README.md has a `## Commands` section");
    let cli = invk_run::cli::Cli::command();
    let mut missing = Vec::new();
    for (long, short) in flags(&cli) {
        let named = mentions(commands, &long) || short.is_some_and(|s| mentions(commands, &s));
        if !named {
            missing.push(format!(
                "README.md, `## Commands`: the option `{long}` of `invk-run`"
            ));
        }
    }
    let mut stack: Vec<(String, &clap::Command)> = cli
        .get_subcommands()
        .map(|c| (c.get_name().to_owned(), c))
        .collect();
    while let Some((path, command)) = stack.pop() {
        if command.is_hide_set() || command.get_name() == "help" {
            continue;
        }
        if !path.contains(' ') && !commands.contains(&format!("`invk-run {path}")) {
            missing.push(format!(
                "README.md: the command `invk-run {path}` in the table"
            ));
        }
        for (long, short) in flags(command) {
            // Options of every command are checked once, at the top.
            let global = cli.get_arguments().any(|a| {
                a.is_global_set() && a.get_long().is_some_and(|l| format!("--{l}") == long)
            });
            if global {
                continue;
            }
            let named =
                mentions(&everything, &long) || short.is_some_and(|s| mentions(&everything, &s));
            if !named {
                missing.push(format!("docs: the option `{long}` of `invk-run {path}`"));
            }
        }
        stack.extend(
            command
                .get_subcommands()
                .map(|c| (format!("{path} {}", c.get_name()), c)),
        );
    }
    assert!(
        missing.is_empty(),
        "not documented:\n{}",
        missing.join("\n")
    );
}

/// The README is for users: benchmarks, CI, crate choices and the code's layout are in
/// `CONTRIBUTING.md`, which links `docs/design.md`; the manifest reference ends with manifests,
/// not with why a YAML crate was chosen.
#[test]
fn contributor_matters_are_in_contributing_not_in_the_user_docs() {
    let read = |file: &str| fs_err::read_to_string(root().join(file)).expect("a doc reads");
    let readme = read("README.md");
    let contributing = read("CONTRIBUTING.md");
    let manifest = read("docs/manifest.md");
    let mut wrong = Vec::new();
    for marker in [
        "cargo bench",
        "scripts/bench-",
        ".ci/run",
        "cargo clippy",
        "serde_norway",
        "rust_socketio",
        "src/",
    ] {
        if readme.contains(marker) {
            wrong.push(format!("README.md names `{marker}` (contributor matter)"));
        }
        if !contributing.contains(marker) {
            wrong.push(format!("CONTRIBUTING.md does not name `{marker}`"));
        }
    }
    for marker in ["serde_norway", "serde_yaml", "saphyr"] {
        if manifest.contains(marker) {
            wrong.push(format!(
                "docs/manifest.md names `{marker}` (a crate choice)"
            ));
        }
    }
    if !contributing.contains("](docs/design.md)") {
        wrong.push("CONTRIBUTING.md does not link docs/design.md".to_owned());
    }
    if !readme.contains("](CONTRIBUTING.md)") {
        wrong.push("README.md does not link CONTRIBUTING.md".to_owned());
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
