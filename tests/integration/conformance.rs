//! Conformance: the graph we build from a workflow equals the graph InvokeAI's own builder
//! (`build_graph_from_workflow`, run by `scripts/oracle_graph.py` in the installed package's
//! Python) makes from the same file, for every default workflow the package ships, our test
//! fixtures and our examples.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use invk_run::workflow::{ConvertOptions, Workflow, WorkflowDefinition};
use serde_json::Value;

use crate::support;

fn json_files(dir: &Path) -> Vec<PathBuf> {
    if !dir.is_dir() {
        return Vec::new();
    }
    let mut files: Vec<PathBuf> = fs_err::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// The workflows under test: the package's 26 defaults, `tests/fixtures/workflows` and
/// `examples/workflows`. Workflows with batch nodes are left out: there we follow the web UI
/// (batch nodes become batch data), which the oracle does not do (see the report in `graph.rs`).
fn workflows() -> Vec<PathBuf> {
    let defaults = support::installation()
        .default_workflows_dir()
        .expect("default workflows folder");
    let mut files = json_files(&defaults);
    assert_eq!(
        files.len(),
        26,
        "InvokeAI 6.14.2 ships 26 default workflows in {}",
        defaults.display()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    files.extend(json_files(&root.join("tests/fixtures/workflows")));
    files.extend(
        json_files(&root.join("examples/workflows"))
            .into_iter()
            .filter(|p| !has_batch_nodes(p)),
    );
    files
}

fn has_batch_nodes(path: &Path) -> bool {
    let def = WorkflowDefinition::load(path).expect("loads");
    def.nodes()
        .iter()
        .filter_map(|n| n.invocation_type())
        .any(invk_run::workflow::graph::is_batch_or_generator)
}

/// Runs the oracle once over every file (importing InvokeAI takes a while).
fn oracle(files: &[PathBuf]) -> serde_json::Map<String, Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/oracle_graph.py");
    let out = Command::new(support::installation().python())
        .arg(script)
        .args(files)
        .output()
        .expect("running the oracle");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("oracle prints JSON");
    match v {
        Value::Object(m) if files.len() > 1 => m,
        other => {
            let mut m = serde_json::Map::new();
            m.insert(files[0].display().to_string(), other);
            m
        }
    }
}

/// Edges as a set: their order in the list carries no meaning for the server.
fn edge_set(edges: &Value) -> BTreeSet<(String, String, String, String)> {
    edges
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            let s = |p: &str| {
                e.pointer(p)
                    .and_then(Value::as_str)
                    .expect("edge end")
                    .to_string()
            };
            (
                s("/source/node_id"),
                s("/source/field"),
                s("/destination/node_id"),
                s("/destination/field"),
            )
        })
        .collect()
}

fn compare(name: &str, ours: &Value, theirs: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(e) = theirs.get("error") {
        return vec![format!("{name}: the oracle refused it: {e}")];
    }
    let (our_nodes, their_nodes) = (
        ours["nodes"].as_object().expect("nodes"),
        theirs["nodes"].as_object().expect("nodes"),
    );
    let ours_ids: BTreeSet<_> = our_nodes.keys().collect();
    let theirs_ids: BTreeSet<_> = their_nodes.keys().collect();
    if ours_ids != theirs_ids {
        problems.push(format!(
            "{name}: node ids differ: ours {ours_ids:?}, oracle {theirs_ids:?}"
        ));
    }
    for (id, node) in our_nodes {
        // Nodes compare as JSON values, exactly: the oracle prints the builder's output before
        // pydantic rewrites anything. Key order inside a node is free, as in any JSON object.
        if let Some(other) = their_nodes.get(id)
            && node != other
        {
            problems.push(format!(
                "{name}: node {id} differs:\n  ours   {node}\n  oracle {other}"
            ));
        }
    }
    let (a, b) = (edge_set(&ours["edges"]), edge_set(&theirs["edges"]));
    if a != b {
        problems.push(format!(
            "{name}: edges differ: only ours {:?}, only oracle {:?}",
            a.difference(&b).collect::<Vec<_>>(),
            b.difference(&a).collect::<Vec<_>>()
        ));
    }
    if ours["edges"].as_array().map(Vec::len) != theirs["edges"].as_array().map(Vec::len) {
        problems.push(format!("{name}: edge counts differ (duplicates?)"));
    }
    problems
}

#[test]
fn graphs_equal_the_servers_own_builder_for_every_workflow() {
    let files = workflows();
    assert!(files.len() >= 27, "{} workflows", files.len());
    let oracle = oracle(&files);
    let mut problems = Vec::new();
    for file in &files {
        let def = WorkflowDefinition::load(file).unwrap_or_else(|e| panic!("{e}"));
        let wf = Workflow::new(def, crate::support::schemas()).unwrap_or_else(|e| panic!("{e}"));
        let ours =
            serde_json::to_value(wf.to_graph(&ConvertOptions::default())).expect("graph json");
        let theirs = oracle
            .get(&file.display().to_string())
            .expect("oracle result for every file");
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        problems.extend(compare(&name, &ours, theirs));
    }
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
