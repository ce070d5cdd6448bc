//! Drawing the viewer: windowed image, mask overlays, boxes; on a volume also the coronal or
//! sagittal plane beside it.

use super::state::State;
use super::volume::Ortho;
use crate::metrics::axes_mm;
use std::cell::RefCell;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

fn canvas_by_id(id: &str) -> Option<HtmlCanvasElement> {
    web_sys::window()?
        .document()?
        .get_element_by_id(id)?
        .dyn_into()
        .ok()
}

/// The viewer.
pub fn canvas() -> Option<HtmlCanvasElement> {
    canvas_by_id("view")
}

/// The Volume panel's coronal/sagittal plane.
pub fn ortho_canvas() -> Option<HtmlCanvasElement> {
    canvas_by_id("ortho")
}

/// Maps a mouse position on the (CSS-scaled) canvas to image pixels.
pub fn to_image(c: &HtmlCanvasElement, offset_x: i32, offset_y: i32) -> (f32, f32) {
    let sx = c.width() as f32 / c.client_width().max(1) as f32;
    let sy = c.height() as f32 / c.client_height().max(1) as f32;
    (offset_x as f32 * sx, offset_y as f32 * sy)
}

thread_local! {
    /// The viewer's last frame without its boxes (the image and the masks): while a box is
    /// dragged only the boxes change, so they are drawn over it again instead of the whole image
    /// being composed on every mouse move (a 2048² radiograph: 16 M bytes each time).
    static FRAME: RefCell<Option<ImageData>> = const { RefCell::new(None) };
}

pub fn redraw(s: &State) {
    let (Some(c), Some(img)) = (canvas(), s.display.as_ref()) else {
        return;
    };
    let (w, h) = (img.width, img.height);
    let mut rgba = grey_rgba(s, &img.data);
    for (k, o) in s.shown() {
        if s.outline {
            // A thin line needs more colour than a fill to be seen.
            let table = blend_table(o.color, if Some(k) == s.selected { 1.0 } else { 0.75 });
            for i in edge_pixels(&o.mask, w, h) {
                tint(&mut rgba[i * 4..i * 4 + 4], &table);
            }
            continue;
        }
        let table = blend_table(o.color, alpha(s, k));
        for (px, _) in rgba
            .chunks_exact_mut(4)
            .zip(&o.mask)
            .filter(|(_, m)| **m > 0)
        {
            tint(px, &table);
        }
    }
    let (ctx, frame) = put(&c, &rgba, w, h);
    FRAME.set(frame);
    fit(&c, w, h, s.zoom, s.pan);
    // A box being dragged changes nothing the plane shows; skip its work on every mouse move.
    if s.drag_box.is_none() {
        draw_ortho(s);
    }
    boxes(&ctx, s, w.max(h));
    calipers(&ctx, s, w.max(h));
}

/// [`redraw`] while a box is dragged: the last frame put back, the boxes over it.
pub fn redraw_boxes(s: &State) {
    let Some(c) = canvas() else {
        return;
    };
    let frame = FRAME.with_borrow(|f| f.clone());
    match frame.filter(|f| (f.width(), f.height()) == (c.width(), c.height())) {
        Some(f) => {
            let ctx = context(&c);
            let _ = ctx.put_image_data(&f, 0.0, 0.0);
            let side = c.width().max(c.height()) as usize;
            boxes(&ctx, s, side);
            calipers(&ctx, s, side);
        }
        None => redraw(s),
    }
}

/// Every object's box, the selected one opaque, and the box being dragged, dashed; `side`: the
/// image's longer side, for a line width that shows at any size.
fn boxes(ctx: &CanvasRenderingContext2d, s: &State, side: usize) {
    let line = (side as f64 / 400.0).max(1.0);
    ctx.set_line_width(line);
    let z = s.volume.as_ref().map(|v| v.z);
    for (k, o) in s.shown().filter(|(_, o)| o.box_on(z)) {
        if let Some([x0, y0, x1, y1]) = o.bbox {
            let [r, g, b] = o.color;
            ctx.set_stroke_style_str(&format!(
                "rgba({r},{g},{b},{})",
                if Some(k) == s.selected { 1.0 } else { 0.5 }
            ));
            ctx.stroke_rect(x0 as f64, y0 as f64, (x1 - x0) as f64, (y1 - y0) as f64);
        }
    }
    if let Some([x0, y0, x1, y1]) = s.drag_box {
        ctx.set_stroke_style_str("#4fc3f7");
        ctx.set_line_dash(&js_sys::Array::of2(
            &(4.0 * line).into(),
            &(3.0 * line).into(),
        ))
        .ok();
        ctx.stroke_rect(x0 as f64, y0 as f64, (x1 - x0) as f64, (y1 - y0) as f64);
        ctx.set_line_dash(&js_sys::Array::new()).ok();
    }
}

/// On a volume with axes shown: the selected object's long axis (solid) and short axis
/// (dashed) on the slice in view, as a reader's calipers, each labelled with its length.
fn calipers(ctx: &CanvasRenderingContext2d, s: &State, side: usize) {
    let Some(v) = s.volume.as_ref().filter(|_| s.axes) else {
        return;
    };
    let Some(o) = s
        .selected
        .and_then(|i| s.objects.get(i))
        .filter(|o| !o.hidden)
    else {
        return;
    };
    let [sx, sy, _] = v.volume.spacing;
    let Some(a) = axes_mm(&o.mask, v.volume.size[0], [sx, sy]) else {
        return;
    };
    let px = |(x, y): (f64, f64)| (x / sx, y / sy);
    let line = (side as f64 / 300.0).max(1.0);
    ctx.set_line_width(line);
    ctx.set_stroke_style_str(CALIPERS);
    ctx.set_fill_style_str(CALIPERS);
    ctx.set_font(&format!(
        "{}px sans-serif",
        (side as f64 / 30.0).max(10.0).round()
    ));
    for (ends, mm, dashed) in [(a.long, a.long_mm, false), (a.short, a.short_mm, true)] {
        let dash = if dashed {
            js_sys::Array::of2(&(3.0 * line).into(), &(2.0 * line).into())
        } else {
            js_sys::Array::new()
        };
        ctx.set_line_dash(&dash).ok();
        let ((x0, y0), (x1, y1)) = (px(ends[0]), px(ends[1]));
        ctx.begin_path();
        ctx.move_to(x0, y0);
        ctx.line_to(x1, y1);
        ctx.stroke();
        // The length, with a dark edge so that it reads over bright tissue and the masks.
        let (text, tx, ty) = (format!("{mm:.1} mm"), x1 + 2.0 * line, y1 - 2.0 * line);
        ctx.set_line_dash(&js_sys::Array::new()).ok();
        ctx.set_stroke_style_str("rgba(0,0,0,0.85)");
        ctx.stroke_text(&text, tx, ty).ok();
        ctx.fill_text(&text, tx, ty).ok();
        ctx.set_stroke_style_str(CALIPERS);
    }
}

/// The calipers' colour: apart from the palette and the grey of the scan.
const CALIPERS: &str = "#00e5ff";

/// Grey values through the display window (level/width over 8-bit values), as RGBA: one 4-byte
/// store per pixel from a table (this runs on every mouse move of a drag, over the whole image).
fn grey_rgba(s: &State, grey: &[u8]) -> Vec<u8> {
    let lo = s.level - s.width / 2.0;
    let lut: [[u8; 4]; 256] = std::array::from_fn(|v| {
        let g = (((v as f64 - lo) / s.width.max(1.0)) * 255.0).clamp(0.0, 255.0) as u8;
        [g, g, g, 255]
    });
    let mut rgba = vec![0u8; grey.len() * 4];
    for (px, &v) in rgba.chunks_exact_mut(4).zip(grey) {
        px.copy_from_slice(&lut[v as usize]);
    }
    rgba
}

/// Mask opacity of object `k` (the selected one stands out).
fn alpha(s: &State, k: usize) -> f32 {
    let a = s.opacity as f32;
    if Some(k) == s.selected { a } else { a * 0.7 }
}

/// Per channel, each value blended with `color` at `alpha`: a lookup per masked pixel instead of
/// float arithmetic (a redraw blends every object's mask over the whole image).
fn blend_table(color: [u8; 3], alpha: f32) -> [[u8; 256]; 3] {
    color.map(|c| std::array::from_fn(|v| (v as f32 * (1.0 - alpha) + c as f32 * alpha) as u8))
}

/// The mask's pixels with a 4-neighbour outside it (or on the image's border): its outline.
fn edge_pixels(mask: &[u8], w: usize, h: usize) -> impl Iterator<Item = usize> + '_ {
    (0..mask.len()).filter(move |&i| {
        let (x, y) = (i % w, i / w);
        mask[i] > 0
            && (x == 0
                || y == 0
                || x + 1 == w
                || y + 1 == h
                || mask[i - 1] == 0
                || mask[i + 1] == 0
                || mask[i - w] == 0
                || mask[i + w] == 0)
    })
}

/// One RGBA pixel's colour through a [`blend_table`].
fn tint(px: &mut [u8], table: &[[u8; 256]; 3]) {
    for c in 0..3 {
        px[c] = table[c][px[c] as usize];
    }
}

fn context(c: &HtmlCanvasElement) -> CanvasRenderingContext2d {
    c.get_context("2d").ok().flatten().unwrap().unchecked_into()
}

/// Sizes the canvas to w×h and puts the pixels; returns its 2D context and the pixels as put.
fn put(
    c: &HtmlCanvasElement,
    rgba: &[u8],
    w: usize,
    h: usize,
) -> (CanvasRenderingContext2d, Option<ImageData>) {
    if c.width() as usize != w || c.height() as usize != h {
        c.set_width(w as u32);
        c.set_height(h as u32);
    }
    let ctx = context(c);
    let data = ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), w as u32, h as u32).ok();
    if let Some(d) = &data {
        let _ = ctx.put_image_data(d, 0.0, 0.0);
    }
    (ctx, data)
}

/// Sizes and places the viewer's image for the zoom and pan (no pixels redrawn).
/// The pan kept is the one shown (held back at the edge), so dragging back answers at once.
pub fn place(s: &mut State) {
    if let (Some(c), Some(img)) = (canvas(), s.display.as_ref()) {
        s.pan = fit(&c, img.width, img.height, s.zoom, s.pan);
    }
}

/// Shows the image as large as the viewer allows (enlarged or reduced) times the user's zoom,
/// moved from the viewer's middle by the user's pan: a 256² MR slice and a 3000² radiograph
/// both fill the screen at zoom 1. Returns the pan shown.
fn fit(c: &HtmlCanvasElement, w: usize, h: usize, zoom: f64, (px, py): (f64, f64)) -> (f64, f64) {
    let Some(viewer) = c.parent_element() else {
        return (px, py);
    };
    // Inside the viewer's padding (12 px a side); whole pixels.
    let room = |v: i32| (v - 24).max(16) as f64;
    let (vw, vh) = (viewer.client_width(), viewer.client_height());
    let scale = (room(vw) / w as f64).min(room(vh) / h as f64) * zoom;
    let (cw, ch) = ((w as f64 * scale).floor(), (h as f64 * scale).floor());
    // Never panned out of sight: at least 32 px of the image stay in the viewer.
    let keep = |p: f64, size: f64, view: i32| {
        let max = ((size + view as f64) / 2.0 - 32.0).max(0.0);
        p.clamp(-max, max).round()
    };
    let pan = (keep(px, cw, vw), keep(py, ch, vh));
    let style = c.style();
    let _ = style.set_property("width", &format!("{cw}px"));
    let _ = style.set_property("height", &format!("{ch}px"));
    let _ = style.set_property(
        "transform",
        &format!(
            "translate(calc(-50% + {}px), calc(-50% + {}px))",
            pan.0, pan.1
        ),
    );
    pan
}

/// The Volume panel's coronal/sagittal plane through the selected object's centre (or the
/// middle): superior slices on top, every object's masks overlaid, the slice in view marked at
/// both edges, and shown at true proportions (voxel sizes differ between axes).
pub fn draw_ortho(s: &State) {
    let (Some(c), Some(v)) = (ortho_canvas(), s.volume.as_ref()) else {
        return;
    };
    let [w, h, d] = v.volume.size;
    let (fx, fy) = focus(s, w, h);
    let (at, cols, col_mm) = match v.ortho {
        Ortho::Coronal => (fy, w, v.volume.spacing[0]),
        Ortho::Sagittal => (fx, h, v.volume.spacing[1]),
    };
    let mut rgba = grey_rgba(s, &v.ortho_plane(v.ortho, at).data);
    // Index in a slice's mask of column `col` of the plane.
    let in_slice = |col: usize| match v.ortho {
        Ortho::Coronal => at * w + col,
        Ortho::Sagittal => col * w + at,
    };
    for (k, o) in s.shown() {
        let table = blend_table(o.color, alpha(s, k));
        for row in 0..d {
            let Some(mask) = o.slice_mask(v.row_to_z(row), v.z) else {
                continue;
            };
            for col in 0..cols {
                if mask.get(in_slice(col)).is_some_and(|&m| m > 0) {
                    tint(&mut rgba[(row * cols + col) * 4..][..4], &table);
                }
            }
        }
    }
    let (ctx, _) = put(&c, &rgba, cols, d);
    let row = v.row_to_z(v.z) as f64; // the mapping is its own inverse
    let tick = (cols as f64 / 16.0).max(2.0);
    ctx.set_fill_style_str("#4fc3f7");
    ctx.fill_rect(0.0, row, tick, 1.0);
    ctx.fill_rect(cols as f64 - tick, row, tick, 1.0);
    let _ = c.set_attribute(
        "style",
        &format!(
            "aspect-ratio: {} / {}",
            cols as f64 * col_mm,
            d as f64 * v.volume.spacing[2]
        ),
    );
}

/// The voxel column/row the plane passes through: the selected object's centre on the slice in
/// view (w×h), else the middle of the slice.
fn focus(s: &State, w: usize, h: usize) -> (usize, usize) {
    let centre = s.selected.and_then(|k| s.objects.get(k)).and_then(|o| {
        let (mut n, mut sx, mut sy) = (0usize, 0usize, 0usize);
        for (i, _) in o.mask.iter().enumerate().filter(|(_, m)| **m > 0) {
            n += 1;
            sx += i % w;
            sy += i / w;
        }
        (n > 0).then(|| (sx / n, sy / n))
    });
    centre.unwrap_or((w / 2, h / 2))
}
