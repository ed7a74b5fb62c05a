export type BoxXyxy = [number, number, number, number];
export type BoxXywh = [number, number, number, number];

/** [x, y, w, h] -> [x1, y1, x2, y2] with x2 = x + w (COCO convention, no +1). */
export const xywhToXyxy = ([x, y, w, h]: BoxXywh): BoxXyxy => [x, y, x + w, y + h];

/** The intersection and union areas of two corner boxes, no +1. */
function interUnion(a: readonly number[], b: readonly number[]): [inter: number, union: number] {
  const areaA = (a[2] - a[0]) * (a[3] - a[1]);
  const areaB = (b[2] - b[0]) * (b[3] - b[1]);
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  return [inter, areaA + areaB - inter];
}

/** IoU of corner boxes, no +1 (torchvision box_iou). */
export function iouXyxy(a: readonly number[], b: readonly number[]): number {
  const [inter, union] = interUnion(a, b);
  return inter / union;
}

/**
 * Generalised IoU of corner boxes (DETR's `generalized_box_iou`, which FIBER's and MDETR's referring
 * expression evaluators threshold): IoU minus the share of the enclosing box that neither box covers.
 * In [-1, 1] and never above the IoU; NaN where both boxes have no area (0 / 0), as in torch.
 */
export function giouXyxy(a: readonly number[], b: readonly number[]): number {
  const [inter, union] = interUnion(a, b);
  const hull =
    Math.max(0, Math.max(a[2], b[2]) - Math.min(a[0], b[0])) * Math.max(0, Math.max(a[3], b[3]) - Math.min(a[1], b[1]));
  return inter / union - (hull - union) / hull;
}
