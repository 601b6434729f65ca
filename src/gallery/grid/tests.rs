use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use serde_json::Map;

use super::*;
use crate::gallery::records::FileRecord;
use serde_json::json;

fn record(job: usize, hue: i64, blur: i64, status: &str) -> JobRecord {
    JobRecord {
        job,
        status: status.to_owned(),
        error: (status == "failed").then(|| "boom".to_owned()),
        sweep: json!({"Hue": hue, "Blur": blur})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        inputs: Map::new(),
        files: if status == "completed" {
            vec![FileRecord {
                path: PathBuf::from(format!("{job}.png")),
                node_label: Some("Tinted".into()),
                node_id: Some("n".into()),
                sidecar: None,
                exists: true,
            }]
        } else {
            Vec::new()
        },
        summarized: true,
    }
}

#[test]
fn cells_follow_the_axes_and_say_why_they_are_empty() {
    let records = vec![
        record(0, 0, 1, "completed"),
        record(1, 0, 3, "failed"),
        record(2, 90, 1, "not_run"),
    ];
    let spec = GridSpec::new("Hue", Some("Blur"));
    let plans = plan(&spec, 1, 1, &records).expect("plan");
    assert_eq!(plans.len(), 1);
    let p = &plans[0];
    assert_eq!(p.file, PathBuf::from("grid-Tinted.png"));
    assert_eq!(p.columns, [json!(0), json!(90)]);
    assert_eq!(p.rows, [json!(1), json!(3)]);
    assert_eq!(
        p.cells[0],
        Cell::Image {
            job: 0,
            file: "0.png".into()
        }
    );
    assert!(matches!(&p.cells[1], Cell::Empty { reason, .. } if reason == "not run yet"));
    assert!(
        matches!(&p.cells[2], Cell::Empty { reason, failed: true, .. } if reason == "failed: boom")
    );
    assert!(
        matches!(&p.cells[3], Cell::Empty { reason, job: None, .. } if reason == "not in the sweep")
    );
}

/// A Hue × Blur grid of two cells: a 20 × 10 green image, and the file `second` writes;
/// returns the decoded grid and its layout, after checking the grid's image is the size
/// its layout says and the green image sits centred in its cell, pixel for pixel.
fn two_cells(second: impl FnOnce(&Path)) -> (RgbImage, GridLayout) {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = RgbImage::from_pixel(20, 10, Rgb([10, 200, 30]));
    img.save(dir.path().join("0.png")).expect("png");
    second(&dir.path().join("1.png"));
    let records = vec![record(0, 0, 1, "completed"), record(1, 90, 1, "completed")];
    let plans = plan(&GridSpec::new("Hue", Some("Blur")), 1, 1, &records).expect("plan");
    let (bytes, layout) = render(dir.path(), &plans[0]).expect("render");
    let grid = image::load_from_memory(&bytes).expect("decode").to_rgb8();
    assert_eq!((grid.width(), grid.height()), (layout.width, layout.height));
    let (x, y) = (
        layout.column_lefts[0] + (layout.cell - 20) / 2,
        layout.row_tops[0] + (layout.cell - 10) / 2,
    );
    assert_eq!(*grid.get_pixel(x, y), Rgb([10, 200, 30]));
    assert_eq!(*grid.get_pixel(x + 19, y + 9), Rgb([10, 200, 30]));
    assert_ne!(*grid.get_pixel(x - 1, y), Rgb([10, 200, 30]));
    (grid, layout)
}

#[test]
fn a_cell_whose_file_is_no_image_says_so_and_the_rest_is_drawn() {
    let (_, layout) = two_cells(|path| crate::fs::write(path, b"not a png").expect("write"));
    assert!(
        matches!(&layout.plan.cells[1], Cell::Empty { reason, .. } if reason.starts_with("cannot show 1.png"))
    );
}

#[test]
fn an_image_that_fails_past_its_header_is_an_empty_cell_and_the_cells_shrink_without_it() {
    // A large image cut short: its header says 300 × 300, its pixels are missing.
    let (_, layout) = two_cells(|path| {
        RgbImage::from_pixel(300, 300, Rgb([200, 10, 30]))
            .save(path)
            .expect("png");
        let whole = crate::fs::read(path).expect("read");
        crate::fs::write(path, &whole[..whole.len() - 20]).expect("cut");
        assert_eq!(
            image::image_dimensions(path).expect("its header reads"),
            (300, 300)
        );
    });
    assert!(
        matches!(&layout.plan.cells[1], Cell::Empty { reason, .. } if reason.starts_with("cannot show 1.png")),
        "{:?}",
        layout.plan.cells[1]
    );
    assert_eq!(
        layout.cell, DEFAULT_CELL_MIN,
        "sized as if the cut image were not there"
    );
}

#[test]
fn a_jpeg_grid_has_its_cells_where_its_layout_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    RgbImage::from_pixel(64, 64, Rgb([250, 250, 0]))
        .save(dir.path().join("0.png"))
        .expect("png");
    let records = vec![record(0, 0, 1, "completed"), record(1, 0, 3, "failed")];
    let spec = GridSpec {
        format: crate::manifest::GridFormat::Jpeg,
        ..GridSpec::new("Hue", Some("Blur"))
    };
    let plans = plan(&spec, 1, 1, &records).expect("plan");
    let (bytes, layout) = render(dir.path(), &plans[0]).expect("render");
    let grid = image::load_from_memory(&bytes).expect("decode").to_rgb8();
    assert_eq!((grid.width(), grid.height()), (layout.width, layout.height));
    // Below the centre of each cell: off an empty cell's cross and its text.
    let at = |row: usize| {
        *grid.get_pixel(
            layout.column_lefts[0] + layout.cell / 2,
            layout.row_tops[row] + layout.cell / 2 + 20,
        )
    };
    let Rgb([r, g, b]) = at(0);
    assert!(
        r > 200 && g > 200 && b < 60,
        "the yellow image: {:?}",
        at(0)
    );
    let Rgb([r, g, b]) = at(1);
    assert!(
        r >= 240 && r >= g + 8 && r >= b + 8,
        "the failed cell's pink: {:?}",
        at(1)
    );
}

#[test]
fn keys_on_no_axis_make_pages() {
    let records = vec![record(0, 0, 1, "completed"), record(1, 0, 3, "completed")];
    let plans = plan(&GridSpec::new("Hue", None), 1, 1, &records).expect("plan");
    let files: Vec<_> = plans.iter().map(|p| p.file.clone()).collect();
    assert_eq!(
        files,
        [
            PathBuf::from("grid-Tinted-Blur-1.png"),
            PathBuf::from("grid-Tinted-Blur-3.png")
        ]
    );
}

#[test]
fn keys_the_axes_fix_make_no_pages_and_page_names_are_plain() {
    // A table's rows (Prompt fixes Hue) times two widths; Seed varies on its own.
    let row = |job: usize, prompt: &str, hue: i64, width: i64, seed: i64| {
        let mut r = record(job, hue, 0, "completed");
        r.sweep = json!({"Prompt": prompt, "Hue shift": hue, "Width": width, "Seed": seed})
            .as_object()
            .cloned()
            .unwrap_or_default();
        r
    };
    let mut records = Vec::new();
    for (i, (prompt, hue)) in [("a fox, red", 0), ("a tree", 90)].iter().enumerate() {
        for (j, width) in [24, 40].iter().enumerate() {
            for (k, seed) in [1, 2].iter().enumerate() {
                records.push(row(i * 4 + j * 2 + k, prompt, *hue, *width, *seed));
            }
        }
    }
    let files = |spec: &GridSpec| -> Vec<PathBuf> {
        plan(spec, 1, 1, &records)
            .expect("plan")
            .into_iter()
            .map(|p| p.file)
            .collect()
    };
    // Width × Prompt: Hue comes with the prompt, Seed is a page of its own.
    assert_eq!(
        files(&GridSpec::new("Width", Some("Prompt"))),
        [
            PathBuf::from("grid-Tinted-Seed-1.png"),
            PathBuf::from("grid-Tinted-Seed-2.png")
        ]
    );
    // Asked for on `pages:`, a fixed key is a page all the same (named plainly).
    let spec = GridSpec {
        pages: vec!["Hue shift".into()],
        ..GridSpec::new("Width", Some("Prompt"))
    };
    assert_eq!(files(&spec).len(), 4);
    assert!(files(&spec).contains(&PathBuf::from("grid-Tinted-Hue-shift-90-Seed-1.png")));
    // Width alone: Prompt, Hue and Seed vary in a column: a page per prompt and seed.
    let by_width = plan(&GridSpec::new("Width", None), 1, 1, &records).expect("plan");
    assert_eq!(by_width.len(), 4);
    assert_eq!(
        by_width[0].file,
        PathBuf::from("grid-Tinted-Prompt-a-fox-red-Hue-shift-0-Seed-1.png")
    );
    assert_eq!(by_width[0].page["Prompt"], json!("a fox, red"));
}

/// The colour of job `job`'s image (jobs 0 to 7).
fn colour_of(job: usize) -> [u8; 3] {
    let j = job as u8;
    [30 * j, 250 - 30 * j, 100]
}

/// Jobs of a Hue × Blur × Seed sweep (Hue 0, 90; Blur 1, 3; Seed 7, 8), each image a colour
/// of its own (16 × 16), with a constant input `Width` and sidecars recording the seed.
fn xyz_records(dir: &Path) -> Vec<JobRecord> {
    let mut records = Vec::new();
    for (a, seed) in [7, 8].into_iter().enumerate() {
        for (b, blur) in [1, 3].into_iter().enumerate() {
            for (c, hue) in [0, 90].into_iter().enumerate() {
                let job = a * 4 + b * 2 + c;
                let mut r = record(job, hue, blur, "completed");
                r.sweep.insert("Seed".into(), json!(seed));
                r.inputs.insert("Width".into(), json!(16));
                r.inputs.insert("Hue".into(), json!(hue));
                r.files[0].sidecar = Some(json!({"seed": seed * 1000}));
                let colour = colour_of(job);
                RgbImage::from_pixel(16, 16, Rgb(colour))
                    .save(dir.join(format!("{job}.png")))
                    .expect("png");
                records.push(r);
            }
        }
    }
    records
}

/// The grid `spec` makes of [`xyz_records`], drawn and decoded, after checking that it is one
/// file (no pages) and each cell of each sub-grid holds its job's image where the layout says.
fn xyz_grid(spec: &GridSpec) -> (RgbImage, GridLayout) {
    let dir = tempfile::tempdir().expect("tempdir");
    let records = xyz_records(dir.path());
    let plans = plan(spec, 1, 1, &records).expect("plan");
    assert_eq!(plans.len(), 1, "the Z key makes sub-grids, not pages");
    let (bytes, layout) = render(dir.path(), &plans[0]).expect("render");
    let grid = image::load_from_memory(&bytes).expect("decode").to_rgb8();
    assert_eq!((grid.width(), grid.height()), (layout.width, layout.height));
    assert_eq!(layout.plan.layers, [json!(7), json!(8)]);
    assert_eq!(layout.sub_grids.len(), 2);
    for (b, sub) in layout.sub_grids.iter().enumerate() {
        for (j, top) in sub.row_tops.iter().enumerate() {
            for (i, left) in sub.column_lefts.iter().enumerate() {
                let k = (b * 2 + j) * 2 + i;
                let Cell::Image { job, .. } = &layout.plan.cells[k] else {
                    panic!("cell {k} is empty");
                };
                let want = records[*job].sweep.clone();
                assert_eq!(
                    (
                        want["Seed"].clone(),
                        want["Blur"].clone(),
                        want["Hue"].clone()
                    ),
                    (
                        layout.plan.layers[b].clone(),
                        layout.plan.rows[j].clone(),
                        layout.plan.columns[i].clone()
                    )
                );
                let colour = colour_of(*job);
                let (x, y) = (left + (layout.cell - 16) / 2, top + (layout.cell - 16) / 2);
                assert_eq!(*grid.get_pixel(x, y), Rgb(colour), "cell {k}");
                assert_eq!(*grid.get_pixel(x + 15, y + 15), Rgb(colour), "cell {k}");
            }
        }
    }
    (grid, layout)
}

/// Dark (text) pixels in a rectangle.
fn ink(grid: &RgbImage, x0: u32, y0: u32, x1: u32, y1: u32) -> usize {
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            grid.get_pixel(x, y)
                .0
                .iter()
                .map(|&c| u32::from(c))
                .sum::<u32>()
                < 300
        })
        .count()
}

#[test]
fn a_z_key_puts_sub_grids_side_by_side_or_stacked_each_cell_its_jobs_image() {
    let across = GridSpec {
        z: Some("Seed".into()),
        ..GridSpec::new("Hue", Some("Blur"))
    };
    let (_, layout) = xyz_grid(&across);
    let (first, second) = (&layout.sub_grids[0], &layout.sub_grids[1]);
    assert_eq!(
        first.row_tops, second.row_tops,
        "side by side: the same rows"
    );
    assert!(second.column_lefts[0] > first.column_lefts[1] + layout.cell);
    let down = GridSpec {
        z_layout: ZLayout::Down,
        ..across
    };
    let (_, layout) = xyz_grid(&down);
    let (first, second) = (&layout.sub_grids[0], &layout.sub_grids[1]);
    assert_eq!(
        first.column_lefts, second.column_lefts,
        "stacked: the same columns"
    );
    assert!(second.row_tops[0] > first.row_tops[1] + layout.cell);
}

#[test]
fn captions_are_rendered_per_cell_and_drawn_under_it() {
    let plain = GridSpec {
        z: Some("Seed".into()),
        ..GridSpec::new("Hue", Some("Blur"))
    };
    let captioned = GridSpec {
        caption: Some("seed {{ seed }}, hue {{ Hue }}, job {{ job.index }}".into()),
        ..plain.clone()
    };
    let (grid, layout) = xyz_grid(&captioned);
    assert!(layout.caption_height > 0);
    let Cell::Image { job, .. } = &layout.plan.cells[5] else {
        panic!("an image")
    };
    assert_eq!(*job, 5);
    // Job 5: Seed 8 (its sidecar's seed 8000), Blur 1, Hue 90.
    assert_eq!(
        layout.plan.captions[5].as_deref(),
        Some("seed 8000, hue 90, job 5")
    );
    let (bare, bare_layout) = xyz_grid(&plain);
    assert_eq!(bare_layout.caption_height, 0);
    assert!(bare_layout.plan.captions.is_empty());
    // Under each cell: text with captions, background without.
    for sub in &layout.sub_grids {
        for &top in &sub.row_tops {
            for &left in &sub.column_lefts {
                let below = top + layout.cell;
                let band = ink(
                    &grid,
                    left,
                    below,
                    left + layout.cell,
                    below + layout.caption_height,
                );
                assert!(band > 10, "no caption under the cell at ({left}, {top})");
            }
        }
    }
    let sub = &bare_layout.sub_grids[0];
    let below = sub.row_tops[0] + bare_layout.cell;
    let left = sub.column_lefts[0];
    assert_eq!(
        ink(
            &bare,
            left,
            below,
            left + bare_layout.cell,
            below + bare_layout.gap
        ),
        0
    );
}

#[test]
fn the_header_lists_the_values_held_fixed() {
    // On the Hue × Blur grid, Seed is a page; Width is the same in every job: both are held
    // fixed, and listed. Hue, an input an axis sets, is not.
    let dir = tempfile::tempdir().expect("tempdir");
    let records = xyz_records(dir.path());
    let plans = plan(&GridSpec::new("Hue", Some("Blur")), 1, 1, &records).expect("plan");
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[0].page, *json!({"Seed": 7}).as_object().expect("map"));
    assert_eq!(
        plans[0].fixed,
        *json!({"Width": 16}).as_object().expect("map")
    );
    assert_eq!(fixed_line(&plans[0]), "fixed: Width: 16");
    let (bytes, layout) = render(dir.path(), &plans[0]).expect("render");
    let grid = image::load_from_memory(&bytes).expect("decode").to_rgb8();
    assert!(layout.fixed_height > 0);
    let written = ink(
        &grid,
        0,
        layout.fixed_top,
        layout.width,
        layout.fixed_top + layout.fixed_height,
    );
    assert!(
        written > 20,
        "the fixed values are drawn: {written} dark pixels"
    );
    // Nothing held fixed: no such line.
    let mut varying = records.clone();
    for r in &mut varying {
        r.inputs.clear();
    }
    let plans = plan(&GridSpec::new("Hue", Some("Blur")), 1, 1, &varying).expect("plan");
    assert!(plans[0].fixed.is_empty());
    let (_, layout) = render(dir.path(), &plans[0]).expect("render");
    assert_eq!(layout.fixed_height, 0);
}
