//! Drawing the viewer: windowed image, mask overlays, boxes.

use super::state::State;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

pub fn canvas() -> Option<HtmlCanvasElement> {
    web_sys::window()?
        .document()?
        .get_element_by_id("view")?
        .dyn_into()
        .ok()
}

/// Maps a mouse position on the (CSS-scaled) canvas to image pixels.
pub fn to_image(c: &HtmlCanvasElement, offset_x: i32, offset_y: i32) -> (f32, f32) {
    let sx = c.width() as f32 / c.client_width().max(1) as f32;
    let sy = c.height() as f32 / c.client_height().max(1) as f32;
    (offset_x as f32 * sx, offset_y as f32 * sy)
}

pub fn redraw(s: &State) {
    let (Some(c), Some(img)) = (canvas(), s.display.as_ref()) else {
        return;
    };
    let (w, h) = (img.width, img.height);
    if c.width() as usize != w || c.height() as usize != h {
        c.set_width(w as u32);
        c.set_height(h as u32);
    }
    let lo = s.level - s.width / 2.0;
    let lut: Vec<u8> = (0..256)
        .map(|v| (((v as f64 - lo) / s.width.max(1.0)) * 255.0).clamp(0.0, 255.0) as u8)
        .collect();
    let mut rgba = vec![0u8; w * h * 4];
    for (i, &v) in img.data.iter().enumerate() {
        let g = lut[v as usize];
        rgba[i * 4..i * 4 + 4].copy_from_slice(&[g, g, g, 255]);
    }
    let a = s.opacity as f32;
    for (k, o) in s.objects.iter().enumerate() {
        let alpha = if Some(k) == s.selected { a } else { a * 0.7 };
        for (i, &m) in o.mask.iter().enumerate() {
            if m > 0 {
                for c in 0..3 {
                    let p = &mut rgba[i * 4 + c];
                    *p = (*p as f32 * (1.0 - alpha) + o.color[c] as f32 * alpha) as u8;
                }
            }
        }
    }
    let ctx: CanvasRenderingContext2d =
        c.get_context("2d").ok().flatten().unwrap().unchecked_into();
    if let Ok(data) =
        ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), w as u32, h as u32)
    {
        let _ = ctx.put_image_data(&data, 0.0, 0.0);
    }
    let line = (w.max(h) as f64 / 400.0).max(1.0);
    ctx.set_line_width(line);
    for (k, o) in s.objects.iter().enumerate() {
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
