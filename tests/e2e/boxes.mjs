// The benchmarks' boxes: three drawn on a 512×512 fixture image after its encode, each timed by
// the decode time the status line reports ("Mask in N ms"). The decoder's image-only part is
// prepared after a 2D image's encode, so all three reuse it.
const BOXES = [[200, 200, 260, 260], [180, 190, 280, 270], [210, 200, 270, 250]];

export async function decodeTimes(page, timeout) {
  const r = await page.locator('#view').boundingBox();
  const at = (x, y) => [r.x + x * r.width / 512, r.y + y * r.height / 512];
  const ms = [];
  for (const [x0, y0, x1, y1] of BOXES) {
    const before = await page.textContent('#status');
    await page.mouse.move(...at(x0, y0));
    await page.mouse.down();
    await page.mouse.move(...at(x1, y1), { steps: 4 });
    await page.mouse.up();
    await page.waitForFunction((b) => {
      const t = document.querySelector('#status')?.textContent ?? '';
      return t !== b && /Mask in \d+ ms/.test(t);
    }, before, { timeout });
    ms.push(Number((await page.textContent('#status')).match(/Mask in (\d+) ms/)[1]));
  }
  return ms;
}
