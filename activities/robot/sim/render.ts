/**
 * Renders a world as Bridge-like camera frames: an SVG drawn with a pinhole projection, rasterised
 * by sharp (librsvg) into a 256x256 JPEG. No randomness and fixed number formatting, so the same
 * world always gives the same bytes.
 *
 * `image_0` is the fixed main camera. As in Bridge's toy-kitchen shots it faces the robot from across
 * the table, a little off-center: the arm's base is at the top of the image, +x (forward, away from the
 * base) comes towards the camera (down the image) and +y (the robot's left) is to the image's right;
 * further is higher and smaller. `image_1`/`image_2` look from the robot's left/right, `image_3` rides on
 * the wrist.
 */
import sharp from 'sharp';
import type { Camera } from '../../../data-schemas/d-rob';
import { escapeMarkup, svgDocument } from '../../report/html';
import { hash32 } from './rng';
import { footprintContains, OBJECT_SPECS, topZ, type ObjectKind, type SimObject, type Vec3, type World } from './world';

export interface PinholeCamera {
  readonly pos: Vec3;
  readonly target: Vec3;
  /** Focal length in pixels for a 256-pixel image. */
  readonly focal: number;
}

export interface RenderOptions {
  format?: 'jpeg' | 'png';
  /** JPEG quality (1-100). */
  quality?: number;
}

const NEAR = 0.02;
const BASE_SIZE = 256;

const rotZ = (yaw: number, [x, y, z]: Vec3): Vec3 => [Math.cos(yaw) * x - Math.sin(yaw) * y, Math.sin(yaw) * x + Math.cos(yaw) * y, z];
const add = (a: Vec3, b: Vec3): Vec3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a: Vec3, b: Vec3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a: Vec3, b: Vec3): Vec3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const unit = (a: Vec3): Vec3 => {
  const n = Math.hypot(...a);
  return [a[0] / n, a[1] / n, a[2] / n];
};

/** The camera of each view; the wrist camera follows the end effector. */
export function cameraFor(world: World, camera: Camera): PinholeCamera {
  switch (camera) {
    case 'image_0':
      return { pos: [0.74, 0.1, 0.52], target: [0.29, 0.0, 0], focal: 330 };
    case 'image_1':
      return { pos: [0.3, 0.55, 0.4], target: [0.3, 0, 0.02], focal: 290 };
    case 'image_2':
      return { pos: [0.3, -0.55, 0.4], target: [0.3, 0, 0.02], focal: 290 };
    case 'image_3': {
      const { pos, rpy } = world.ee;
      return { pos: add(pos, rotZ(rpy[2], [-0.025, 0, 0.11])), target: add(pos, rotZ(rpy[2], [0.06, 0, -0.06])), focal: 150 };
    }
  }
}

type Pt = readonly [number, number];

class View {
  private readonly f: Vec3;
  private readonly r: Vec3;
  private readonly u: Vec3;
  constructor(private readonly cam: PinholeCamera) {
    this.f = unit(sub(cam.target, cam.pos));
    this.r = unit(cross(this.f, [0, 0, 1]));
    this.u = cross(this.r, this.f);
  }
  /** Camera coordinates: right, up, depth. */
  toCam(p: Vec3): Vec3 {
    const d = sub(p, this.cam.pos);
    return [dot(d, this.r), dot(d, this.u), dot(d, this.f)];
  }
  depth(p: Vec3): number {
    return this.toCam(p)[2];
  }
  private px(c: Vec3): Pt {
    return [BASE_SIZE / 2 + (this.cam.focal * c[0]) / c[2], BASE_SIZE / 2 - (this.cam.focal * c[1]) / c[2]];
  }
  /** Pixels per meter at a world point (for stroke widths). */
  scale(p: Vec3): number {
    return this.cam.focal / Math.max(NEAR, this.depth(p));
  }
  point(p: Vec3): Pt | undefined {
    const c = this.toCam(p);
    return c[2] < NEAR ? undefined : this.px(c);
  }
  /** Projects a polygon, clipped against the near plane (Sutherland-Hodgman). */
  polygon(points: readonly Vec3[]): Pt[] {
    const cam = points.map((p) => this.toCam(p));
    const out: Vec3[] = [];
    for (let i = 0; i < cam.length; i++) {
      const a = cam[i] as Vec3;
      const b = cam[(i + 1) % cam.length] as Vec3;
      const ina = a[2] >= NEAR;
      const inb = b[2] >= NEAR;
      if (ina) out.push(a);
      if (ina !== inb) {
        const t = (NEAR - a[2]) / (b[2] - a[2]);
        out.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]), NEAR]);
      }
    }
    return out.map((c) => this.px(c));
  }
}

function hull(points: readonly Pt[]): Pt[] {
  const pts = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (pts.length < 3) return pts;
  const turn = (o: Pt, a: Pt, b: Pt): number => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const half = (list: Pt[]): Pt[] => {
    const h: Pt[] = [];
    for (const p of list) {
      while (h.length >= 2 && turn(h[h.length - 2] as Pt, h[h.length - 1] as Pt, p) <= 0) h.pop();
      h.push(p);
    }
    h.pop();
    return h;
  };
  return [...half(pts), ...half([...pts].reverse())];
}

const n1 = (v: number): string => (Math.round(v * 10) / 10).toFixed(1);
const pointsAttr = (pts: readonly Pt[]): string => pts.map((p) => `${n1(p[0])},${n1(p[1])}`).join(' ');

function poly(pts: readonly Pt[], fill: string, extra = ''): string {
  return pts.length < 3 ? '' : `<polygon points="${pointsAttr(pts)}" fill="${fill}"${extra}/>`;
}

// ---------------------------------------------------------------------------------------------
// Shapes in an object's local frame (u along its yaw axis, v to its left), meters.

type Local = readonly [number, number];

function ellipse(cu: number, cv: number, ru: number, rv: number, n = 20): Local[] {
  return Array.from({ length: n }, (_, i) => {
    const a = (2 * Math.PI * i) / n;
    return [cu + ru * Math.cos(a), cv + rv * Math.sin(a)] as const;
  });
}
const rect = (u0: number, u1: number, v0: number, v1: number): Local[] => [
  [u0, v0],
  [u1, v0],
  [u1, v1],
  [u0, v1],
];

interface Prism {
  shape: readonly Local[];
  z0: number;
  z1: number;
  top: string;
  side: string;
}
interface Flat {
  shape: readonly Local[];
  z: number;
  fill: string;
}
type Part = ({ kind: 'prism' } & Prism) | ({ kind: 'flat' } & Flat);

const prism = (shape: readonly Local[], z0: number, z1: number, top: string, side: string): Part => ({ kind: 'prism', shape, z0, z1, top, side });
const flat = (shape: readonly Local[], z: number, fill: string): Part => ({ kind: 'flat', shape, z, fill });

const PARTS: Readonly<Record<ObjectKind, readonly Part[]>> = {
  carrot: [
    prism([[-0.065, 0.004], [-0.04, 0.002], [-0.04, -0.002], [-0.065, -0.004]], 0.008, 0.014, '#4fae35', '#2f7a1f'),
    prism([[-0.06, 0.014], [-0.04, 0.004], [-0.04, 0], [-0.058, 0.01]], 0.008, 0.013, '#4fae35', '#2f7a1f'),
    prism([[-0.06, -0.014], [-0.04, -0.004], [-0.04, 0], [-0.058, -0.01]], 0.008, 0.013, '#4fae35', '#2f7a1f'),
    prism([[-0.044, 0.006], [-0.041, 0.012], [-0.034, 0.013], [0.045, 0.0025], [0.045, -0.0025], [-0.034, -0.013], [-0.041, -0.012], [-0.044, -0.006]], 0, 0.022, '#ff7b0f', '#c4560a'),
    flat([[-0.02, 0.002], [0.02, 0.001], [0.02, 0.0], [-0.02, 0.0]], 0.022, '#ffb060'),
  ],
  eggplant: [
    prism(ellipse(0.006, 0, 0.042, 0.024), 0, 0.045, '#6a2d86', '#3e1650'),
    flat(ellipse(0.012, 0.006, 0.018, 0.006, 12), 0.045, '#9a5ab8'),
    prism(ellipse(-0.036, 0, 0.011, 0.016, 12), 0.008, 0.042, '#4d9a2c', '#2f6a1a'),
    prism(rect(-0.058, -0.044, -0.004, 0.004), 0.02, 0.03, '#4d9a2c', '#2f6a1a'),
  ],
  pan: [
    prism(rect(0.066, 0.155, -0.011, 0.011), 0.022, 0.032, '#2a2a2a', '#151515'),
    prism(ellipse(0, 0, 0.07, 0.07, 32), 0, 0.035, '#7d8288', '#4d5157'),
    flat(ellipse(0, 0, 0.062, 0.062, 32), 0.035, '#33363b'),
  ],
  plate: [prism(ellipse(0, 0, 0.065, 0.065, 32), 0, 0.012, '#f7f7f3', '#c7c7c0'), flat(ellipse(0, 0, 0.045, 0.045, 32), 0.012, '#e9e9e2')],
  fish: [
    prism([[-0.028, 0], [-0.05, 0.017], [-0.052, -0.017]], 0.002, 0.012, '#3f84e6', '#1d4f9c'),
    prism(ellipse(0.008, 0, 0.04, 0.016), 0, 0.02, '#3478dc', '#1d4f9c'),
    flat(ellipse(0.004, 0, 0.026, 0.005, 12), 0.02, '#7fb0f5'),
    flat(ellipse(0.033, 0.007, 0.004, 0.004, 10), 0.02, '#ffffff'),
    flat(ellipse(0.034, 0.007, 0.002, 0.002, 8), 0.02, '#111111'),
  ],
  pot: [
    prism(rect(0.055, 0.078, -0.012, 0.012), 0.055, 0.064, '#34373b', '#1e2023'),
    prism(rect(-0.078, -0.055, -0.012, 0.012), 0.055, 0.064, '#34373b', '#1e2023'),
    prism(ellipse(0, 0, 0.06, 0.06, 32), 0, 0.07, '#c3c7cd', '#858b93'),
    flat(ellipse(0, 0, 0.053, 0.053, 32), 0.07, '#50555c'),
  ],
  spoon: [
    prism(rect(-0.05, 0.012, -0.0045, 0.0045), 0.004, 0.01, '#dde2e8', '#7f868e'),
    prism(ellipse(0.028, 0, 0.02, 0.013, 16), 0, 0.012, '#dde2e8', '#7f868e'),
    flat(ellipse(0.028, 0, 0.014, 0.008, 12), 0.012, '#aab1ba'),
  ],
  towel: [
    prism(rect(-0.06, 0.06, -0.05, 0.05), 0, 0.006, '#c8403e', '#8c2a28'),
    flat(rect(0.034, 0.044, -0.05, 0.05), 0.006, '#f1e6da'),
    flat(rect(-0.044, -0.034, -0.05, 0.05), 0.006, '#f1e6da'),
  ],
  basket: [
    prism(rect(-0.065, 0.065, -0.05, 0.05), 0, 0.06, '#a87440', '#7a5226'),
    flat(rect(-0.057, 0.057, -0.042, 0.042), 0.06, '#5f3d1a'),
    flat(rect(-0.057, 0.057, -0.003, 0.003), 0.06, '#8a5f31'),
    flat(rect(-0.003, 0.003, -0.042, 0.042), 0.06, '#8a5f31'),
  ],
  cup: [
    prism(rect(0.022, 0.04, -0.004, 0.004), 0.02, 0.055, '#e0669c', '#a9406f'),
    prism(ellipse(0, 0, 0.025, 0.025, 20), 0, 0.07, '#ec77ab', '#b04a7a'),
    flat(ellipse(0, 0, 0.02, 0.02, 20), 0.07, '#6e2447'),
  ],
  green_block: [prism(rect(-0.02, 0.02, -0.02, 0.02), 0, 0.04, '#3fcf5f', '#22883a')],
  yellow_block: [prism(rect(-0.02, 0.02, -0.02, 0.02), 0, 0.04, '#ffdc2e', '#b89a0c')],
  // The blank card; its picture and label are drawn by drawCard.
  picture_card: [prism(rect(-0.032, 0.032, -0.05, 0.05), 0, 0.002, '#fbf8ef', '#b9b2a2')],
};

const OUTLINE = ' stroke="#000000" stroke-opacity="0.35" stroke-width="0.6" stroke-linejoin="round"';

function toWorld(o: SimObject, [u, v]: Local, z: number): Vec3 {
  return add(o.pos, rotZ(o.yaw, [u, v, z]));
}

function drawParts(view: View, o: SimObject): string {
  let svg = '';
  for (const part of PARTS[o.kind]) {
    if (part.kind === 'flat') {
      svg += poly(view.polygon(part.shape.map((p) => toWorld(o, p, part.z))), part.fill);
      continue;
    }
    const bottom = view.polygon(part.shape.map((p) => toWorld(o, p, part.z0)));
    const top = view.polygon(part.shape.map((p) => toWorld(o, p, part.z1)));
    svg += poly(hull([...bottom, ...top]), part.side, OUTLINE);
    svg += poly(top, part.top, OUTLINE);
  }
  return svg;
}

const PICTURE_COLORS = ['#e24b3b', '#3b7be2', '#f0c419', '#8e44ad', '#27ae60', '#e67e22'] as const;
/**
 * A picture card: the card, a simple portrait on its far half (the top of the main camera's image)
 * and its label printed across the near half, as large as fits, so a model can read who it shows.
 */
function drawCard(view: View, o: SimObject): string {
  const z = OBJECT_SPECS[o.kind].height;
  const flatAt = (shape: readonly Local[], fill: string): string => poly(view.polygon(shape.map((p) => toWorld(o, p, z))), fill);
  let svg = drawParts(view, o);
  const label = o.label ?? '';
  svg += flatAt(rect(-0.029, -0.003, -0.047, 0.047), PICTURE_COLORS[hash32(label) % PICTURE_COLORS.length] ?? '#888888');
  svg += flatAt(ellipse(-0.018, 0, 0.007, 0.007, 16), '#f1c9a5');
  svg += flatAt(ellipse(-0.006, 0, 0.004, 0.014, 16), '#2d2d2d');
  const center = toWorld(o, [0.014, 0], z);
  const c = view.point(center);
  const left = view.point(toWorld(o, [0.014, -0.047], z));
  const right = view.point(toWorld(o, [0.014, 0.047], z));
  if (!label || !c || !left || !right) return svg;
  const width = Math.hypot(right[0] - left[0], right[1] - left[1]);
  // DejaVu Sans Bold averages ~0.62 em per character; never taller than the label strip.
  const size = Math.min(0.016 * view.scale(center), width / (0.62 * label.length));
  if (size < 2) return svg;
  // Printed along the card: turned as the card's width runs in the image.
  const angle = (Math.atan2(right[1] - left[1], right[0] - left[0]) * 180) / Math.PI;
  return (
    svg +
    `<text x="${n1(c[0])}" y="${n1(c[1] + size * 0.36)}" transform="rotate(${n1(angle)} ${n1(c[0])} ${n1(c[1])})" ` +
    `font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-weight="bold" font-size="${n1(size)}" text-anchor="middle" fill="#111111">${escapeMarkup(label)}</text>`
  );
}

/** Height of the surface under (x, y), ignoring `except`: the table or a receptacle's top. */
function groundZ(world: World, x: number, y: number, except: string | undefined): number {
  let z = 0;
  for (const o of world.objects) {
    if (o.id === except || o.support.relation === 'held' || !footprintContains(o, x, y)) continue;
    const holds = OBJECT_SPECS[o.kind].holds;
    z = Math.max(z, holds ? o.pos[2] + holds.surfaceZ : topZ(o));
  }
  return z;
}

function shadow(view: View, world: World, o: SimObject): string {
  const held = o.support.relation === 'held';
  const z = held ? groundZ(world, o.pos[0], o.pos[1], o.id) + 0.0005 : o.pos[2] + 0.0005;
  const fp = OBJECT_SPECS[o.kind].footprint;
  const shape = fp.shape === 'circle' ? ellipse(0, 0, fp.r * 1.05, fp.r * 1.05, 24) : ellipse(0, 0, fp.hu * 1.1, fp.hv * 1.3, 20);
  // Lifted objects cast a sharper, larger shadow below them: the cue for height in a single view.
  const drop = held ? Math.max(0, o.pos[2] - z) : 0;
  const opacity = held ? Math.max(0.15, 0.4 - drop) : 0.22;
  const pts = view.polygon(shape.map(([u, v]) => add(rotZ(o.yaw, [u, v, 0]), [o.pos[0] - 0.004, o.pos[1] - 0.004, z])));
  return poly(pts, '#000000', ` fill-opacity="${opacity.toFixed(2)}"`);
}

function drawTable(view: View): string {
  const X0 = -0.05;
  const X1 = 0.62;
  const Y = 0.36;
  let svg = `<rect width="${BASE_SIZE}" height="${BASE_SIZE}" fill="#d9d3c7"/>`;
  // The back wall's skirting board, so the far table edge reads as an edge.
  svg += poly(view.polygon([[X1, -Y, 0], [X1, Y, 0], [X1, Y, 0.03], [X1, -Y, 0.03]]), '#9c9489');
  svg += poly(view.polygon([[X0, -Y, 0], [X1, -Y, 0], [X1, Y, 0], [X0, Y, 0]]), '#c89c68');
  for (let y = -Y + 0.06; y < Y; y += 0.06) {
    const a = view.point([X0, y, 0]);
    const b = view.point([X1, y, 0]);
    if (a && b) svg += `<line x1="${n1(a[0])}" y1="${n1(a[1])}" x2="${n1(b[0])}" y2="${n1(b[1])}" stroke="#a87c4c" stroke-width="0.8"/>`;
  }
  return svg;
}

const GRIPPER_DARK = '#2b2c30';
const GRIPPER_SIDE = '#16171a';

/** Finger separation (m) at a gripper opening in [0, 1]. */
export function fingerGap(gripper: number): number {
  return 0.012 + 0.066 * Math.min(1, Math.max(0, gripper));
}

function box(view: View, center: Vec3, yaw: number, hu: number, hv: number, z0: number, z1: number, top: string, side: string): string {
  const shape = rect(-hu, hu, -hv, hv);
  const at = (z: number): Vec3[] => shape.map(([u, v]) => add(center, rotZ(yaw, [u, v, z])));
  const bottom = view.polygon(at(z0));
  const upper = view.polygon(at(z1));
  return poly(hull([...bottom, ...upper]), side, OUTLINE) + poly(upper, top, OUTLINE);
}

function line(view: View, a: Vec3, b: Vec3, width: number, color: string): string {
  const pa = view.point(a);
  const pb = view.point(b);
  if (!pa || !pb) return '';
  const w = (width * (view.scale(a) + view.scale(b))) / 2;
  return `<line x1="${n1(pa[0])}" y1="${n1(pa[1])}" x2="${n1(pb[0])}" y2="${n1(pb[1])}" stroke="${color}" stroke-width="${n1(w)}" stroke-linecap="round"/>`;
}

function drawArm(view: View, world: World, withLinks: boolean): string {
  const { pos, rpy, gripper } = world.ee;
  const yaw = rpy[2];
  let svg = '';
  const wrist = add(pos, [0, 0, 0.075]);
  if (withLinks) {
    // Two-link arm from the base (x = 0) to the wrist, elbow bent upwards: WidowX-like links of ~25 cm.
    const shoulder: Vec3 = [0, 0, 0.12];
    const d = sub(wrist, shoulder);
    const dist = Math.hypot(...d);
    const link = 0.26;
    const mid = add(shoulder, [d[0] / 2, d[1] / 2, d[2] / 2]);
    const lift = Math.sqrt(Math.max(0, link * link - (dist / 2) ** 2));
    const horiz = Math.hypot(d[0], d[1]);
    const perp = unit([(-d[2] * d[0]) / Math.max(horiz, 1e-6), (-d[2] * d[1]) / Math.max(horiz, 1e-6), horiz]);
    const elbow = add(mid, [perp[0] * lift, perp[1] * lift, perp[2] * lift]);
    svg += line(view, shoulder, elbow, 0.04, GRIPPER_DARK);
    svg += line(view, elbow, wrist, 0.034, GRIPPER_DARK);
    const pe = view.point(elbow);
    if (pe) svg += `<circle cx="${n1(pe[0])}" cy="${n1(pe[1])}" r="${n1(0.03 * view.scale(elbow))}" fill="${GRIPPER_SIDE}"/>`;
  }
  if (withLinks) svg += box(view, pos, yaw, 0.018, 0.034, 0.05, 0.085, '#3b3d42', GRIPPER_SIDE);
  const gap = fingerGap(gripper) / 2;
  for (const side of [1, -1]) {
    const c = add(pos, rotZ(yaw, [0, side * (gap + 0.004), 0]));
    svg += box(view, c, yaw, 0.009, 0.004, 0, 0.055, '#55585e', GRIPPER_SIDE);
  }
  return svg;
}

function gripperShadow(view: View, world: World): string {
  const { pos } = world.ee;
  const z = groundZ(world, pos[0], pos[1], world.held?.id) + 0.0006;
  const h = Math.max(0, pos[2] - z);
  const r = 0.018 + 0.15 * h * 0.2;
  const pts = view.polygon(ellipse(0, 0, r, r * 1.6, 20).map(([u, v]) => [pos[0] + u, pos[1] + v, z] as Vec3));
  return poly(pts, '#000000', ` fill-opacity="${Math.max(0.12, 0.4 - h).toFixed(2)}"`);
}

/** The object an object ultimately stands on at table level (itself when on the table or held). */
function base(world: World, o: SimObject): SimObject {
  let cur = o;
  for (let i = 0; i < world.objects.length; i++) {
    const s = cur.support;
    if (s.relation === 'held') return cur;
    const next = world.objects.find((x) => x.id === s.target);
    if (!next) return cur;
    cur = next;
  }
  return cur;
}

function level(world: World, o: SimObject): number {
  let n = 0;
  let cur = o;
  while (cur.support.relation !== 'held') {
    const s = cur.support;
    const next = world.objects.find((x) => x.id === s.target);
    if (!next || n > world.objects.length) break;
    cur = next;
    n++;
  }
  return n;
}

/** Where a world point appears in a camera's frame, pixels [column, row] at BASE_SIZE; undefined behind the camera. */
export function projectPoint(world: World, camera: Camera, p: Vec3): readonly [number, number] | undefined {
  return new View(cameraFor(world, camera)).point(p);
}

/** The SVG of one camera view (exported for inspection and tests). */
export function renderSvg(world: World, camera: Camera, size = BASE_SIZE): string {
  const view = new View(cameraFor(world, camera));
  const wrist = camera === 'image_3';
  let svg = drawTable(view);
  // Cards lie flat under everything else: drawn first, casting no shadow.
  const cards = world.objects.filter((o) => o.kind === 'picture_card');
  for (const o of cards) svg += drawCard(view, o);
  for (const o of world.objects) if (o.kind !== 'picture_card') svg += shadow(view, world, o);
  svg += gripperShadow(view, world);
  // Painter's order: far piles first; within a pile, bottom first. Held objects go with the gripper.
  const resting = world.objects
    .filter((o) => o.support.relation !== 'held' && o.kind !== 'picture_card')
    .map((o) => ({ o, depth: view.depth(base(world, o).pos), level: level(world, o) }))
    .sort((a, b) => b.depth - a.depth || a.level - b.level || (a.o.id < b.o.id ? -1 : 1));
  for (const { o } of resting) svg += drawParts(view, o);
  for (const o of world.objects) if (o.support.relation === 'held') svg += drawParts(view, o);
  svg += drawArm(view, world, !wrist);
  return svgDocument({ width: size, height: size, viewBox: `0 0 ${BASE_SIZE} ${BASE_SIZE}`, content: svg });
}

/** One camera frame as a JPEG (default) or PNG, `size` x `size` pixels. */
export async function renderFrame(world: World, camera: Camera, size = BASE_SIZE, options: RenderOptions = {}): Promise<Buffer> {
  const img = sharp(Buffer.from(renderSvg(world, camera, size)));
  return options.format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: options.quality ?? 90 }).toBuffer();
}
