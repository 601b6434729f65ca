//! Compiling and rendering templates, their budget, and the variables each place sees.

use super::*;
use serde_json::json;

fn ctx(v: Value) -> Context {
    match v {
        Value::Object(m) => Context::new(m),
        _ => Context::new(Map::new()),
    }
}

fn render(source: &str, v: Value) -> Result<String, TemplateProblem> {
    let mut t = Templates::new();
    let path = YamlPath::keys(&["inputs", "prompt"]);
    t.add(&path, source)?;
    t.render(&path, source, &ctx(v))
}

#[test]
fn renders_vars_sweep_keys_and_builtins() {
    let v = json!({"vars": {"style": "watercolor"}, "animal": "cat", "sweep": {"Positive Prompt": "x"}, "job": {"index": 3}});
    let cases = [
        (
            "a {{ animal }} in {{ vars.style }} style",
            "a cat in watercolor style",
        ),
        ("{{ sweep['Positive Prompt'] }}!", "x!"),
        ("{{ job.index + 1 }}", "4"),
        ("plain text {not a template}", "plain text {not a template}"),
        (
            "{{ 'photos/cat.png' | stem }} {{ 'a/b.png' | basename }} {{ 'Hello, World!' | slug }}",
            "cat b.png hello-world",
        ),
        ("{{ missing | default('fallback') }}", "fallback"),
    ];
    for (source, expected) in cases {
        assert_eq!(
            render(source, v.clone()).as_deref(),
            Ok(expected),
            "{source}"
        );
    }
}

#[test]
fn undefined_variables_are_named_with_the_closest_match() {
    let v = json!({"vars": {"style": "w"}, "animal": "cat"});
    let p = render("{{ anmal }}", v.clone()).expect_err("typo");
    assert_eq!(p.message, "undefined variable `anmal`");
    assert_eq!(p.hint.as_deref(), Some("did you mean `animal`?"));
    assert!(p.undefined);
    let p = render("{{ vars.styel }}", v.clone()).expect_err("nested typo");
    assert_eq!(p.message, "undefined variable `vars.styel`");
    assert_eq!(p.hint.as_deref(), Some("did you mean `vars.style`?"));
    let p = render("{{ zebra }}", v).expect_err("no match");
    assert_eq!(p.hint.as_deref(), Some("defined here: `vars`, `animal`"));
    let p = render("{{ image }}", json!({"sweep": {"image": "a.png"}})).expect_err("reserved");
    assert_eq!(
        p.hint.as_deref(),
        Some("`image` is a reserved name; read the sweep value as `sweep[\"image\"]`")
    );
}

#[test]
fn syntax_errors_say_what_the_parser_expected() {
    let p = render("a {{ animal ", json!({})).expect_err("unclosed");
    assert!(
        p.message.starts_with("template syntax error: "),
        "{}",
        p.message
    );
    assert!(!p.undefined);
}

#[test]
fn strict_undefined_catches_what_the_static_check_cannot() {
    let p = render("{{ sweep['nope'] }}", json!({"sweep": {"a": 1}})).expect_err("missing key");
    assert!(p.message.contains("undefined"), "{}", p.message);
}

#[test]
fn renders_have_a_budget_of_steps_and_result_size() {
    let p = render(
        "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}",
        json!({}),
    )
    .expect_err("endless loops");
    assert_eq!(
        p.message,
        format!("the template at `inputs.prompt` takes more than {FUEL} steps, the limit")
    );
    assert!(p.over_budget);
    let p = render("{{ 'x' * 1000000 }}", json!({})).expect_err("1 MB");
    assert_eq!(
        p.message,
        format!(
            "the template at `inputs.prompt` makes a result longer than {MAX_RESULT_BYTES} bytes, the limit"
        )
    );
    assert!(p.over_budget);
    assert_eq!(
        render("{% for i in range(100) %}{{ i }}{% endfor %}", json!({})).map(|s| s.len()),
        Ok(190)
    );
}

/// Values that grow exponentially within few steps are stopped while they grow, at the
/// memory budget, when compiling (constants are folded then) as when rendering.
#[test]
fn values_that_grow_are_stopped_at_the_memory_budget() {
    let memory = "the template at `inputs.prompt` needs more than 32 MiB of memory, the limit";
    let cases = [
        // Folded when compiling.
        "{{ 'x' * 100000000 }}",
        "{{ ('x' * 50000000) ~ ('x' * 50000000) }}",
        // A string doubled in a loop.
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
        // Repeated concatenation, straight.
        "{% set a = vars.x * 1000 %}{% set b = a ~ a ~ a ~ a %}{% set c = b ~ b ~ b ~ b %}{% set d = c ~ c ~ c ~ c %}{% set e = d ~ d ~ d ~ d %}{% set f = e ~ e ~ e ~ e %}{% set g = f ~ f ~ f ~ f %}{% set h = g ~ g ~ g ~ g %}{{ h | length }}",
        // Filters that multiply.
        "{{ (vars.x * 10000000) | replace('x', 'xxxxxxxxxx') | length }}",
        "{{ range(100000) | join(vars.x * 100000) | length }}",
        // Recursion that doubles.
        "{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}{% else %}{{ s | length }}{% endif %}{% endmacro %}{{ f(vars.x, 60) }}",
    ];
    for source in cases {
        let started = std::time::Instant::now();
        let p = render(source, json!({"vars": {"x": "x"}})).expect_err(source);
        assert_eq!(p.message, memory, "{source}");
        assert!(p.over_budget, "{source}");
        assert!(
            started.elapsed() < MAX_RENDER_TIME,
            "{source}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_template_that_makes_the_engine_panic_is_an_error() {
    // Huge repetitions: minijinja overflows a multiplication on some (a panic in a debug
    // build). Each render returns, within its time budget, instead of taking the process.
    for source in [
        "{{ ([1] * 10**15) | length }}",
        "{{ [1] * 10**15 }}",
        "{{ ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20] * 10**18) | length }}",
        "{% set n = 10**18 %}{{ ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20] * n) | length }}",
    ] {
        let started = std::time::Instant::now();
        let _ = render(source, json!({"vars": {}}));
        assert!(started.elapsed() < MAX_RENDER_TIME * 2, "{source}");
    }
}

#[test]
fn work_without_end_in_one_step_is_stopped_at_the_time_budget() {
    let time = "the template at `inputs.prompt` takes more than 1 s, the limit";
    for source in [
        // Folded when compiling.
        "{{ 'x' in [1] * 1000000000000000 }}",
        // Rendered.
        "{% set n = 10 ** 15 %}{{ ([1] * n) | sum }}",
    ] {
        let started = std::time::Instant::now();
        let p = render(source, json!({})).expect_err(source);
        assert_eq!(p.message, time, "{source}");
        assert!(
            started.elapsed() < MAX_RENDER_TIME * 2,
            "{source}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn templates_that_only_print_variables_are_plain() {
    for plain in [
        "a {{ animal }} in {{ vars.style }} style",
        "{{ sweep['Positive Prompt'] | slug }}-{{- job.number -}}",
        "{{ sweep[\"a b\"] | stem | lower }}/{{ node.label }}/{{ image.index }}",
        "{{ inputs[0] }} plain {not a template}",
        "{{ job.index % 50 + 1 }}",
        "{{ 10 + (run.index + 1) // 2 }}x",
        "{{ vars.x ~ '-' ~ job.number }}",
        "{{ missing | default('fallback') }}",
        "{{ vars.r | round(2) }}",
        "{{ not (a and b) or 'x' in vars.list }}",
        "{{ a is defined }}",
    ] {
        assert!(is_plain(plain), "{plain}");
    }
    for not_plain in [
        "{{ vars.x * 3 }}",
        "{{ vars.x ** 3 }}",
        "{{ vars.x | replace('a', 'b') }}",
        "{{ vars.x | join }}",
        "{{ vars.x | default(vars.y * 3) }}",
        "{% if a %}{{ a }}{% endif %}",
        "{# note #}{{ a }}",
        "{{ a['}}'] }}",
        "{{ a[b] }}",
        "{{ [1, 2] }}",
        "{{ {'a': 1} }}",
        "{{ f() }}",
        "{{ range(10) }}",
        "{{ a.f() }}",
        "{{ a }",
        "{{ (a }}",
        "{{ 'a\\' }}",
    ] {
        assert!(!is_plain(not_plain), "{not_plain}");
    }
}

#[test]
fn names_read_by_a_template_are_listed() {
    let mut t = Templates::new();
    let path = YamlPath::keys(&["inputs", "x"]);
    t.add(
        &path,
        "{{ animal }} {{ vars.style }} {% for i in range(2) %}{{ i }}{% endfor %}",
    )
    .expect("compiles");
    let mut names: Vec<_> = t.top_level_names(&path).into_iter().collect();
    names.sort();
    assert_eq!(names, ["animal", "range", "vars"]);
}
