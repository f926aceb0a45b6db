//! The report's figures, drawn with plotters to SVG (inline and standalone) and PNG.
//!
//! Each figure is data extracted once from [`Study`] ([`FigureData`]) plus one drawing
//! function generic over the plotters backend, so the SVG string and the PNG file are the
//! same drawing. PNG needs a TrueType font registered with plotters' `ab_glyph` feature
//! ([`load_font`]); SVG does not, so a machine without the font still gets SVG figures.
//!
//! Figures (issue 7): direct vs cache-broken owned per model (dumbbell, sorted), stacked
//! postures per model for G1+G2, world-change ownership with CTRL3 and G3 apart, lab trend
//! lines by release date (exploratory), lexical-trace rates by posture.

pub mod draw;

use std::path::Path;
use std::sync::Mutex;

use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use self::draw::*;
use super::view::{Study, POSTURES};
use super::Error;

/// One model row of a per-model figure.
#[derive(Debug, Clone)]
pub struct ModelPoint {
    /// Label (model key).
    pub label: String,
    /// Values (percent) in the figure's series order; `None` = not available.
    pub values: Vec<Option<f64>>,
    /// Optional intervals per series.
    pub cis: Vec<Option<(f64, f64)>>,
}

/// The data behind a figure.
#[derive(Debug, Clone)]
pub enum FigureData {
    /// Direct vs cache-broken owned, one row per model, sorted ascending by G1/2 owned.
    Dumbbell(Vec<ModelPoint>),
    /// G1+G2 owned / relocated / recited / other per model.
    Stacked(Vec<ModelPoint>),
    /// CTRL3 and G3 owned per model.
    WorldChange(Vec<ModelPoint>),
    /// Per lab: (lab, [(model, day number, date text, direct owned, cache-broken owned)]).
    Trends(Vec<(String, Vec<TrendPoint>)>),
    /// Per family: [(posture, n, [service, disownership, policy] fractions 0-1)].
    Lexical(Vec<(String, Vec<(String, f64, [f64; 3])>)>),
}

/// One model in a lab trend panel.
#[derive(Debug, Clone)]
pub struct TrendPoint {
    /// Model key.
    pub model: String,
    /// Days since 1970-01-01 of the release date.
    pub day: i64,
    /// Release date text.
    pub date: String,
    /// CTRL1/2 owned (percent).
    pub direct: Option<f64>,
    /// G1/2 owned (percent).
    pub cache: Option<f64>,
}

/// A figure ready to write.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File stem (`direct_vs_cache_broken_by_model`).
    pub name: String,
    /// Title shown above it in HTML.
    pub title: String,
    /// Caption naming the source table.
    pub caption: String,
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// The data.
    pub data: FigureData,
    /// Rendered SVG.
    pub svg: String,
}

impl Figure {
    fn new(name: &str, title: &str, caption: &str, data: FigureData) -> Result<Self, Error> {
        let size = size_of(&data);
        let mut f = Figure {
            name: name.into(),
            title: title.into(),
            caption: caption.into(),
            size,
            data,
            svg: String::new(),
        };
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            f.draw(&root).map_err(|msg| Error::Figure {
                name: name.into(),
                msg,
            })?;
            root.present().map_err(|e| Error::Figure {
                name: name.into(),
                msg: format!("{e:?}"),
            })?;
        }
        f.svg = svg;
        Ok(f)
    }

    /// Write the PNG version (call only after [`load_font`] succeeded).
    pub fn write_png(&self, _study: &Study<'_>, path: &Path) -> Result<(), Error> {
        let err = |msg: String| Error::Figure {
            name: self.name.clone(),
            msg,
        };
        let root = BitMapBackend::new(path, self.size).into_drawing_area();
        self.draw(&root).map_err(err)?;
        root.present().map_err(|e| err(format!("{e:?}")))
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> FigResult {
        root.fill(&WHITE).map_err(|e| format!("{e:?}"))?;
        text(root, &self.title, (20, 22), 17, &INK, HPos::Left, true)?;
        match &self.data {
            FigureData::Dumbbell(rows) => draw_dumbbell(root, self.size, rows),
            FigureData::Stacked(rows) => draw_stacked(root, self.size, rows),
            FigureData::WorldChange(rows) => draw_world(root, self.size, rows),
            FigureData::Trends(panels) => draw_trends(root, self.size, panels),
            FigureData::Lexical(panels) => draw_lexical(root, self.size, panels),
        }
    }
}

static FONT_REGISTERED: Mutex<bool> = Mutex::new(false);

/// Register the TrueType font at `path` as plotters' "sans-serif" (once per process; a
/// failed attempt is retried on the next call). Errors say why PNGs cannot be drawn
/// (the caller writes SVG only and says so).
pub fn load_font(path: &Path) -> Result<(), String> {
    let mut done = FONT_REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "font {} not readable ({e}); PNG figures not written",
            path.display()
        )
    })?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    for style in [FontStyle::Normal, FontStyle::Bold] {
        plotters::style::register_font("sans-serif", style, bytes).map_err(|_| {
            format!(
                "font {} is not a valid TrueType font; PNG figures not written",
                path.display()
            )
        })?;
    }
    *done = true;
    Ok(())
}

const ROW_H: i32 = 18;
const LEFT: i32 = 250;
const TOP: i32 = 78;

fn size_of(data: &FigureData) -> (u32, u32) {
    match data {
        FigureData::Dumbbell(r) | FigureData::Stacked(r) | FigureData::WorldChange(r) => {
            (960, (TOP + ROW_H * r.len().max(1) as i32 + 30) as u32)
        }
        FigureData::Trends(p) => (960, (60 + 300 * p.len().div_ceil(2).max(1)) as u32),
        FigureData::Lexical(_) => (1080, 440),
    }
}

/// Build every figure from the study. Figures whose source table is absent are omitted.
pub fn build_all(study: &Study<'_>) -> Result<Vec<Figure>, Error> {
    let mut out = Vec::new();
    let fam = |m: &super::view::ModelView, f: &str| m.fam(f).and_then(|r| r.owned());
    let famci = |m: &super::view::ModelView, f: &str| {
        m.fam(f)
            .and_then(|r| r.owned_ci.as_ref().map(|c| (c.0, c.1)))
    };
    if study.models.iter().any(|m| !m.families.is_empty()) {
        let mut rows: Vec<ModelPoint> = study
            .models
            .iter()
            .filter(|m| !m.families.is_empty())
            .map(|m| ModelPoint {
                label: m.model.clone(),
                values: vec![
                    fam(m, "direct_stated_values"),
                    fam(m, "cache_broken_stated_values"),
                ],
                cis: vec![
                    famci(m, "direct_stated_values"),
                    famci(m, "cache_broken_stated_values"),
                ],
            })
            .collect();
        rows.sort_by(|a, b| {
            a.values[1]
                .unwrap_or(-1.0)
                .total_cmp(&b.values[1].unwrap_or(-1.0))
        });
        out.push(Figure::new(
            "direct_vs_cache_broken_by_model",
            "Owned rate: direct (CTRL1/2) vs cache-broken (G1/2), per model",
            "Source: model_disclosure_summary.csv (owned_rate, unweighted mean over eligible cells). Sorted ascending by G1/2 owned. Whiskers: intervals written by the analysis, when present.",
            FigureData::Dumbbell(rows.clone()),
        )?);
        let order: Vec<String> = rows.iter().rev().map(|r| r.label.clone()).collect();
        let stacked: Vec<ModelPoint> = order
            .iter()
            .filter_map(|name| study.models.iter().find(|m| &m.model == name))
            .map(|m| {
                let r = m.fam("cache_broken_stated_values");
                let g = |i: usize| r.and_then(|r| r.rates[i]);
                let other = match (g(3), g(4)) {
                    (None, None) => None,
                    (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
                };
                ModelPoint {
                    label: m.model.clone(),
                    values: vec![g(0), g(1), g(2), other],
                    cis: vec![],
                }
            })
            .collect();
        out.push(Figure::new(
            "g1g2_posture_by_model",
            "G1+G2 postures per model: owned / relocated / recited / other",
            "Source: model_disclosure_summary.csv, family cache_broken_stated_values (rates of the five categories; other = indeterminate + uncodeable). Sorted by owned, highest first.",
            FigureData::Stacked(stacked),
        )?);
    }
    if study.models.iter().any(|m| !m.conditions.is_empty()) {
        let cond =
            |m: &super::view::ModelView, c: &str| m.conditions.get(c).and_then(|r| r.owned());
        let condci = |m: &super::view::ModelView, c: &str| {
            m.conditions
                .get(c)
                .and_then(|r| r.owned_ci.as_ref().map(|x| (x.0, x.1)))
        };
        let mut rows: Vec<ModelPoint> = study
            .models
            .iter()
            .filter(|m| !m.conditions.is_empty())
            .map(|m| ModelPoint {
                label: m.model.clone(),
                values: vec![cond(m, "CTRL3"), cond(m, "G3")],
                cis: vec![condci(m, "CTRL3"), condci(m, "G3")],
            })
            .collect();
        rows.sort_by(|a, b| {
            a.values[1]
                .unwrap_or(-1.0)
                .total_cmp(&b.values[1].unwrap_or(-1.0))
                .then_with(|| {
                    a.values[0]
                        .unwrap_or(-1.0)
                        .total_cmp(&b.values[0].unwrap_or(-1.0))
                })
        });
        out.push(Figure::new(
            "world_change_by_model",
            "World-change prompts: owned rate per model, CTRL3 and G3 shown apart",
            "Source: model_question_owned_disclosure.csv, conditions CTRL3 and G3 (never pooled with the stated-values conditions). Sorted ascending by G3 owned.",
            FigureData::WorldChange(rows),
        )?);
    }
    out.push(Figure::new(
        "lab_trends_by_release_date",
        "Exploratory: owned rate by release date within each lab (descriptive, not a fitted trend)",
        "Source: lab_trend_figures.csv (labs and model order) and model_disclosure_summary.csv (owned rates, release_date). Exploratory only.",
        FigureData::Trends(trend_panels(study)),
    )?);
    if let Some(t) = study.input.tables.get("lexical_trace_by_posture") {
        let mut panels: Vec<(String, Vec<(String, f64, [f64; 3])>)> = Vec::new();
        for (key, _, label) in super::view::FAMILIES {
            let mut groups = Vec::new();
            for p in POSTURES {
                if let Some(r) = t
                    .iter()
                    .find(|r| r.get("condition_family") == key && r.get("value_holding") == p)
                {
                    let f = |c: &str| r.num(c).unwrap_or(0.0);
                    groups.push((
                        p.to_string(),
                        f("n"),
                        [
                            f("service_assistant_role_any_rate"),
                            f("disownership_any_rate"),
                            f("policy_safety_frame_any_rate"),
                        ],
                    ));
                }
            }
            panels.push((label.to_string(), groups));
        }
        out.push(Figure::new(
            "lexical_trace_by_posture",
            "Lexical traces by posture: share of responses with any hit per term group",
            "Source: lexical_trace_by_posture.csv (any-hit rates). Descriptive only: posture was fixed by the coders, never by these terms. Postures with n < 20 are faded.",
            FigureData::Lexical(panels),
        )?);
    }
    Ok(out)
}

fn trend_panels(study: &Study<'_>) -> Vec<(String, Vec<TrendPoint>)> {
    let point = |name: &str| -> Option<TrendPoint> {
        let m = study.models.iter().find(|m| m.model == name)?;
        let day = parse_day(&m.release_date)?;
        Some(TrendPoint {
            model: m.model.clone(),
            day,
            date: m.release_date.clone(),
            direct: m.fam("direct_stated_values").and_then(|r| r.owned()),
            cache: m.fam("cache_broken_stated_values").and_then(|r| r.owned()),
        })
    };
    let mut panels = Vec::new();
    if let Some(t) = study.input.tables.get("lab_trend_figures") {
        for r in t.iter() {
            let pts: Vec<TrendPoint> = r.get("models").split('|').filter_map(point).collect();
            if pts.len() >= 2 {
                panels.push((r.get("lab").to_string(), pts));
            }
        }
    }
    panels
}

/// Days since 1970-01-01 for `YYYY-MM-DD` (proleptic Gregorian); `None` if unparsable.
pub fn parse_day(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.get(..2)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn xpct(x0: i32, x1: i32, v: f64) -> i32 {
    x0 + ((x1 - x0) as f64 * v.clamp(0.0, 100.0) / 100.0).round() as i32
}

fn row_labels<DB: DrawingBackend>(a: &Area<DB>, rows: &[ModelPoint], x1: i32) -> FigResult {
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + ROW_H * i as i32 + ROW_H / 2;
        if i % 2 == 0 {
            rect(
                a,
                (LEFT - 6, y - ROW_H / 2),
                (x1 + 6, y + ROW_H / 2),
                &RGBColor(0xf8, 0xf9, 0xfa),
            )?;
        }
        text(
            a,
            &truncate(&r.label, 34),
            (LEFT - 12, y),
            12,
            &INK,
            HPos::Right,
            false,
        )?;
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n - 1).collect();
        format!("{t}…")
    }
}

fn draw_dumbbell<DB: DrawingBackend>(
    a: &Area<DB>,
    (w, _): (u32, u32),
    rows: &[ModelPoint],
) -> FigResult {
    let x1 = w as i32 - 40;
    let bottom = TOP + ROW_H * rows.len() as i32;
    row_labels(a, rows, x1)?;
    percent_grid_x(a, LEFT, x1, TOP, bottom)?;
    legend(
        a,
        (LEFT, 48),
        &[
            (Swatch::Dot, DIRECT, "direct CTRL1/2"),
            (Swatch::Dot, CACHE, "cache-broken G1/2"),
        ],
    )?;
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + ROW_H * i as i32 + ROW_H / 2;
        if let (Some(d), Some(c)) = (r.values[0], r.values[1]) {
            line(a, (xpct(LEFT, x1, d), y), (xpct(LEFT, x1, c), y), &OTHER, 2)?;
        }
        for (k, color) in [(0usize, DIRECT), (1, CACHE)] {
            if let Some(Some((lo, hi))) = r.cis.get(k) {
                line(
                    a,
                    (xpct(LEFT, x1, *lo), y),
                    (xpct(LEFT, x1, *hi), y),
                    &color,
                    1,
                )?;
            }
        }
        for (k, color) in [(0usize, DIRECT), (1, CACHE)] {
            if let Some(v) = r.values[k] {
                dot(a, (xpct(LEFT, x1, v), y), 5, &color)?;
            }
        }
    }
    Ok(())
}

fn draw_stacked<DB: DrawingBackend>(
    a: &Area<DB>,
    (w, _): (u32, u32),
    rows: &[ModelPoint],
) -> FigResult {
    let x1 = w as i32 - 40;
    let bottom = TOP + ROW_H * rows.len() as i32;
    row_labels(a, rows, x1)?;
    percent_grid_x(a, LEFT, x1, TOP, bottom)?;
    legend(
        a,
        (LEFT, 48),
        &[
            (Swatch::Box, OWNED, "owned"),
            (Swatch::Box, RELOCATED, "relocated/partial"),
            (Swatch::Box, RECITED, "recited, not owned"),
            (Swatch::Box, OTHER, "indeterminate/uncodeable"),
        ],
    )?;
    let colors = [OWNED, RELOCATED, RECITED, OTHER];
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + ROW_H * i as i32 + ROW_H / 2;
        let mut acc = 0.0;
        if r.values.iter().all(|v| v.is_none()) {
            text(
                a,
                "no eligible cells",
                (LEFT + 4, y),
                11,
                &MUTED,
                HPos::Left,
                false,
            )?;
            continue;
        }
        for (k, v) in r.values.iter().enumerate() {
            let v = v.unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let xa = xpct(LEFT, x1, acc);
            let xb = xpct(LEFT, x1, acc + v);
            rect(a, (xa, y - 6), (xb.max(xa + 1), y + 6), &colors[k])?;
            acc += v;
        }
    }
    Ok(())
}

fn draw_world<DB: DrawingBackend>(
    a: &Area<DB>,
    (w, _): (u32, u32),
    rows: &[ModelPoint],
) -> FigResult {
    let x1 = w as i32 - 40;
    let bottom = TOP + ROW_H * rows.len() as i32;
    row_labels(a, rows, x1)?;
    percent_grid_x(a, LEFT, x1, TOP, bottom)?;
    legend(
        a,
        (LEFT, 48),
        &[
            (Swatch::Diamond, CTRL3, "CTRL3 (direct world-change)"),
            (Swatch::Dot, G3, "G3 (cache-broken world-change)"),
        ],
    )?;
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + ROW_H * i as i32 + ROW_H / 2;
        for (k, color, dy) in [(0usize, CTRL3, -3), (1, G3, 3)] {
            if let Some(Some((lo, hi))) = r.cis.get(k) {
                line(
                    a,
                    (xpct(LEFT, x1, *lo), y + dy),
                    (xpct(LEFT, x1, *hi), y + dy),
                    &color,
                    1,
                )?;
            }
        }
        if let Some(v) = r.values[0] {
            diamond(a, (xpct(LEFT, x1, v), y - 3), 4, &CTRL3)?;
        }
        if let Some(v) = r.values[1] {
            dot(a, (xpct(LEFT, x1, v), y + 3), 4, &G3)?;
        }
    }
    Ok(())
}

fn draw_trends<DB: DrawingBackend>(
    a: &Area<DB>,
    (w, _): (u32, u32),
    panels: &[(String, Vec<TrendPoint>)],
) -> FigResult {
    legend(
        a,
        (20, 46),
        &[
            (Swatch::Line, DIRECT, "direct CTRL1/2 owned"),
            (Swatch::Line, CACHE, "cache-broken G1/2 owned"),
        ],
    )?;
    if panels.is_empty() {
        return text(
            a,
            "No lab has two or more models with a release date and eligible rates.",
            (20, 90),
            13,
            &MUTED,
            HPos::Left,
            false,
        );
    }
    let pw = if panels.len() == 1 {
        w as i32 - 40
    } else {
        (w as i32 - 40) / 2
    };
    for (i, (lab, pts)) in panels.iter().enumerate() {
        let px = 20 + pw * (i as i32 % 2);
        let py = 70 + 300 * (i as i32 / 2);
        let (x0, x1, y0, y1) = (px + 50, px + pw - 30, py + 30, py + 240);
        text(
            a,
            &format!(
                "{} ({})",
                truncate(lab, 40),
                crate::text::count(pts.len(), "model")
            ),
            (px + 50, py + 12),
            14,
            &INK,
            HPos::Left,
            true,
        )?;
        for v in [0, 50, 100] {
            let y = y1 - (y1 - y0) * v / 100;
            line(a, (x0, y), (x1, y), &GRID, 1)?;
            text(
                a,
                &format!("{v}%"),
                (x0 - 6, y),
                11,
                &MUTED,
                HPos::Right,
                false,
            )?;
        }
        let dmin = pts.iter().map(|p| p.day).min().unwrap_or(0);
        let dmax = pts.iter().map(|p| p.day).max().unwrap_or(0);
        let span = (dmax - dmin).max(1) as f64;
        let xd =
            |d: i64| x0 + 10 + (((x1 - x0 - 20) as f64) * (d - dmin) as f64 / span).round() as i32;
        let yv = |v: f64| y1 - ((y1 - y0) as f64 * v.clamp(0.0, 100.0) / 100.0).round() as i32;
        for (sel, color) in [(0, DIRECT), (1, CACHE)] {
            let series: Vec<(i32, i32)> = pts
                .iter()
                .filter_map(|p| {
                    let v = if sel == 0 { p.direct } else { p.cache };
                    v.map(|v| (xd(p.day), yv(v)))
                })
                .collect();
            polyline(a, series.clone(), &color, 2)?;
            for c in series {
                dot(a, c, 3, &color)?;
            }
        }
        let first = &pts[0].date;
        let last = &pts[pts.len() - 1].date;
        text(a, first, (x0 + 10, y1 + 14), 11, &MUTED, HPos::Left, false)?;
        if last != first {
            text(a, last, (x1 - 10, y1 + 14), 11, &MUTED, HPos::Right, false)?;
        }
        text(
            a,
            "release date →",
            ((x0 + x1) / 2, y1 + 30),
            11,
            &MUTED,
            HPos::Center,
            false,
        )?;
    }
    Ok(())
}

fn draw_lexical<DB: DrawingBackend>(
    a: &Area<DB>,
    (w, h): (u32, u32),
    panels: &[(String, Vec<(String, f64, [f64; 3])>)],
) -> FigResult {
    const GROUP: [(RGBColor, &str); 3] = [
        (RGBColor(0x45, 0x7b, 0x9d), "service/assistant role"),
        (RGBColor(0xe7, 0x6f, 0x51), "disownership"),
        (RGBColor(0x8a, 0x5a, 0x83), "policy/safety frame"),
    ];
    legend(
        a,
        (20, 46),
        &GROUP
            .iter()
            .map(|(c, l)| (Swatch::Box, *c, *l))
            .collect::<Vec<_>>(),
    )?;
    let n = panels.len().max(1) as i32;
    let pw = (w as i32 - 40) / n;
    let (y0, y1) = (90, h as i32 - 90);
    for (i, (label, groups)) in panels.iter().enumerate() {
        let px = 20 + pw * i as i32;
        let (x0, x1) = (px + 40, px + pw - 10);
        text(
            a,
            &truncate(label, 44),
            ((x0 + x1) / 2, 74),
            13,
            &INK,
            HPos::Center,
            true,
        )?;
        for v in [0, 25, 50, 75, 100] {
            let y = y1 - (y1 - y0) * v / 100;
            line(a, (x0, y), (x1, y), &GRID, 1)?;
            text(
                a,
                &format!("{v}%"),
                (x0 - 4, y),
                10,
                &MUTED,
                HPos::Right,
                false,
            )?;
        }
        if groups.is_empty() {
            text(
                a,
                "no rows",
                ((x0 + x1) / 2, (y0 + y1) / 2),
                12,
                &MUTED,
                HPos::Center,
                false,
            )?;
            continue;
        }
        let gw = (x1 - x0) / groups.len() as i32;
        for (g, (posture, nrows, rates)) in groups.iter().enumerate() {
            let gx = x0 + gw * g as i32;
            let bw = ((gw - 10) / 3).max(2);
            for (k, r) in rates.iter().enumerate() {
                let mut c = GROUP[k].0;
                if *nrows < 20.0 {
                    c = RGBColor(
                        ((c.0 as u32 + 2 * 255) / 3) as u8,
                        ((c.1 as u32 + 2 * 255) / 3) as u8,
                        ((c.2 as u32 + 2 * 255) / 3) as u8,
                    );
                }
                let bx = gx + 5 + bw * k as i32;
                let top = y1 - ((y1 - y0) as f64 * r.clamp(0.0, 1.0)).round() as i32;
                rect(a, (bx, top.min(y1 - 1)), (bx + bw - 1, y1), &c)?;
            }
            let short = match posture.as_str() {
                "relocated_or_partial" => "relocated",
                "recited_not_owned" => "recited",
                "indeterminate" => "indeterm.",
                other => other,
            };
            text(
                a,
                short,
                (gx + gw / 2, y1 + 14),
                11,
                &INK,
                HPos::Center,
                false,
            )?;
            text(
                a,
                &format!("n={}", nrows),
                (gx + gw / 2, y1 + 28),
                10,
                &MUTED,
                HPos::Center,
                false,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_font_is_reported_not_fatal() {
        let e = load_font(Path::new("/nonexistent/font.ttf"));
        if let Err(msg) = e {
            assert!(msg.contains("PNG figures not written"));
        }
    }

    #[test]
    fn parse_day_known_values() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2000-03-01"), Some(11_017));
        assert_eq!(parse_day("2026-04-07"), Some(20_550));
        assert_eq!(parse_day(""), None);
        assert_eq!(parse_day("2026-13-01"), None);
    }
}
