//! Drawing primitives shared by the figures: text, lines, dots and rectangles in pixel
//! coordinates on any plotters backend, with the report's palette.
//!
//! The figures lay themselves out by hand instead of through `ChartBuilder`, because
//! `ChartBuilder` measures text with the registered font, and the SVG figures must render
//! even when no font file exists on the machine (SVG text needs no font until a browser
//! shows it). Only the PNG backend needs the font.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Result of one drawing call; backend errors are flattened to text.
pub type FigResult = Result<(), String>;

/// Owned (teal).
pub const OWNED: RGBColor = RGBColor(0x2a, 0x9d, 0x8f);
/// Relocated or partial (sand).
pub const RELOCATED: RGBColor = RGBColor(0xe9, 0xc4, 0x6a);
/// Recited, not owned (coral).
pub const RECITED: RGBColor = RGBColor(0xe7, 0x6f, 0x51);
/// Indeterminate + uncodeable (grey).
pub const OTHER: RGBColor = RGBColor(0xad, 0xb5, 0xbd);
/// Direct condition family (slate blue).
pub const DIRECT: RGBColor = RGBColor(0x45, 0x7b, 0x9d);
/// Cache-broken condition family (orange).
pub const CACHE: RGBColor = RGBColor(0xf3, 0x72, 0x2c);
/// CTRL3 (purple).
pub const CTRL3: RGBColor = RGBColor(0x7b, 0x2c, 0xbf);
/// G3 (green).
pub const G3: RGBColor = RGBColor(0x2d, 0x6a, 0x4f);
/// Axis and text colour.
pub const INK: RGBColor = RGBColor(0x21, 0x25, 0x29);
/// Grid lines.
pub const GRID: RGBColor = RGBColor(0xde, 0xe2, 0xe6);
/// Muted text.
pub const MUTED: RGBColor = RGBColor(0x6c, 0x75, 0x7d);

/// A drawing area of any backend.
pub type Area<DB> = DrawingArea<DB, Shift>;

fn e<E: std::fmt::Debug>(err: E) -> String {
    format!("{err:?}")
}

/// Draw text anchored at (x, y).
pub fn text<DB: DrawingBackend>(
    a: &Area<DB>,
    s: &str,
    (x, y): (i32, i32),
    size: u32,
    color: &RGBColor,
    h: HPos,
    bold: bool,
) -> FigResult {
    let font = if bold {
        ("sans-serif", size as f64)
            .into_font()
            .style(FontStyle::Bold)
    } else {
        ("sans-serif", size as f64).into_font()
    };
    let style = font.color(color).pos(Pos::new(h, VPos::Center));
    a.draw(&Text::new(s.to_string(), (x, y), style)).map_err(e)
}

/// Draw a straight line.
pub fn line<DB: DrawingBackend>(
    a: &Area<DB>,
    from: (i32, i32),
    to: (i32, i32),
    color: &RGBColor,
    width: u32,
) -> FigResult {
    a.draw(&PathElement::new(
        vec![from, to],
        ShapeStyle::from(color).stroke_width(width),
    ))
    .map_err(e)
}

/// Draw a polyline.
pub fn polyline<DB: DrawingBackend>(
    a: &Area<DB>,
    pts: Vec<(i32, i32)>,
    color: &RGBColor,
    width: u32,
) -> FigResult {
    a.draw(&PathElement::new(
        pts,
        ShapeStyle::from(color).stroke_width(width),
    ))
    .map_err(e)
}

/// Draw a filled rectangle.
pub fn rect<DB: DrawingBackend>(
    a: &Area<DB>,
    tl: (i32, i32),
    br: (i32, i32),
    color: &RGBColor,
) -> FigResult {
    a.draw(&Rectangle::new([tl, br], color.filled())).map_err(e)
}

/// Draw a filled dot with a white rim.
pub fn dot<DB: DrawingBackend>(a: &Area<DB>, c: (i32, i32), r: i32, color: &RGBColor) -> FigResult {
    a.draw(&Circle::new(c, r + 1, WHITE.filled())).map_err(e)?;
    a.draw(&Circle::new(c, r, color.filled())).map_err(e)
}

/// Draw a filled diamond (used for a second series so colour is not the only cue).
pub fn diamond<DB: DrawingBackend>(
    a: &Area<DB>,
    (x, y): (i32, i32),
    r: i32,
    color: &RGBColor,
) -> FigResult {
    a.draw(&Polygon::new(
        vec![
            (x, y - r - 1),
            (x + r + 1, y),
            (x, y + r + 1),
            (x - r - 1, y),
        ],
        color.filled(),
    ))
    .map_err(e)
}

/// A legend entry: swatch kind, colour, label.
pub enum Swatch {
    /// Filled square.
    Box,
    /// Circle.
    Dot,
    /// Diamond.
    Diamond,
    /// Short line with a dot.
    Line,
}

/// Draw a horizontal legend starting at (x, y); returns nothing.
pub fn legend<DB: DrawingBackend>(
    a: &Area<DB>,
    (mut x, y): (i32, i32),
    items: &[(Swatch, RGBColor, &str)],
) -> FigResult {
    for (kind, color, label) in items {
        match kind {
            Swatch::Box => rect(a, (x, y - 6), (x + 12, y + 6), color)?,
            Swatch::Dot => dot(a, (x + 6, y), 5, color)?,
            Swatch::Diamond => diamond(a, (x + 6, y), 5, color)?,
            Swatch::Line => {
                line(a, (x - 2, y), (x + 14, y), color, 2)?;
                dot(a, (x + 6, y), 3, color)?;
            }
        }
        text(a, label, (x + 18, y), 13, &INK, HPos::Left, false)?;
        x += 30 + (label.chars().count() as i32) * 7;
    }
    Ok(())
}

/// Draw a percent axis (0..=100 in steps of 25) with vertical grid lines between
/// `top` and `bottom` for an x-scale `x0..x1`, labels above `top`.
pub fn percent_grid_x<DB: DrawingBackend>(
    a: &Area<DB>,
    x0: i32,
    x1: i32,
    top: i32,
    bottom: i32,
) -> FigResult {
    for v in [0, 25, 50, 75, 100] {
        let x = x0 + (x1 - x0) * v / 100;
        line(a, (x, top), (x, bottom), &GRID, 1)?;
        text(
            a,
            &format!("{v}%"),
            (x, top - 10),
            12,
            &MUTED,
            HPos::Center,
            false,
        )?;
    }
    Ok(())
}
