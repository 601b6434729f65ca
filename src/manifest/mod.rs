//! YAML job manifests: the model, its JSON Schema, templates, sweep expansion and validation.
//!
//! The flow, all pure (no server), reading only the manifest and the files it names:
//!
//! ```text
//! ManifestFile::load(path)               structure: keys, types, words, workflow file
//!   .expand(&catalog, &options)          inputs, values, images, templates, sweep -> Expansion (jobs)
//! Plan::new(&expansion)                  jobs grouped into enqueues
//! expansion.output_path(&job, &vars)     where a produced file goes
//! ```
//!
//! Every problem is a [`Diagnostic`] with file, line and column; [`ManifestError::Invalid`]
//! carries all of them. `docs/manifest.md` is the user reference.

mod catalog;
mod diagnostic;
mod dynamic;
mod each;
mod expansion;
mod file;
mod grid;
mod grid_check;
mod job;
mod model;
mod notify;
mod output;
mod output_path;
mod plan;
mod schema;
mod scope;
mod seed;
mod server_list;
mod source;
mod table;
mod template;

pub use catalog::{CatalogError, Checker, InputCatalog, InputInfo, InputKind};
pub use diagnostic::{
    Diagnostic, MAX_DIAGNOSTICS, MAX_MESSAGE_CHARS, MAX_QUOTED_CHARS, ManifestError, bounded,
    closest, did_you_mean,
};
pub use dynamic::{
    DynamicError, MAX_DEPTH as MAX_DYNAMIC_DEPTH, MAX_EXPANSION_STEPS, MAX_PROMPT_BYTES,
    MAX_TEMPLATE_CHARS, MAX_WILDCARD_DEPTH, MAX_WILDCARD_FILE_BYTES, MAX_WILDCARD_FILES,
    MAX_WILDCARD_LINES, Prompts, WildcardDir, combinations as dynamic_combinations, draw_seed,
};
pub use expansion::{ExpandOptions, Expansion};
pub use file::{MAX_MANIFEST_BYTES, ManifestFile, TOP_LEVEL_KEYS, WorkflowSource, read_manifest};
pub use grid::{
    CaptionTemplate, CaptionVars, DEFAULT_CELL_MAX, GridFormat, GridNameVars, GridSpec, Grids,
    MAX_CAPTION_CHARS, MAX_CAPTION_LINES, MAX_CELL, MAX_CELLS, MAX_GRID_PIXELS, MAX_LABEL_CHARS,
    MAX_PAGES, MIN_CELL, ZLayout, default_grid, render_grid_name, value_label,
};
pub use grid_check::{check_grid_nodes, resolve_grids};
pub use job::{InputValue, Job, LocalImage, ValueKey};
pub use model::{
    Axis, Cleanup, DEFAULT_OUTPUT_DIR, DEFAULT_OUTPUT_NAME, DynamicAxis, IntermediatesPolicy,
    Manifest, Output, OutputsPolicy, ReplaceAxis, ServerOptions, ServerSpec, Servers, Sweep,
    Tables, UploadsPolicy, VERSION, WorkflowRef, Zip,
};
pub use notify::{
    DEFAULT_NOTIFY_TIMEOUT, MAX_NOTIFY_ENTRIES, MAX_NOTIFY_TIMEOUT_SECS, Notify, NotifyEntry,
    NotifyOn, check_cli_url, header_secret, url_secret,
};
pub use output::{NameProblem, OutputPath, OutputVars, check_name};
pub use plan::{EnqueuePlan, GroupKey, Plan, group_key, split_system_name};
pub use schema::manifest_schema;
pub use scope::RESERVED;
pub use seed::{RANDOM_SEED, derive_seed};
pub use server_list::{MAX_POOL, lenient as server_entries_of};
pub use source::{Location, MAX_COLLECTION_ITEMS, Segment, SourceMap, YamlPath};
pub use table::{MAX_TABLE_BYTES, MAX_TABLE_CELLS, MAX_TABLE_ROWS};
pub use template::{FUEL, MAX_RESULT_BYTES, is_template};
