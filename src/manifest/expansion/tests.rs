//! Checking manifests against a workflow's inputs while making their jobs.

use std::collections::HashSet;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::*;
use crate::manifest::catalog::{CatalogError, Checker, InputCatalog, InputInfo, InputKind};
use crate::manifest::file::ManifestFile;
use crate::manifest::job::InputValue;
use crate::manifest::seed::{derive_seed, job_identity};
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
pub(super) fn expand_with(
    files: &[(&str, &str)],
    yaml: &str,
) -> Result<Vec<(Value, Value)>, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        crate::fs::write(dir.path().join(name), text).expect("data file");
    }
    crate::fs::write(dir.path().join("wf.json"), "{}").expect("workflow");
    crate::fs::write(dir.path().join("a.png"), "png").expect("image");
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
    let err = expand_with(&[], "inputs: {Photo: a.png}\nsweep: {table: t.xlsx}").expect_err("xlsx");
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
