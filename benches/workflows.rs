//! Benchmarks: how long loading and converting workflows takes, per workflow and in total,
//! averaged over N iterations (`cargo bench --bench workflows -- [N]`, default 20).
//!
//! The workflows are InvokeAI's default workflows, from the installed package (the managed
//! server's cache folder, or `INVK_VENV`), plus this crate's examples.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use invk_run::workflow::{ConvertOptions, SchemaSet, Workflow, WorkflowDefinition};

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs_err::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "json"));
    files.sort();
    files
}

fn default_workflows() -> Vec<PathBuf> {
    let version = invk_run::local_server::wanted_version();
    let installation = match std::env::var_os("INVK_VENV") {
        Some(venv) => invk_run::local_server::Installation::at(&version, PathBuf::from(venv)),
        None => match invk_run::local_server::Installation::locate(&version) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("no InvokeAI installation ({e}); only the examples are measured");
                return Vec::new();
            }
        },
    };
    match installation.default_workflows_dir() {
        Ok(dir) => json_files(&dir),
        Err(e) => {
            eprintln!("{e}; only the examples are measured");
            Vec::new()
        }
    }
}

fn main() {
    let iterations: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20)
        .max(1);
    let mut files = default_workflows();
    files.extend(json_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflows"),
    ));
    let started = Instant::now();
    let schemas = SchemaSet::snapshot();
    println!(
        "schema snapshot: {} node types, parsed in {:.1} ms",
        schemas.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    let started = Instant::now();
    println!("{iterations} iterations; times are per iteration");
    println!("{:<70} {:>10} {:>10}", "workflow", "load", "convert");
    let (mut total_load, mut total_convert) = (Duration::ZERO, Duration::ZERO);
    for file in &files {
        let text = match fs_err::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                continue;
            }
        };
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (mut load, mut convert) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..iterations {
            let t = Instant::now();
            let loaded = WorkflowDefinition::from_json_str(&text, &name)
                .and_then(|d| Workflow::new(d, &schemas));
            load += t.elapsed();
            let workflow = match loaded {
                Ok(w) => w,
                Err(e) => {
                    eprintln!("{e}");
                    break;
                }
            };
            let t = Instant::now();
            let batch = workflow.to_batch(&ConvertOptions::default());
            convert += t.elapsed();
            std::hint::black_box(batch.ok());
        }
        println!(
            "{name:<70} {:>10.1?} {:>10.1?}",
            load / iterations,
            convert / iterations
        );
        total_load += load / iterations;
        total_convert += convert / iterations;
    }
    println!(
        "{:<70} {:>10.1?} {:>10.1?}   ({} workflows, wall {:.1?})",
        "total",
        total_load,
        total_convert,
        files.len(),
        started.elapsed()
    );
}
