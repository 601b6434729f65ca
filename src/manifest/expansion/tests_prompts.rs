//! `{dynamic: ...}` sweep keys and inputs, and `{replace: [...], in: INPUT}` axes.

use super::tests::expand_with;

fn prompts(files: &[(&str, &str)], yaml: &str) -> Result<Vec<String>, String> {
    expand_with(files, yaml).map(|jobs| {
        jobs.into_iter()
            .map(|(j, _)| j["Prompt"].as_str().unwrap_or("?").to_owned())
            .collect()
    })
}

#[test]
fn a_dynamic_sweep_key_makes_one_job_per_combination_in_order() {
    let got = prompts(
        &[],
        "inputs: {Photo: a.png}\nsweep:\n  matrix:\n    Steps: [1, 2]\n    Prompt: {dynamic: 'a {red|blue} {car|bike}'}\n",
    )
    .expect("valid");
    let combos = ["a red car", "a red bike", "a blue car", "a blue bike"];
    let expected: Vec<&str> = combos.iter().chain(combos.iter()).copied().collect();
    assert_eq!(got, expected);
}

#[test]
fn a_dynamic_input_is_swept_after_the_matrix() {
    let jobs = expand_with(
        &[],
        "inputs:\n  Photo: a.png\n  Prompt: {dynamic: '{x|y}'}\nsweep:\n  matrix: {Steps: [1, 2]}\n",
    )
    .expect("valid");
    let shown: Vec<String> = jobs
        .iter()
        .map(|(j, _)| format!("{}{}", j["Steps"], j["Prompt"].as_str().unwrap_or("?")))
        .collect();
    assert_eq!(shown, ["1x", "1y", "2x", "2y"]);
}

#[test]
fn a_template_over_the_job_limit_is_refused_unless_capped() {
    // ExpandOptions of these tests: at most 100 jobs.
    let template = "{a|b|c|d|e|f|g|h|i|j}".repeat(12);
    let yaml = format!(
        "inputs: {{Photo: a.png}}\nsweep:\n  matrix:\n    Prompt: {{dynamic: '{template}'}}\n"
    );
    let err = prompts(&[], &yaml).expect_err("too many");
    assert!(
        err.contains("m.yaml:6:23:")
            && err.contains(
                "the template makes 1000000000000 prompts, more than the job limit of 100"
            ),
        "{err}"
    );
    let capped = prompts(&[], &format!("inputs: {{Photo: a.png}}\nsweep:\n  matrix:\n    Prompt: {{dynamic: '{template}', max: 3}}\n")).expect("capped");
    assert_eq!(capped, ["aaaaaaaaaaaa", "aaaaaaaaaaab", "aaaaaaaaaaac"]);
}

#[test]
fn random_draws_depend_on_the_manifest_seed_only() {
    let yaml = |seed: u64| {
        format!(
            "seed: {seed}\ninputs: {{Photo: a.png}}\nsweep:\n  matrix:\n    Prompt: {{dynamic: '{{red|green|blue|pink}} {{car|bike|boat}} {{1-2$$a|b|c}}', random: 8}}\n"
        )
    };
    let first = prompts(&[], &yaml(1)).expect("valid");
    assert_eq!(first.len(), 8);
    assert_eq!(first, prompts(&[], &yaml(1)).expect("valid"));
    assert_ne!(first, prompts(&[], &yaml(2)).expect("valid"));
}

#[test]
fn wildcards_come_from_the_named_folder_and_unknown_ones_are_placed() {
    let files = [
        ("colors.txt", "red\nblue\n# none\n"),
        ("things.txt", "__colours__ car\n"),
    ];
    // The wildcard files sit beside the manifest here: `wildcards: .`.
    let got = prompts(&files, "wildcards: .\ninputs: {Photo: a.png}\nsweep: {matrix: {Prompt: {dynamic: 'a __colors__ car'}}}\n").expect("valid");
    assert_eq!(got, ["a blue car", "a red car"]);
    let err = prompts(&files, "wildcards: .\ninputs: {Photo: a.png}\nsweep: {matrix: {Prompt: {dynamic: '__things__'}}}\n").expect_err("unknown");
    assert!(
        err.contains("/things.txt:1:1: error: unknown wildcard `__colours__`"),
        "{err}"
    );
    assert!(err.contains("did you mean `__colors__`?"), "{err}");
    let err = prompts(
        &files,
        "inputs: {Photo: a.png}\nsweep: {matrix: {Prompt: {dynamic: '__colors__'}}}\n",
    )
    .expect_err("no folder");
    assert!(
        err.contains("m.yaml:4:") && err.contains("names no wildcards folder"),
        "{err}"
    );
}

#[test]
fn a_replace_axis_edits_the_named_inputs_text() {
    let jobs = expand_with(
        &[],
        "inputs: {Photo: a.png, Prompt: a cat on a mat}\nsweep:\n  matrix:\n    animal: {replace: [cat, dog, fox], in: Prompt}\n",
    )
    .expect("valid");
    let got: Vec<&str> = jobs
        .iter()
        .map(|(j, _)| j["Prompt"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(got, ["a cat on a mat", "a dog on a mat", "a fox on a mat"]);
    let err = expand_with(
        &[],
        "inputs: {Photo: a.png, Prompt: a bird}\nsweep:\n  matrix:\n    animal: {replace: [cat, dog], in: Prompt}\n",
    )
    .expect_err("missing word");
    assert!(err.contains("m.yaml:6:") && err.contains("`cat`, the word `replace` searches for, does not occur in the text of input `Prompt`: a bird"), "{err}");
    let err = expand_with(&[], "inputs: {Photo: a.png}\nsweep:\n  matrix:\n    animal: {replace: [cat, dog], in: Prompt}\n").expect_err("unset");
    assert!(
        err.contains("input `Prompt` is not set by the manifest"),
        "{err}"
    );
}
